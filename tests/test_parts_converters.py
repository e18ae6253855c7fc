"""Readers of DensePose-COCO, MHP v2 and PASCAL-Person-Part (personlab_tf/parts/converters.py), on
fixtures written in each dataset's own format from a synthetic scene whose truth is known."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from personlab_tf import constants
from personlab_tf.data import coco_format, synthetic, writer
from personlab_tf.tasks.parts import converters, part_sets

from inference_fixtures import REPO, run_script

COCO_TO_MPII = {coco_index: mpii for mpii, coco_index in converters.MPII_TO_COCO.items()}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A synthetic parts dataset: (directory, COCO api, {image id: part map})."""
    path = tmp_path_factory.mktemp("scene")
    synthetic.generate_dataset(str(path), 3, seed=4, min_side=160, max_side=200, scene=synthetic.PARTS_SCENE)
    api = COCO(str(path / coco_format.ANNOTATIONS_FILE))
    maps = {i: np.asarray(Image.open(coco_format.part_labels_path(path / coco_format.PART_LABELS_DIR,
                                                                  api.imgs[i]["file_name"]))) for i in api.imgs}
    return path, api, maps


def png(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, np.uint8)).save(path)


def converted(output):
    data = json.loads((output / "person_keypoints.json").read_text())
    maps = {image["id"]: np.asarray(Image.open(coco_format.part_labels_path(output / "part_labels", image["file_name"])))
            for image in data["images"]}
    return data, maps


def decoded(annotation):
    return mask_utils.decode({"size": annotation["segmentation"]["size"],
                              "counts": annotation["segmentation"]["counts"].encode("ascii")}).astype(bool)


# --------------------------------------------------------------------------------------- DensePose


def dp_masks(part_map, mask, bbox):
    """The 14 dp_masks RLEs of one person: its parts in its box, resampled to 256 x 256 (nearest)."""
    x, y, w, h = bbox
    rows = (y + (np.arange(256) + 0.5) * h / 256).astype(int)
    columns = (x + (np.arange(256) + 0.5) * w / 256).astype(int)
    grid = np.where(mask, part_map, 0)[np.ix_(rows, columns)]
    out = []
    for index in range(14):
        part = grid == index + 1
        encoded = mask_utils.encode(np.asfortranarray(part.astype(np.uint8)))
        out.append({"size": [256, 256], "counts": encoded["counts"].decode("ascii")} if part.any() else 0)
    return out


def test_densepose_parts_come_back_in_the_boxes(scene, tmp_path):
    path, api, maps = scene
    data = json.loads((path / coco_format.ANNOTATIONS_FILE).read_text())
    persons = [a for a in data["annotations"] if not a["iscrowd"]]
    for annotation in persons[2:]:
        annotation["dp_masks"] = dp_masks(maps[annotation["image_id"]], api.annToMask(annotation).astype(bool),
                                          annotation["bbox"])
    persons[1]["dp_masks"] = [0] * 13                     # malformed: 13 entries
    (tmp_path / "dp.json").write_text(json.dumps(data))
    summary = converters.convert_densepose(str(tmp_path / "dp.json"), str(tmp_path / "out"))
    assert summary["warnings"] == {converters.BAD_DP_MASKS: 1}
    assert summary["persons_with_parts"] == len(persons) - 2
    out, out_maps = converted(tmp_path / "out")
    flags = {a["id"]: a["has_parts"] for a in out["annotations"]}
    assert flags[persons[0]["id"]] == 0 and flags[persons[1]["id"]] == 0 and flags[persons[2]["id"]] == 1
    assert not any(key.startswith("dp_") for a in out["annotations"] for key in a)
    # The round trip box -> 256 x 256 -> box is nearest-neighbour both ways: almost every pixel comes back.
    agree = total = 0
    for annotation in persons[2:]:
        mask = api.annToMask(annotation).astype(bool)
        agree += np.sum(out_maps[annotation["image_id"]][mask] == maps[annotation["image_id"]][mask])
        total += mask.sum()
    assert agree / total > 0.9


def test_place_in_box_hand_values():
    grid = np.zeros((256, 256), np.uint8)
    grid[:, 128:] = 3
    placed = converters.place_in_box(grid, [2, 1, 4, 2], 5, 8)
    np.testing.assert_array_equal(placed[1:3, 2:6], [[0, 0, 3, 3], [0, 0, 3, 3]])
    assert placed.sum() == 3 * 4


# --------------------------------------------------------------------------------------- MHP v2


def write_mhp(scene, root, drop_pose_of=None):
    """The scene in MHP v2's layout under root/train; returns {name: image id}."""
    path, api, maps = scene
    names = {}
    for image_id, info in api.imgs.items():
        name = f"img{image_id}"
        names[name] = image_id
        (root / "train" / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(path / coco_format.IMAGES_DIR / info["file_name"], root / "train" / "images" / f"{name}.jpg")
        persons = [a for a in api.loadAnns(api.getAnnIds(imgIds=image_id)) if not a["iscrowd"]]
        poses = {}
        for n, annotation in enumerate(persons, start=1):
            mask = api.annToMask(annotation).astype(bool)
            png(root / "train" / "parsing_annos" / f"{name}_{len(persons):02d}_{n:02d}.png",
                np.where(mask, maps[image_id], 0))
            rows = -np.ones((20, 3))
            keypoints = np.array(annotation["keypoints"], float).reshape(-1, 3)
            for k, mpii in COCO_TO_MPII.items():
                if keypoints[k, 2] > 0:
                    rows[mpii] = (keypoints[k, 0], keypoints[k, 1], 0 if keypoints[k, 2] == 2 else 1)
            poses[f"person_{n - 1}"] = rows
        if name != drop_pose_of:
            (root / "train" / "pose_annos").mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(root / "train" / "pose_annos" / f"{name}.mat", poses)
    (root / "list").mkdir(parents=True, exist_ok=True)
    (root / "list" / "train.txt").write_text("\n".join(names) + "\nmissing_image\n")
    return names


def test_mhp_persons_masks_parts_and_joints(scene, tmp_path):
    _, api, maps = scene
    names = write_mhp(scene, tmp_path / "mhp", drop_pose_of="img2")
    summary = converters.convert_mhp(str(tmp_path / "mhp"), "train", str(tmp_path / "out"))
    persons_2 = len([a for a in api.loadAnns(api.getAnnIds(imgIds=2)) if not a["iscrowd"]])
    assert summary["warnings"] == {converters.MISSING_IMAGE: 1, converters.MISSING_POSE: 1 + persons_2}
    out, out_maps = converted(tmp_path / "out")
    assert [image["file_name"] for image in out["images"]] == [f"{name}.jpg" for name in names]
    for image in out["images"]:
        truth_id = names[image["file_name"][:-4]]
        np.testing.assert_array_equal(out_maps[image["id"]], maps[truth_id])
        truths = [a for a in api.loadAnns(api.getAnnIds(imgIds=truth_id)) if not a["iscrowd"]]
        mine = [a for a in out["annotations"] if a["image_id"] == image["id"]]
        assert len(mine) == len(truths)
        for annotation, truth in zip(mine, truths):
            np.testing.assert_array_equal(decoded(annotation), api.annToMask(truth).astype(bool))
            kept = np.array(annotation["keypoints"]).reshape(-1, 3)
            expected = np.array(truth["keypoints"], float).reshape(-1, 3)
            if truth_id == 2:
                assert not kept[:, 2].any()
                continue
            for k in range(constants.NUM_KEYPOINTS):
                if k in COCO_TO_MPII:
                    np.testing.assert_allclose(kept[k], expected[k], atol=0.01)
                else:
                    assert kept[k, 2] == 0          # nose, eyes and ears are not MHP joints


def test_mhp_records_carry_its_part_set(scene, tmp_path):
    write_mhp(scene, tmp_path / "mhp")
    converters.convert_mhp(str(tmp_path / "mhp"), "train", str(tmp_path / "out"))
    summary = writer.convert(str(tmp_path / "out" / "person_keypoints.json"), str(tmp_path / "mhp" / "train" / "images"),
                             str(tmp_path / "records" / "train"), part_labels_dir=str(tmp_path / "out" / "part_labels"),
                             num_part_classes=part_sets.MHP_V2.num_classes)
    assert summary["warnings"] == {} and summary["images_written"] == 3 and summary["persons_with_parts"] > 0


# --------------------------------------------------------------------------------------- PASCAL


def test_pascal_person_part_instances_parts_and_keypoints(scene, tmp_path):
    path, api, maps = scene
    root = tmp_path / "pascal"
    names = {}
    keypoints = {}
    for image_id, info in api.imgs.items():
        name = f"2008_{image_id:06d}"
        names[name] = image_id
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        shutil.copy(path / coco_format.IMAGES_DIR / info["file_name"], root / "JPEGImages" / f"{name}.jpg")
        objects = np.zeros((info["height"], info["width"]), np.uint8)
        classes = np.zeros_like(objects)
        persons = [a for a in api.loadAnns(api.getAnnIds(imgIds=image_id)) if not a["iscrowd"]]
        for n, annotation in enumerate(persons, start=1):
            mask = api.annToMask(annotation).astype(bool)
            objects[mask], classes[mask] = n, converters.PASCAL_PERSON_CLASS
        objects[:3, :3], classes[:3, :3] = len(persons) + 1, 9     # a chair
        objects[-1, :], classes[-1, :] = converters.VOID, converters.VOID
        parts = np.minimum(maps[image_id], 6)
        parts[-1, :] = converters.VOID
        png(root / "SegmentationObject" / f"{name}.png", objects)
        png(root / "SegmentationClass" / f"{name}.png", classes)
        png(root / "SegmentationPart" / f"{name}.png", parts)
        keypoints[name] = {"1": persons[0]["keypoints"]}
    keypoints[next(iter(names))]["2"] = [1, 2, 3]          # malformed
    (root / "train.txt").write_text("\n".join(names))
    (tmp_path / "kp.json").write_text(json.dumps(keypoints))
    summary = converters.convert_pascal_person_part(str(root), "train", str(tmp_path / "out"), str(tmp_path / "kp.json"))
    assert summary["warnings"] == {converters.BAD_KEYPOINTS: 1}
    out, out_maps = converted(tmp_path / "out")
    for image in out["images"]:
        truth_id = names[image["file_name"][:-4]]
        truths = [a for a in api.loadAnns(api.getAnnIds(imgIds=truth_id)) if not a["iscrowd"]]
        mine = [a for a in out["annotations"] if a["image_id"] == image["id"]]
        assert len(mine) == len(truths)                   # the chair is not a person
        expected_parts = np.minimum(maps[truth_id], 6)
        expected_parts[-1, :] = 0                        # void -> background
        np.testing.assert_array_equal(out_maps[image["id"]], expected_parts)
        np.testing.assert_allclose(mine[0]["keypoints"], truths[0]["keypoints"], atol=0.01)
        for annotation, truth in zip(mine, truths):
            truth_mask = api.annToMask(truth).astype(bool)
            truth_mask[-1, :] = False
            np.testing.assert_array_equal(decoded(annotation), truth_mask)


def test_script_formats_and_errors(scene, tmp_path):
    write_mhp(scene, tmp_path / "mhp")
    _, summary = run_script("convert_parts_dataset.py", "--format", "mhp_v2", "--root", str(tmp_path / "mhp"),
                            "--split", "train", "--output", str(tmp_path / "out"))
    assert summary["images"] == 3 and summary["persons_with_parts"] == summary["persons"] > 0
    for extra in (["--format", "densepose"], ["--format", "mhp_v2", "--root", str(tmp_path / "nowhere")]):
        result = subprocess.run([sys.executable, str(REPO / "scripts" / "convert_parts_dataset.py"), *extra,
                                 "--output", str(tmp_path / "x")], capture_output=True, text=True, timeout=300)
        assert result.returncode == 1 and "Traceback" not in result.stderr and "error:" in result.stderr
