"""COCO metrics: perfect detections, OKS by hand, crowd regions, both evaluators, empty results."""

import functools

import numpy as np
import pytest

from personlab_tf.skeleton import COCO17
from personlab_tf.evaluation import backends, metrics, results, selection
from personlab_tf.tfds_builders.coco_person import layout

import coco_samples

SPLITS = (layout.VALIDATION, layout.TRAIN)
THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO's IoU / OKS thresholds
# pycocotools divides by (tp + fp + eps), so a perfect precision is 1 - 2e-16, not 1: compare approximately.


def _rle(mask):
    """A COCO ground truth segmentation (compressed RLE, str counts) of a [H, W] bool mask."""
    return results.encode_masks(mask[None])[0]


def _box_mask(size, top, left, side):
    """[size, size] bool with a side x side square at (top, left)."""
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def _one_person_gt(keypoints, area, image_size=200, extra=()):
    """Ground truth: one image with one non-crowd person of `area` and [17, 3] `keypoints` (+ extra)."""
    person = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": float(area),
              "keypoints": np.asarray(keypoints, float).reshape(-1).tolist(),
              "num_keypoints": int(np.count_nonzero(np.asarray(keypoints)[:, 2] > 0)),
              "bbox": [50.0, 50.0, 100.0, 100.0], "segmentation": _rle(_box_mask(image_size, 50, 50, 100))}
    return {"images": [{"id": 1, "file_name": "1.jpg", "height": image_size, "width": image_size}],
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints)}],
            "annotations": [person, *extra]}


def _keypoint_result(points, score=1.0, image_id=1):
    """A COCO keypoint result from [17, 2] points."""
    triples = np.concatenate([np.asarray(points, float), np.ones((17, 1))], axis=1)
    return {"image_id": image_id, "category_id": 1, "keypoints": triples.reshape(-1).tolist(), "score": score}


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
@pytest.mark.parametrize("split", SPLITS)
def test_ground_truth_as_detections_scores_one(split, evaluator):
    dataset = coco_samples.load_sample(split)
    keypoint_list, segmentation_list = coco_samples.perfect_results(dataset)
    keypoints = metrics.evaluate_keypoints(dataset, keypoint_list, evaluator, sigmas=COCO17.sigmas)
    segmentation = metrics.evaluate_segmentation(dataset, segmentation_list, evaluator)
    for name in ("AP", "AP50", "AP75", "AR"):
        assert keypoints[name] == pytest.approx(1.0, abs=1e-12)
    for name in ("AP", "AP50", "AP75", "AR20"):
        assert segmentation[name] == pytest.approx(1.0, abs=1e-12)
    assert tuple(keypoints) == metrics.KEYPOINT_METRICS == (
        "AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
    assert tuple(segmentation) == (
        "AP", "AP50", "AP75", "APS", "APM", "APL", "AR1", "AR10", "AR20", "ARS", "ARM", "ARL")


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
def test_one_keypoint_offset_by_hand(evaluator):
    """Only the left hip is labelled (sigma 0.107, kappa = 2 sigma = 0.214); area s^2 = 10000.

    The detection is off by (6, 8) px, d = 10: OKS = exp(-d^2 / (2 s^2 kappa^2))
    = exp(-100 / (2 * 10000 * 0.045796)) = exp(-0.1092) = 0.897, so it matches at the thresholds
    0.50 ... 0.85 (8 of 10) and not at 0.90, 0.95: AP = 0.8, AP50 = AP75 = 1; the same for AR.
    """
    keypoints = np.zeros((17, 3))
    keypoints[11] = (100, 100, 2)
    detection = keypoints[:, :2] + (6.0, 8.0)
    scores = metrics.evaluate_keypoints(_one_person_gt(keypoints, 10000), [_keypoint_result(detection)], evaluator,
                                        sigmas=COCO17.sigmas)
    assert scores["AP"] == pytest.approx(0.8) and scores["AR"] == pytest.approx(0.8)
    assert scores["AP50"] == pytest.approx(1.0) and scores["AP75"] == pytest.approx(1.0)
    assert scores["APL"] == pytest.approx(0.8) and scores["APM"] == -1.0  # area 10000 > 96^2: large


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
def test_every_keypoint_offset_lowers_ap_as_oks_predicts(evaluator):
    """All 17 keypoints labelled, each detected d = 8 px to the right, area s^2 = 10000.

    OKS = mean_k exp(-d^2 / (2 s^2 kappa_k^2)) with kappa_k = 2 sigma_k (COCO's `vars = (2 sigma)^2`)
    = 0.7337 (computed below), so the detection matches at 0.50 ... 0.70 (5 of 10 thresholds):
    AP = 0.5, AP50 = 1, AP75 = 0.
    """
    rng = np.random.default_rng(0)
    keypoints = np.concatenate([rng.uniform(60, 140, (17, 2)), np.full((17, 1), 2.0)], axis=1)
    distance, area = 8.0, 10000.0
    kappa = 2 * np.array(COCO17.sigmas)
    oks = np.mean(np.exp(-distance**2 / (2 * area * kappa**2)))
    assert oks == pytest.approx(0.7337, abs=1e-4)
    assert np.min(np.abs(THRESHOLDS - oks)) > 0.01  # not on a threshold: the count below is robust
    expected_ap = np.mean(oks >= THRESHOLDS)
    detection = keypoints[:, :2] + (distance, 0.0)
    scores = metrics.evaluate_keypoints(_one_person_gt(keypoints, area), [_keypoint_result(detection)], evaluator,
                                        sigmas=COCO17.sigmas)
    exact = metrics.evaluate_keypoints(_one_person_gt(keypoints, area),
                                       [_keypoint_result(keypoints[:, :2])], evaluator, sigmas=COCO17.sigmas)
    assert exact["AP"] == pytest.approx(1.0)
    assert scores["AP"] == pytest.approx(expected_ap) == 0.5
    assert scores["AP50"] == pytest.approx(1.0) and scores["AP75"] == 0.0
    assert exact["AP"] - scores["AP"] == pytest.approx(0.5)


def _crowd_scene():
    """100 x 100 image: a person (20 x 20 square at (5, 5), 17 keypoints inside) and a crowd region
    (20 x 20 square at (70, 70)) as in COCO: iscrowd 1, no keypoints."""
    size = 100
    grid = np.stack(np.meshgrid(np.linspace(7, 22, 5), np.linspace(7, 22, 4)), -1).reshape(-1, 2)[:17]
    keypoints = np.concatenate([grid, np.full((17, 1), 2.0)], axis=1)
    person = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 400.0,
              "keypoints": keypoints.reshape(-1).tolist(), "num_keypoints": 17,
              "bbox": [5.0, 5.0, 20.0, 20.0], "segmentation": _rle(_box_mask(size, 5, 5, 20))}
    crowd = {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 400.0,
             "keypoints": [0] * 51, "num_keypoints": 0,
             "bbox": [70.0, 70.0, 20.0, 20.0], "segmentation": _rle(_box_mask(size, 70, 70, 20))}
    dataset = {"images": [{"id": 1, "file_name": "1.jpg", "height": size, "width": size}],
               "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints)}],
               "annotations": [person, crowd]}
    return dataset, keypoints[:, :2]


def _mask_result(mask, score):
    return {"image_id": 1, "category_id": 1, "segmentation": _rle(mask), "score": score}


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
def test_detection_on_a_crowd_region_is_not_a_false_positive(evaluator):
    """The true person scores 0.5; a higher-scored (0.9) extra detection comes first in the ranking.

    On the crowd region it is ignored (AP 1). Elsewhere it is a false positive ranked first, so the
    precision is 1/2 at every recall: AP = 0.5.
    """
    dataset, points = _crowd_scene()
    person_mask = _box_mask(100, 5, 5, 20)
    on_crowd, elsewhere = _box_mask(100, 70, 70, 20), _box_mask(100, 70, 5, 20)
    segm = metrics.evaluate_segmentation
    assert segm(dataset, [_mask_result(person_mask, 0.5), _mask_result(on_crowd, 0.9)], evaluator)["AP"] \
        == pytest.approx(1.0)
    assert segm(dataset, [_mask_result(person_mask, 0.5), _mask_result(elsewhere, 0.9)], evaluator)["AP"] \
        == pytest.approx(0.5)
    # Keypoints: a crowd region has no keypoints; COCO matches a detection to it when the detection lies
    # within the crowd box grown by its size on each side, and ignores it.
    kps = functools.partial(metrics.evaluate_keypoints, sigmas=COCO17.sigmas)
    true = _keypoint_result(points, 0.5)
    inside, outside = np.full((17, 2), 80.0), np.tile([14.0, 80.0], (17, 1))
    assert kps(dataset, [true, _keypoint_result(inside, 0.9)], evaluator)["AP"] == pytest.approx(1.0)
    assert kps(dataset, [true, _keypoint_result(outside, 0.9)], evaluator)["AP"] == pytest.approx(0.5)


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
def test_segmentation_of_the_keypoint_persons(evaluator):
    """The crowd scene's region becomes a person without keypoints (iscrowd 0): it is a second ground truth.

    A detection of the person with keypoints alone finds 1 of 2 persons: segmentation AP 0.505 (precision 1
    at the 51 of COCO's 101 recall points up to 0.5, 0 beyond). Over the keypoint persons the other is a
    crowd region: AP 1, and a detection on it (top score) is ignored rather than a false positive.
    """
    dataset, _ = _crowd_scene()
    dataset["annotations"][1]["iscrowd"] = 0
    person_mask, other = _box_mask(100, 5, 5, 20), _box_mask(100, 70, 70, 20)
    alone, both = [_mask_result(person_mask, 0.5)], [_mask_result(person_mask, 0.5), _mask_result(other, 0.9)]
    keypoint_persons = metrics.keypoint_persons(dataset)
    assert [a["iscrowd"] for a in keypoint_persons["annotations"]] == [0, 1]
    assert [a["iscrowd"] for a in dataset["annotations"]] == [0, 0]  # the ground truth is not changed
    assert metrics.evaluate_segmentation(dataset, alone, evaluator)["AP"] == pytest.approx(51 / 101)
    assert metrics.evaluate_segmentation(dataset, both, evaluator)["AP"] == pytest.approx(1.0)
    for results_list in (alone, both):
        assert metrics.evaluate_segmentation(keypoint_persons, results_list, evaluator)["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
def test_detections_on_real_crowd_regions_are_ignored(evaluator):
    """The train sample's 5 crowd regions, each detected with the top score: AP stays 1."""
    dataset = coco_samples.load_sample(layout.TRAIN)
    crowds = [a for a in dataset["annotations"] if a["iscrowd"]]
    assert len(crowds) == 5
    coco = coco_samples.coco_object(dataset)
    _, segmentation_list = coco_samples.perfect_results(dataset)
    extra = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
              "segmentation": _rle(coco.annToMask(a).astype(bool))} for a in crowds]
    for result in segmentation_list:
        result["score"] = 0.5
    assert metrics.evaluate_segmentation(dataset, extra + segmentation_list, evaluator)["AP"] \
        == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("split", SPLITS)
def test_both_evaluators_give_the_same_numbers(split):
    dataset = coco_samples.load_sample(split)
    keypoint_list, segmentation_list = coco_samples.noisy_results(dataset, seed=3)
    keypoints = functools.partial(metrics.evaluate_keypoints, sigmas=COCO17.sigmas)
    for evaluate, result_list in ((keypoints, keypoint_list),
                                  (metrics.evaluate_segmentation, segmentation_list)):
        reference = evaluate(dataset, result_list, backends.PYCOCOTOOLS)
        fast = evaluate(dataset, result_list, backends.FASTER_COCO_EVAL)
        assert 0.0 < reference["AP"] < 1.0  # a non-trivial case
        assert fast.keys() == reference.keys()
        for name, value in reference.items():
            assert fast[name] == pytest.approx(value, abs=1e-12), name


def test_summary_matches_the_standard_summarize():
    """Our rows equal pycocotools' summarize() wherever it is defined for the same maxDets."""
    dataset = coco_samples.load_sample(layout.TRAIN)
    keypoint_list, segmentation_list = coco_samples.noisy_results(dataset, seed=4)

    coco_eval = metrics.run_cocoeval(dataset, keypoint_list, "keypoints", max_dets=[20], sigmas=COCO17.sigmas)
    stats = backends.summarize_quietly(coco_eval)
    ours = metrics.evaluate_keypoints(dataset, keypoint_list, sigmas=COCO17.sigmas)
    np.testing.assert_allclose([ours[name] for name in metrics.KEYPOINT_METRICS], stats, rtol=0, atol=1e-15)

    coco_eval = metrics.run_cocoeval(dataset, segmentation_list, "segm", max_dets=[1, 10, 20])
    stats = backends.summarize_quietly(coco_eval)
    ours = metrics.evaluate_segmentation(dataset, segmentation_list)
    names = metrics.segmentation_metric_names()
    np.testing.assert_allclose([ours[name] for name in names[1:]], stats[1:], rtol=0, atol=1e-15)
    assert stats[0] == -1  # pycocotools' first row asks for maxDets=100, absent from [1, 10, 20]
    # ... and with COCO's default maxDets our AP is exactly its AP.
    coco_eval = metrics.run_cocoeval(dataset, segmentation_list, "segm", max_dets=[1, 10, 100])
    stats = backends.summarize_quietly(coco_eval)
    assert metrics.summary_value(coco_eval, True, None, "all", 100) == stats[0] > 0
    assert metrics.evaluate_segmentation(dataset, segmentation_list, max_detections=100)["AR100"] == stats[8]


@pytest.mark.parametrize("evaluator", backends.EVALUATORS)
def test_empty_results_give_zeros(evaluator):
    dataset = coco_samples.load_sample(layout.VALIDATION)
    keypoints = metrics.evaluate_keypoints(dataset, [], evaluator, sigmas=COCO17.sigmas)
    segmentation = metrics.evaluate_segmentation(dataset, [], evaluator)
    assert keypoints == {name: 0.0 for name in metrics.KEYPOINT_METRICS}
    assert segmentation == {name: 0.0 for name in metrics.segmentation_metric_names()}


def test_unknown_evaluator_is_refused():
    with pytest.raises(ValueError, match="unknown evaluator"):
        metrics.evaluate_keypoints(coco_samples.load_sample(layout.VALIDATION), [{}], "detectron",
                                   sigmas=COCO17.sigmas)


def test_the_cheapest_variant_within_the_tolerance_of_the_best_on_every_score():
    """b is cheapest but 0.006 below the best network AP; c is within 0.005 on both scores and cheaper than a;
    with 0.0021 only a (0.002 below the best oracle AP); with 0.0 none (no variant is best on both)."""
    scores = {"a": {"oracle": 0.700, "network": 0.600}, "b": {"oracle": 0.702, "network": 0.594},
              "c": {"oracle": 0.697, "network": 0.596}}
    costs = {"a": 30.0, "b": 10.0, "c": 20.0}
    assert selection.cheapest_within(scores, costs, 0.005) == "c"
    assert selection.cheapest_within(scores, costs, 0.0021) == "a"
    assert selection.cheapest_within(scores, costs, 0.0) is None
    assert selection.cheapest_within(scores, costs, 0.01) == "b"
    assert selection.worst_shortfalls(scores) == pytest.approx({"a": 0.002, "b": 0.006, "c": 0.005})
