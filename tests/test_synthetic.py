"""Tests of the procedural synthetic-people COCO dataset (personlab_tf.data.synthetic)."""

import collections
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from personlab_tf import constants
from personlab_tf.data import coco_format, synthetic
from personlab_tf.tasks.parts import part_sets

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL_IMAGES = {"min_side": 192, "max_side": 320}
NUM_IMAGES = 40
SEED = 0


def _generate(path, num_images, seed):
    return synthetic.generate_dataset(str(path), num_images, seed, **SMALL_IMAGES)


def _files(path):
    """{relative path: bytes} of every file written under `path`."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _rasterise(segmentation, height, width):
    """[H, W] bool mask of a COCO segmentation (polygons or uncompressed RLE)."""
    rles = mask_utils.frPyObjects(segmentation, height, width)
    return mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles).astype(bool)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(directory, summary, COCO, hidden keypoints) of a 40-image dataset."""
    path = tmp_path_factory.mktemp("synthetic")
    summary = _generate(path, NUM_IMAGES, SEED)
    coco = COCO(str(path / coco_format.ANNOTATIONS_FILE))
    hidden = json.loads((path / synthetic.HIDDEN_KEYPOINTS_FILE).read_text())
    return path, summary, coco, hidden


def _persons(coco):
    return [a for a in coco.dataset["annotations"] if not a["iscrowd"]]


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _generate(first, 4, seed=3)
    _generate(second, 4, seed=3)
    _generate(other, 4, seed=4)
    assert _files(first) == _files(second)
    differing = _files(other)
    for name, content in _files(first).items():
        assert differing[name] != content, name


def test_image_depends_only_on_seed_and_index(tmp_path):
    _generate(tmp_path / "two", 2, seed=5)
    _generate(tmp_path / "five", 5, seed=5)
    for image_id in (1, 2):
        name = f"images/{image_id:012d}.jpg"
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "five" / name).read_bytes()
    two = json.loads((tmp_path / "two" / coco_format.ANNOTATIONS_FILE).read_text())["annotations"]
    five = json.loads((tmp_path / "five" / coco_format.ANNOTATIONS_FILE).read_text())["annotations"]
    assert two == [a for a in five if a["image_id"] <= 2]


def test_coco_layout(dataset):
    path, summary, coco, _ = dataset
    (category,) = coco.dataset["categories"]
    assert category["id"] == constants.PERSON_CATEGORY_ID == 1
    assert category["name"] == "person"
    assert tuple(category["keypoints"]) == constants.KEYPOINT_NAMES
    assert all(1 <= k <= constants.NUM_KEYPOINTS for edge in category["skeleton"] for k in edge)
    assert [image["id"] for image in coco.dataset["images"]] == list(range(1, NUM_IMAGES + 1))
    for image in coco.dataset["images"]:
        pixels = cv2.imread(str(path / "images" / image["file_name"]))
        assert image["file_name"] == f"{image['id']:012d}.jpg"
        assert pixels.shape == (image["height"], image["width"], 3)
        assert 192 <= image["height"] <= 320 and 192 <= image["width"] <= 320
    ids = [a["id"] for a in coco.dataset["annotations"]]
    assert len(ids) == len(set(ids))
    for a in coco.dataset["annotations"]:
        assert a["category_id"] == 1 and a["iscrowd"] in (0, 1)
        assert len(a["keypoints"]) == 3 * constants.NUM_KEYPOINTS
    persons = _persons(coco)
    assert summary == {
        "images": NUM_IMAGES, "persons": len(persons),
        "persons_with_keypoints": sum(a["num_keypoints"] > 0 for a in persons),
        "crowd_regions": len(coco.dataset["annotations"]) - len(persons),
        "images_without_people": NUM_IMAGES - len({a["image_id"] for a in coco.dataset["annotations"]}),
    }


def test_area_and_box_match_the_mask(dataset):
    _, _, coco, _ = dataset
    for a in coco.dataset["annotations"]:
        mask = coco.annToMask(a).astype(bool)
        # Polygons are traced so that pycocotools rasterises them back to the rendered pixels exactly.
        assert mask.sum() == a["area"] > 0
        rows, columns = np.nonzero(mask)
        x, y, w, h = a["bbox"]
        assert (x, y, x + w - 1, y + h - 1) == (columns.min(), rows.min(), columns.max(), rows.max())
        if not a["iscrowd"]:
            assert a["segmentation"] and all(len(poly) >= 6 and len(poly) % 2 == 0
                                             for poly in a["segmentation"])


def test_keypoint_visibility(dataset):
    _, _, coco, _ = dataset
    counts = collections.Counter()
    for image_id, image in coco.imgs.items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        masks = {a["id"]: coco.annToMask(a).astype(bool) for a in anns if not a["iscrowd"]}
        for a in anns:
            keypoints = np.array(a["keypoints"], float).reshape(-1, 3)
            assert a["num_keypoints"] == np.count_nonzero(keypoints[:, 2])
            for x, y, v in keypoints:
                counts[v] += 1
                if v == 0:
                    assert x == y == 0
                    continue
                column, row = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
                assert 0 <= column < image["width"] and 0 <= row < image["height"]
                covering = [i for i, m in masks.items() if m[row, column]]
                if v == 2:  # on the person's own visible region
                    assert covering == [a["id"]]
                else:  # v == 1: hidden by exactly one other person, drawn in front
                    assert v == 1 and len(covering) == 1 and covering[0] != a["id"]
    assert counts[1] > 0 and counts[2] > counts[1]


def test_part_labels_cover_exactly_the_people(dataset):
    path, _, coco, _ = dataset
    seen = collections.Counter()
    for image_id, image in coco.imgs.items():
        labels = np.asarray(Image.open(coco_format.part_labels_path(path / coco_format.PART_LABELS_DIR,
                                                                    image["file_name"])))
        assert labels.shape == (image["height"], image["width"]) and labels.dtype == np.uint8
        people = np.zeros_like(labels, bool)
        for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            people |= coco.annToMask(a).astype(bool)
        # Every visible pixel of a person or crowd figure has a body part, and nothing else has one.
        np.testing.assert_array_equal(labels > 0, people)
        seen.update(labels[labels > 0].tolist())
    assert set(seen) == set(range(1, part_sets.SYNTHETIC.num_classes))


def test_part_labels_follow_the_body(dataset):
    """A visible (v = 2) keypoint's pixel shows the part the keypoint belongs to. The head is drawn last,
    so a nose always shows head; other joints may be covered by the figure's own hand or arm."""
    path, _, coco, _ = dataset
    expected = {"nose": {"head"}, "left_wrist": {"lower_arm", "hand"}, "left_ankle": {"lower_leg", "foot"},
                "left_knee": {"upper_leg", "lower_leg"}, "left_hip": {"torso", "upper_leg"}}
    names = part_sets.SYNTHETIC.classes
    counts = collections.Counter()
    for image_id, image in coco.imgs.items():
        labels = np.asarray(Image.open(coco_format.part_labels_path(path / coco_format.PART_LABELS_DIR,
                                                                    image["file_name"])))
        for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            keypoints = np.array(a["keypoints"], float).reshape(-1, 3)
            for name, parts in expected.items():
                x, y, v = keypoints[constants.KEYPOINT_NAMES.index(name)]
                if v == 2:
                    shown = names[labels[int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]]
                    counts[name, shown in parts] += 1
    assert counts["nose", False] == 0 and counts["nose", True] > 50
    for name in expected:
        assert counts[name, True] >= 0.9 * (counts[name, True] + counts[name, False]), name


def test_person_faces_the_camera(dataset):
    """The person's left side is on the image's right (COCO convention) for shoulders and hips."""
    _, _, coco, hidden = dataset
    all_keypoints = [a["keypoints"] for a in _persons(coco) if a["num_keypoints"]]
    all_keypoints += [h["keypoints"] for h in hidden]
    for keypoints in all_keypoints:
        keypoints = np.array(keypoints, float).reshape(-1, 3)
        for part in ("shoulder", "hip", "eye"):
            left = keypoints[constants.KEYPOINT_NAMES.index(f"left_{part}")]
            right = keypoints[constants.KEYPOINT_NAMES.index(f"right_{part}")]
            if left[2] and right[2]:
                assert left[0] > right[0]


def test_scene_statistics(dataset):
    _, _, coco, _ = dataset
    per_image = collections.Counter(a["image_id"] for a in _persons(coco))
    counts = [per_image[image_id] for image_id in coco.imgs]
    assert min(counts) == 0 and 20 <= max(counts) <= 30
    assert sum(1 <= c <= 6 for c in counts) > NUM_IMAGES / 2
    persons = _persons(coco)
    assert any(a["num_keypoints"] == 0 for a in persons)
    assert any(a["num_keypoints"] > 0 for a in persons)
    assert all(a["num_keypoints"] == 0 for a in persons if a["area"] < synthetic.SMALL_AREA)
    crowds = [a for a in coco.dataset["annotations"] if a["iscrowd"]]
    assert crowds
    for crowd in crowds:
        image = coco.imgs[crowd["image_id"]]
        segmentation = crowd["segmentation"]
        assert isinstance(segmentation["counts"], list)
        assert segmentation["size"] == [image["height"], image["width"]]
        assert sum(segmentation["counts"]) == image["height"] * image["width"]
        assert crowd["keypoints"] == [0] * 51 and crowd["num_keypoints"] == 0


def test_hidden_keypoints(dataset):
    _, _, coco, hidden = dataset
    unlabelled = {a["id"] for a in _persons(coco) if a["num_keypoints"] == 0}
    assert [h["id"] for h in hidden] == sorted(unlabelled) and unlabelled
    for entry in hidden:
        person = coco.anns[entry["id"]]
        image = coco.imgs[person["image_id"]]
        keypoints = np.array(entry["keypoints"], float).reshape(-1, 3)
        assert keypoints.shape == (constants.NUM_KEYPOINTS, 3)
        inside = ((np.floor(keypoints[:, :2] + 0.5) >= 0).all(axis=1)
                  & (np.floor(keypoints[:, 0] + 0.5) < image["width"])
                  & (np.floor(keypoints[:, 1] + 0.5) < image["height"]))
        np.testing.assert_array_equal(keypoints[:, 2] > 0, inside)
        mask = coco.annToMask(person)
        for x, y, v in keypoints[keypoints[:, 2] == 2]:
            assert mask[int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]


def test_mask_to_polygons_round_trip_with_holes():
    rng = np.random.default_rng(0)
    ring = np.zeros((7, 9), bool)
    ring[1:6, 2:8] = True
    ring[2:4, 4:6] = False
    ring[4, 3] = False  # a second hole
    masks = [ring] + [cv2.resize(rng.random((5, 5)), (23, 17)) > 0.55 for _ in range(50)]
    for mask in masks:
        polygons = synthetic.mask_to_polygons(mask)
        np.testing.assert_array_equal(_rasterise(polygons, *mask.shape), mask)


def test_uncompressed_rle_matches_pycocotools():
    mask = np.zeros((5, 4), bool)
    mask[0, 0] = mask[2:5, 1] = mask[4, 3] = True
    rle = synthetic.mask_to_uncompressed_rle(mask)
    # Column-major runs, starting with a (here empty) run of zeros.
    assert rle == {"counts": [0, 1, 6, 3, 9, 1], "size": [5, 4]}
    np.testing.assert_array_equal(_rasterise(rle, 5, 4), mask)


def test_script_prints_summary_last(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/make_synthetic_coco.py", "--output", str(tmp_path), "--num_images", "3",
         "--seed", "1", "--min_side", "128", "--max_side", "160"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["images"] == 3 and summary["seconds"] >= 0
    assert set(summary) == {"images", "persons", "persons_with_keypoints", "crowd_regions",
                            "images_without_people", "seconds"}
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 3
