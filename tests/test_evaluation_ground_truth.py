"""The COCO ground truth rebuilt from the tfds `coco_person` dataset equals the original JSON's."""

import numpy as np
import pytest

from personlab_tf.skeleton import COCO17
from personlab_tf.evaluation import ground_truth, metrics
from personlab_tf.tfds_builders import coco_person
from personlab_tf.tfds_builders.coco_person import layout

import coco_samples

SPLITS = (layout.TRAIN, layout.VALIDATION)
# Every annotation field COCOeval reads for keypoints and segm (segmentation compared as masks).
EVALUATED_FIELDS = ("image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd")


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_person_gt")
    coco_samples.make_sample_tree(root / "coco")
    return coco_person.prepare(root / "coco", root / "tfds")


@pytest.fixture(scope="module")
def rebuilt(builder):
    """split -> ground truth dict rebuilt from the tfds split."""
    return {split: ground_truth.load_ground_truth(builder, split) for split in SPLITS}


@pytest.mark.parametrize("split", SPLITS)
def test_rebuilt_ground_truth_equals_the_json(rebuilt, split):
    original = coco_samples.coco_object(coco_samples.load_sample(split))
    new = coco_samples.coco_object(rebuilt[split])
    assert new.dataset["categories"][0]["keypoints"] == original.dataset["categories"][0]["keypoints"]
    assert sorted(new.imgs) == sorted(original.imgs)
    for image_id, image in original.imgs.items():
        for key in ("file_name", "height", "width"):
            assert new.imgs[image_id][key] == image[key]
    assert sorted(new.anns) == sorted(original.anns)
    for annotation_id, annotation in original.anns.items():
        for key in EVALUATED_FIELDS:
            assert new.anns[annotation_id][key] == annotation[key], (annotation_id, key)
        np.testing.assert_array_equal(new.annToMask(new.anns[annotation_id]), original.annToMask(annotation))


@pytest.mark.parametrize("split", SPLITS)
def test_metrics_on_rebuilt_ground_truth_equal_metrics_on_the_json(rebuilt, split):
    original = coco_samples.load_sample(split)
    keypoint_list, segmentation_list = coco_samples.noisy_results(original, seed=1)
    assert metrics.evaluate_keypoints(rebuilt[split], keypoint_list, sigmas=COCO17.sigmas) == \
        metrics.evaluate_keypoints(original, keypoint_list, sigmas=COCO17.sigmas)
    assert metrics.evaluate_segmentation(rebuilt[split], segmentation_list) == \
        metrics.evaluate_segmentation(original, segmentation_list)
