"""Results formatting and the streaming `Evaluator` (the API scripts/evaluate.py calls)."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from personlab_tf.skeleton import COCO17
from personlab_tf import keys
from personlab_tf.evaluation import CocoEvaluator, backends, results
from personlab_tf.evaluation import evaluator as evaluator_lib
from personlab_tf.tfds_builders.coco_person import layout

import coco_samples


def _predictions(num, height=6, width=5, slots=None):
    """Hand-made predictions with `num` detections padded to `slots` (like serving_default's 20)."""
    slots = slots or num
    keypoints = np.zeros((slots, 17, 2), np.float32)
    keypoints[:num] = np.arange(num * 34, dtype=np.float32).reshape(num, 17, 2) / 4
    masks = np.zeros((slots, height, width), bool)
    for m in range(num):
        masks[m, m, : m + 1] = True
    scores = np.zeros(slots, np.float32)
    scores[:num] = np.linspace(0.9, 0.5, num)
    return {keys.Detection.KEYPOINTS: keypoints, keys.Detection.KEYPOINT_SCORES: np.full((slots, 17), 0.3, np.float32),
            keys.Detection.INSTANCE_SCORES: scores, keys.Detection.NUM_DETECTIONS: np.int32(num), keys.Detection.MASKS: masks}


def test_keypoint_results_format():
    predictions = _predictions(3, slots=20)
    formatted = results.keypoint_results(np.int64(7), predictions, COCO17)
    assert len(formatted) == 3  # padding after num_detections dropped
    first = formatted[0]
    assert set(first) == {"image_id", "category_id", "keypoints", "score"}
    assert first["image_id"] == 7 and first["category_id"] == 1 and first["score"] == pytest.approx(0.9)
    assert len(first["keypoints"]) == 51
    triples = np.reshape(formatted[1]["keypoints"], (17, 3))
    np.testing.assert_array_equal(triples[:, :2], predictions[keys.Detection.KEYPOINTS][1])  # unchanged
    np.testing.assert_array_equal(triples[:, 2], 1.0)  # COCO: visibility unused, set to 1
    json.dumps(formatted)


def test_segmentation_results_round_trip():
    predictions = _predictions(3, slots=20)
    formatted = results.segmentation_results(7, predictions, COCO17.category_id)
    assert len(formatted) == 3
    for m, result in enumerate(formatted):
        assert set(result) == {"image_id", "category_id", "segmentation", "score"}  # no bbox
        assert isinstance(result["segmentation"]["counts"], str) and result["segmentation"]["size"] == [6, 5]
        decoded = mask_utils.decode(result["segmentation"])
        np.testing.assert_array_equal(decoded, predictions[keys.Detection.MASKS][m])
    json.dumps(formatted)


def test_without_num_detections_every_slot_counts():
    predictions = _predictions(2)
    del predictions[keys.Detection.NUM_DETECTIONS]
    assert len(results.keypoint_results(1, predictions, COCO17)) == 2
    assert results.encode_masks(np.zeros((0, 4, 4), bool)) == []


def test_bad_keypoint_shape_is_refused():
    predictions = _predictions(2)
    predictions[keys.Detection.KEYPOINTS] = np.zeros((2, 17, 3))
    with pytest.raises(ValueError, match="keypoints"):
        results.keypoint_results(1, predictions, COCO17)


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
def test_evaluator_streams_perfect_predictions(tmp_path, evaluator):
    """Per-image ground truth fed through `add` as serving-like outputs (padded to 20) scores 1."""
    dataset = coco_samples.load_sample(layout.TRAIN)
    evaluation = CocoEvaluator(dataset, COCO17, output_dir=tmp_path, evaluator=evaluator)
    for image in dataset["images"]:
        exact = coco_samples.perfect_predictions(dataset, image["id"])
        count = len(exact[keys.Detection.INSTANCE_SCORES])
        padded = {key: np.concatenate([value, np.zeros((20 - count,) + value.shape[1:], value.dtype)])
                  for key, value in exact.items()}
        padded[keys.Detection.NUM_DETECTIONS] = np.int32(count)
        evaluation.add(np.int64(image["id"]), padded)
    assert evaluation.num_images == 36
    summary = evaluation.results()
    assert summary[evaluator_lib.KEYPOINTS]["AP"] == pytest.approx(1.0, abs=1e-12)
    # Masks only of persons with keypoints: the rest are missed, recall < 1 but every detection is right.
    assert summary[evaluator_lib.SEGMENTATION]["AP50"] < 1.0
    written = json.loads((tmp_path / evaluator_lib.METRICS_FILE).read_text())
    assert written[evaluator_lib.KEYPOINTS] == summary[evaluator_lib.KEYPOINTS]
    assert written["evaluator"] == evaluator and written["num_images"] == 36
    coco = coco_samples.coco_object(dataset)
    for name in (evaluator_lib.KEYPOINT_RESULTS_FILE, evaluator_lib.SEGMENTATION_RESULTS_FILE):
        assert coco.loadRes(str(tmp_path / name)).getAnnIds()  # loadable by pycocotools from disk


def test_evaluator_only_added_images():
    """A quick run over part of a split: by default the other images count as missed."""
    dataset = coco_samples.load_sample(layout.VALIDATION)
    image_id = dataset["images"][0]["id"]
    partial = {key: value for key, value in coco_samples.perfect_predictions(dataset, image_id).items()
               if key != keys.Detection.MASKS}
    everything, only_added = CocoEvaluator(dataset, COCO17), CocoEvaluator(dataset, COCO17, only_added_images=True)
    for evaluation in (everything, only_added):
        evaluation.add(image_id, partial)
    assert only_added.results()[evaluator_lib.KEYPOINTS]["AP"] == pytest.approx(1.0)
    summary = everything.results()
    assert summary[evaluator_lib.KEYPOINTS]["AR"] < 1.0
    assert evaluator_lib.SEGMENTATION not in summary  # no masks given


def test_evaluator_with_empty_predictions_gives_zeros(tmp_path):
    dataset = coco_samples.load_sample(layout.VALIDATION)
    evaluation = CocoEvaluator(dataset, COCO17, output_dir=tmp_path)
    for image in dataset["images"]:
        predictions = _predictions(0, image["height"], image["width"], slots=20)
        evaluation.add(image["id"], predictions)
    summary = evaluation.results()
    assert set(summary[evaluator_lib.KEYPOINTS].values()) == {0.0}
    assert set(summary[evaluator_lib.SEGMENTATION].values()) == {0.0}
    assert json.loads((tmp_path / evaluator_lib.KEYPOINT_RESULTS_FILE).read_text()) == []
    assert set(CocoEvaluator(dataset, COCO17).results()[evaluator_lib.KEYPOINTS].values()) == {0.0}  # nothing added


def test_evaluator_refuses_bad_input(tmp_path):
    dataset = coco_samples.load_sample(layout.VALIDATION)
    image = dataset["images"][0]
    evaluation = CocoEvaluator(dataset, COCO17, output_dir=tmp_path)
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluation.add(123456789, _predictions(1))
    with pytest.raises(ValueError, match="masks of image"):
        evaluation.add(image["id"], _predictions(1, height=6, width=5))
    evaluation.results()
    assert evaluation.num_images == 0  # the refused image left nothing behind
    assert json.loads((tmp_path / evaluator_lib.KEYPOINT_RESULTS_FILE).read_text()) == []
    evaluation.add(image["id"], _predictions(1, image["height"], image["width"]))
    with pytest.raises(ValueError, match="already added"):
        evaluation.add(image["id"], _predictions(1, image["height"], image["width"]))
    with pytest.raises(ValueError, match="unknown evaluator"):
        CocoEvaluator(dataset, COCO17, evaluator="fast")
