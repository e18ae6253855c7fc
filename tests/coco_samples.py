"""The real COCO samples of ../shared/data as COCO trees and as perfect detections, for tests.

The samples are read where they are (never copied into the repository): `make_sample_tree` links them
into a temporary COCO 2017 tree for the tfds builder.
"""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from personlab_tf import keys
from personlab_tf.evaluation import results
from personlab_tf.tfds_builders.coco_person import layout

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# tfds split -> sample folder.
SAMPLES = {layout.VALIDATION: "coco_val_sample", layout.TRAIN: "coco_train_sample"}


def sample_json_path(split):
    """The annotations JSON of the sample used as `split`."""
    return SHARED_DATA / SAMPLES[split] / "person_keypoints.json"


def sample_images_dir(split):
    """The images directory of the sample used as `split`."""
    return SHARED_DATA / SAMPLES[split] / "images"


def load_sample(split):
    """The sample's COCO JSON as a dict."""
    with open(sample_json_path(split)) as f:
        return json.load(f)


def coco_object(dataset):
    """A pycocotools COCO object of a COCO dict (no printing)."""
    coco = COCO()
    coco.dataset = json.loads(json.dumps(dataset))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def make_sample_tree(root, splits=(layout.TRAIN, layout.VALIDATION)):
    """Links the samples into a COCO 2017 tree at `root` (one sample per split); returns `root`."""
    for split in splits:
        layout.arrange_coco_tree(root, split, sample_json_path(split), sample_images_dir(split))
    return root


def perfect_predictions(dataset, image_id):
    """Predictions of one image that reproduce its ground truth (results.py layout, instance score 1).

    Persons: every non-crowd annotation; keypoints (x, y) of the JSON, masks from `annToMask`.
    Persons without labelled keypoints are left out (COCOeval ignores them as keypoint ground truth,
    so detecting them would count as false positives).
    """
    coco = coco_object(dataset)
    persons = [a for a in coco.imgToAnns[image_id] if not a["iscrowd"] and a["num_keypoints"] > 0]
    image = coco.imgs[image_id]
    count = len(persons)
    keypoints = np.array([a["keypoints"] for a in persons], np.float32).reshape(count, 17, 3)
    masks = np.array([coco.annToMask(a) for a in persons], bool)
    masks = masks.reshape(count, image["height"], image["width"])
    return {keys.Detection.KEYPOINTS: keypoints[..., :2], keys.Detection.KEYPOINT_SCORES: np.ones((count, 17), np.float32),
            keys.Detection.INSTANCE_SCORES: np.ones(count, np.float32), keys.Detection.MASKS: masks}


def perfect_results(dataset):
    """(keypoint results, segmentation results) equal to the ground truth of a COCO dict.

    Keypoints: every non-crowd person with labelled keypoints. Masks: every non-crowd person (with or
    without keypoints), score 1.
    """
    coco = coco_object(dataset)
    keypoint_list, segmentation_list = [], []
    for annotation in dataset["annotations"]:
        if annotation["iscrowd"]:
            continue
        base = {"image_id": annotation["image_id"], "category_id": 1, "score": 1.0}
        if annotation["num_keypoints"] > 0:
            keypoint_list.append(dict(base, keypoints=list(annotation["keypoints"])))
        mask = coco.annToMask(annotation).astype(bool)[None]
        segmentation_list.append(dict(base, segmentation=results.encode_masks(mask)[0]))
    return keypoint_list, segmentation_list


def noisy_results(dataset, seed=0):
    """(keypoint results, segmentation results) of imperfect detections of a COCO dict's persons.

    Keypoints move by Gaussian noise of 2-12 px, masks shift by up to 6 px, one person in five is
    missed, each image gets one false positive, and scores are random: every metric lands strictly
    between 0 and 1, which makes comparisons meaningful.
    """
    rng = np.random.default_rng(seed)
    coco = coco_object(dataset)
    keypoint_list, segmentation_list = [], []
    for image in dataset["images"]:
        height, width = image["height"], image["width"]
        for annotation in coco.imgToAnns[image["id"]]:
            if annotation["iscrowd"] or rng.random() < 0.2:
                continue
            base = {"image_id": image["id"], "category_id": 1}
            if annotation["num_keypoints"] > 0:
                points = np.reshape(annotation["keypoints"], (17, 3))[:, :2].astype(float)
                points += rng.normal(0.0, rng.uniform(2.0, 12.0), points.shape)
                keypoint_list.append(dict(base, keypoints=np.concatenate(
                    [points, np.ones((17, 1))], axis=1).reshape(-1).tolist(), score=float(rng.random())))
            mask = np.roll(coco.annToMask(annotation).astype(bool), rng.integers(-6, 7, 2), axis=(0, 1))
            segmentation_list.append(dict(base, segmentation=results.encode_masks(mask[None])[0],
                                          score=float(rng.random())))
        false_points = np.concatenate([rng.uniform(0, [width, height], (17, 2)), np.ones((17, 1))], axis=1)
        keypoint_list.append({"image_id": image["id"], "category_id": 1,
                              "keypoints": false_points.reshape(-1).tolist(), "score": float(rng.random())})
        false_mask = np.zeros((1, height, width), bool)
        false_mask[0, :height // 4, :width // 4] = True
        segmentation_list.append({"image_id": image["id"], "category_id": 1, "score": float(rng.random()),
                                  "segmentation": results.encode_masks(false_mask)[0]})
    return keypoint_list, segmentation_list
