"""The real COCO samples in ../shared/data end to end: json -> writer -> records -> pipeline -> targets."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from pycocotools.coco import COCO

from personlab_tf import keys
from personlab_tf.data import writer
from personlab_tf.tasks.personlab.targets import TARGET_KEYS, PersonLabData
from personlab_tf.tasks.personlab.task import PersonLabTask

from sample_factory import SHARED_DATA

CROP = 401
STRIDE = 8
ARTIFACTS = Path(os.environ.get("PERSONLAB_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "build" / "test_artifacts"))


@pytest.fixture(scope="module", params=["coco_val_sample", "coco_train_sample"])
def converted(request, tmp_path_factory):
    folder = SHARED_DATA / request.param
    prefix = str(tmp_path_factory.mktemp(request.param) / "records")
    summary = writer.convert(str(folder / "person_keypoints.json"), str(folder / "images"), prefix, num_shards=3)
    return folder, prefix, summary


def evaluation_batches(prefix):
    return PersonLabTask(data=PersonLabData(CROP, STRIDE)).build_dataset(prefix + "-*", batch_size=1, training=False)


def test_every_person_and_crowd_region_is_written(converted):
    folder, _, summary = converted
    data = json.loads((folder / "person_keypoints.json").read_text())
    assert summary["persons"] == len(data["annotations"])
    assert summary["crowd_regions"] == sum(a["iscrowd"] for a in data["annotations"])
    assert summary["images_written"] == len({a["image_id"] for a in data["annotations"]})
    assert summary["warnings"] == {}


def test_targets_follow_the_coco_annotations(converted):
    folder, prefix, _ = converted
    coco = COCO(str(folder / "person_keypoints.json"))
    checked_keypoints = checked_cells = 0
    for features, targets in evaluation_batches(prefix):
        image_id = int(features[keys.Sample.IMAGE_ID][0])
        a, b, c, d, e, f = features[keys.Sample.CROP_TO_IMAGE][0].numpy()
        assert b == d == 0           # evaluation crops are axis aligned
        info = coco.imgs[image_id]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        heat = targets[keys.Map.HEATMAPS][0].numpy()
        # Every labelled keypoint of a non-crowd person lights its nearest grid cell in its channel.
        for ann in anns:
            kp = np.reshape(ann["keypoints"], [17, 3])
            for k in np.flatnonzero((kp[:, 2] > 0) & (ann["iscrowd"] == 0)):
                u, v = (kp[k, 0] - c) / a, (kp[k, 1] - f) / e
                assert heat[int(round(v / STRIDE)), int(round(u / STRIDE)), k] == 1
                checked_keypoints += 1
        # Segmentation at a grid cell = union of the non-crowd masks at the image pixel under it;
        # crowd-only cells carry no segmentation weight.
        person = np.zeros([info["height"], info["width"]], bool)
        crowd = np.zeros_like(person)
        for ann in anns:
            (crowd if ann["iscrowd"] else person)[coco.annToMask(ann) > 0] = True
        seg = targets[keys.Map.SEGMENTATION][0, ..., 0].numpy()
        seg_weight = targets[keys.Map.SEGMENTATION_WEIGHTS][0, ..., 0].numpy()
        for i in range(seg.shape[0]):
            row = int(round(e * STRIDE * i + f))
            for j in range(seg.shape[1]):
                col = int(round(a * STRIDE * j + c))
                if 0 <= row < info["height"] and 0 <= col < info["width"]:
                    assert seg[i, j] == person[row, col]
                    assert seg_weight[i, j] == (0 if crowd[row, col] and not person[row, col] else 1)
                    checked_cells += 1
    assert checked_keypoints > 50 and checked_cells > 1000


def test_training_pipeline_runs_over_every_sample(converted):
    _, prefix, summary = converted
    dataset = PersonLabTask(data=PersonLabData(CROP, STRIDE)).build_dataset(prefix + "-*", batch_size=2, training=True,
                                                                            seed=0)
    for _, made in dataset.take(summary["images_written"]):
        for key in TARGET_KEYS:
            assert np.all(np.isfinite(made[key].numpy())), key


def test_overlay_png_of_a_real_image_with_disks_and_masks(converted):
    """Writes build/test_artifacts/<sample>_targets.png for a person to look at."""
    folder, prefix, _ = converted
    features, targets = max(evaluation_batches(prefix), key=lambda b: float(tf.reduce_sum(b[1][keys.Map.HEATMAPS])))
    size = (CROP, CROP)
    image = features[keys.Sample.IMAGE][0].numpy().astype(np.float32) / 255
    disks = tf.image.resize(tf.reduce_max(targets[keys.Map.HEATMAPS][0], -1, keepdims=True), size, "nearest").numpy()
    seg = tf.image.resize(targets[keys.Map.SEGMENTATION][0], size, "nearest").numpy()
    ignored = tf.image.resize(1 - targets[keys.Map.SEGMENTATION_WEIGHTS][0], size, "nearest").numpy()
    colour = np.concatenate([disks, seg, ignored], -1)
    alpha = 0.45 * colour.max(-1, keepdims=True)
    picture = ((image * (1 - alpha) + colour * alpha) * 255).astype(np.uint8)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{folder.name}_targets.png"
    Image.fromarray(picture).save(path)
    assert path.stat().st_size > 10_000
    assert disks.sum() > 0 and seg.sum() > 0
