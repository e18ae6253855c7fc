"""Readers of DensePose-COCO, MHP v2 and PASCAL-Person-Part (personlab_tf/tasks/parts/converters/), on
fixtures written in each dataset's own layout (field names, dtypes, file naming; MATLAB files written with
scipy.io.savemat in the structure of the real ones) from synthetic scenes whose truth is known, and on
hand-made overlaps that the one definition of a person's parts must resolve."""

import json
import logging
import shutil

import numpy as np
import pytest
import scipy.io
import scipy.ndimage
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from personlab_tf import skeleton
from personlab_tf.data import coco_format, synthetic, synthetic_scene, writer
from personlab_tf.tasks.parts import metrics, part_sets
from personlab_tf.tasks.parts.converters import common, densepose, mhp_v2, pascal_person_part

from inference_fixtures import run_script, script_error

# The 12 MHP v2 (MPII) joints that are COCO keypoints: MHP joint -> COCO keypoint, by name.
MHP_TO_COCO = {j: skeleton.COCO17.keypoints.index(name) for j, name in enumerate(skeleton.MHP_V2.keypoints)
               if name in skeleton.COCO17.keypoints}
COCO_TO_MPII = {coco_index: mpii for mpii, coco_index in MHP_TO_COCO.items()}
# PASCAL-Person-Part's joints (the project's reading): its head is COCO's nose, its neck no COCO keypoint,
# its 12 limb joints COCO's 12 with the same names.
PASCAL_TO_COCO = {0: 0, **{j: skeleton.COCO17.keypoints.index(name)
                           for j, name in enumerate(skeleton.PASCAL_PERSON_PART.keypoints) if j >= 2}}
# Synthetic classes (background, head, torso, upper arm, lower arm, hand, upper leg, lower leg, foot) ->
# PASCAL-Person-Part's (background, head, torso, upper arm, lower arm, upper leg, lower leg), and the
# PASCAL-Part part names they stand for.
SYNTHETIC_TO_PASCAL = np.array([0, 1, 2, 3, 4, 4, 5, 6, 6], np.uint8)
PASCAL_PART_NAMES = {1: "head", 2: "torso", 3: "luarm", 4: "llarm", 5: "lhand", 6: "luleg", 7: "llleg", 8: "lfoot"}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A synthetic parts dataset: (directory, COCO api, {image id: part map})."""
    path = tmp_path_factory.mktemp("scene")
    synthetic.generate_dataset(str(path), 3, seed=4, min_side=160, max_side=200, scene=synthetic_scene.PARTS_SCENE)
    api = COCO(str(path / coco_format.ANNOTATIONS_FILE))
    maps = {i: np.asarray(Image.open(coco_format.part_labels_path(path / coco_format.PART_LABELS_DIR,
                                                                  api.imgs[i]["file_name"]))) for i in api.imgs}
    return path, api, maps


def png(path, values, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.asarray(values, np.uint8)
    Image.fromarray(np.repeat(values[..., None], 3, axis=2) if channels == 3 else values).save(path)


def converted(output):
    data = json.loads((output / "person_keypoints.json").read_text())
    maps = {image["id"]: np.asarray(Image.open(coco_format.part_labels_path(output / "part_labels", image["file_name"])))
            for image in data["images"]}
    return data, maps


def decoded(annotation):
    return mask_utils.decode({"size": annotation["segmentation"]["size"],
                              "counts": annotation["segmentation"]["counts"].encode("ascii")}).astype(bool)


def persons_of(api, image_id):
    return [a for a in api.loadAnns(api.getAnnIds(imgIds=image_id)) if not a["iscrowd"]]


def assert_one_definition(data, maps):
    """Every image: part-labelled persons' masks are disjoint and the map's part pixels lie inside them."""
    for image in data["images"]:
        labelled = [decoded(a) for a in data["annotations"] if a["image_id"] == image["id"] and a["has_parts"]]
        if labelled:
            assert np.sum(labelled, axis=0).max() <= 1
            assert not (maps[image["id"]] > 0)[~np.any(labelled, axis=0)].any()


# --------------------------------------------------------------------------------------- DensePose


def dp_masks(part_map, mask, bbox, integer_box=False):
    """The 14 dp_masks RLEs of one person: its parts in its box, resampled to 256 x 256 (nearest): cell i at
    the pixel of x + (i + 0.5) w / 256 (the inverse of `place_in_box`), or with `integer_box` at pixel
    int(x) + ceil(i int(w) / 256) (the inverse of `place_in_integer_box` for boxes up to 256 pixels)."""
    x, y, w, h = bbox
    if integer_box:
        x, y, w, h = (int(v) for v in bbox)
        rows = y + np.minimum(-(-np.arange(256) * h // 256), h - 1)
        columns = x + np.minimum(-(-np.arange(256) * w // 256), w - 1)
    else:
        rows = (y + (np.arange(256) + 0.5) * h / 256).astype(int)
        columns = (x + (np.arange(256) + 0.5) * w / 256).astype(int)
    grid = np.where(mask, part_map, 0)[np.ix_(rows, columns)]
    out = []
    for index in range(14):
        part = grid == index + 1
        encoded = mask_utils.encode(np.asfortranarray(part.astype(np.uint8)))
        out.append({"size": [256, 256], "counts": encoded["counts"].decode("ascii")} if part.any() else [])
    return out


@pytest.mark.parametrize("reading", densepose.DENSEPOSE_READINGS)
def test_densepose_parts_come_back_in_the_boxes(scene, tmp_path, reading):
    path, api, maps = scene
    data = json.loads((path / coco_format.ANNOTATIONS_FILE).read_text())
    persons = [a for a in data["annotations"] if not a["iscrowd"]]
    for annotation in persons[2:]:
        annotation["dp_masks"] = dp_masks(maps[annotation["image_id"]], api.annToMask(annotation).astype(bool),
                                          annotation["bbox"])
        annotation.update(dp_x=[1.0], dp_y=[2.0], dp_I=[1.0], dp_U=[0.5], dp_V=[0.5])
    persons[1]["dp_masks"] = [[]] * 13                     # malformed: 13 entries
    (tmp_path / "dp.json").write_text(json.dumps(data))
    summary = densepose.convert_densepose(str(tmp_path / "dp.json"), str(tmp_path / "out"), reading=reading)
    assert summary["warnings"] == {common.BAD_DP_MASKS: 1}
    out, out_maps = converted(tmp_path / "out")
    assert out["categories"] == [skeleton.COCO17.category_entry()]
    assert {a["category_id"] for a in out["annotations"]} == {skeleton.COCO17.category_id}
    flags = {a["id"]: a["has_parts"] for a in out["annotations"]}
    # persons[0] has no dp_masks: without parts under `mask`; background under `box` (its image has parts).
    assert flags[persons[0]["id"]] == (reading == densepose.DENSEPOSE_BOX)
    assert flags[persons[1]["id"]] == 0 and flags[persons[2]["id"]] == 1
    assert summary["persons_with_parts"] == len(persons) - 2 + (reading == densepose.DENSEPOSE_BOX)
    assert not any(key.startswith("dp_") for a in out["annotations"] for key in a)
    if reading == densepose.DENSEPOSE_BOX:
        first = next(a for a in out["annotations"] if a["id"] == persons[0]["id"])
        assert decoded(first).any() and not out_maps[first["image_id"]][decoded(first)].any()
    truth = {a["id"]: a for a in data["annotations"]}
    for annotation in out["annotations"]:                  # COCO's box, area and keypoints are kept
        assert annotation["bbox"] == pytest.approx(truth[annotation["id"]]["bbox"], abs=0.01)
        assert annotation["area"] == pytest.approx(truth[annotation["id"]]["area"], rel=1e-6)
        assert annotation["keypoints"] == pytest.approx(truth[annotation["id"]]["keypoints"], abs=0.01)
    # The round trip box -> 256 x 256 -> box is nearest-neighbour both ways: almost every pixel comes back.
    agree = total = 0
    for annotation in persons[2:]:
        mask = api.annToMask(annotation).astype(bool)
        agree += np.sum(out_maps[annotation["image_id"]][mask] == maps[annotation["image_id"]][mask])
        total += mask.sum()
    assert agree / total > 0.9
    assert_one_definition(out, out_maps)


def hand_made_densepose(tmp_path):
    """Image 1 (8 x 10): A's COCO mask is rows 0-5 of columns 0-4, its box the full columns 0-4 (dp_masks:
    torso everywhere); B's mask and box are columns 3-7 (dp_masks: right hand everywhere); C's mask is rows
    6-7, and C has no dp_masks. Image 2 (4 x 4): D, columns 0-1, has no dp_masks either."""
    a, b, c, d = np.zeros((8, 10), bool), np.zeros((8, 10), bool), np.zeros((8, 10), bool), np.zeros((4, 4), bool)
    a[0:6, 0:5], b[:, 3:8], c[6:8, :], d[:, 0:2] = True, True, True, True
    full = common.rle(np.ones((256, 256), bool))

    def entry(annotation_id, image_id, mask, bbox, part=None):
        annotation = {"id": annotation_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                      "segmentation": common.rle(mask), "area": float(mask.sum()), "bbox": bbox,
                      "keypoints": [0] * 51, "num_keypoints": 0}
        if part:
            annotation["dp_masks"] = [full if i == part - 1 else [] for i in range(14)]
        return annotation

    data = {"images": [{"id": 1, "file_name": "x.jpg", "height": 8, "width": 10},
                       {"id": 2, "file_name": "y.jpg", "height": 4, "width": 4}],
            "annotations": [entry(1, 1, a, [0, 0, 5, 8], 1), entry(2, 1, b, [3, 0, 5, 8], 2),
                            entry(3, 1, c, [0, 6, 10, 2]), entry(4, 2, d, [0, 0, 2, 4])],
            "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "dp.json").write_text(json.dumps(data))
    return tmp_path / "dp.json", (a, b, c, d)


def test_densepose_box_reading_is_the_released_codes(tmp_path):
    path, (a, b, c, d) = hand_made_densepose(tmp_path)
    summary = densepose.convert_densepose(str(path), str(tmp_path / "out"))     # the default: box
    # A's torso below its COCO mask (rows 6-7, columns 0-4: 10 pixels) is kept: its mask grows to hold it.
    # B's hand (later) takes columns 3-4 from A (16 pixels); the part pixels take rows 6-7 of columns 0-7
    # from C, which has no dp_masks (16 pixels): C keeps columns 8-9 as background, has_parts 1.
    assert summary["part_pixels_outside_persons"] == 10 and summary["overlap_pixels"] == 32
    assert summary["persons_with_parts"] == 3 and summary["warnings"] == {}
    out, maps = converted(tmp_path / "out")
    expected = np.zeros((8, 10), np.uint8)
    expected[:, 0:3], expected[:, 3:8] = 1, 2
    np.testing.assert_array_equal(maps[1], expected)
    first, second, third, fourth = (decoded(x) for x in out["annotations"])
    expected_first = np.zeros((8, 10), bool)
    expected_first[:, 0:3] = True
    np.testing.assert_array_equal(first, expected_first)
    np.testing.assert_array_equal(second, b)
    np.testing.assert_array_equal(third, c & ~(a | b) & (expected == 0))
    assert third.sum() == 4 and not maps[1][third].any()
    # Image 2: no person has dp_masks, so the image has no part labels; D keeps its mask.
    np.testing.assert_array_equal(fourth, d)
    assert not maps[2].any()
    assert [x["has_parts"] for x in out["annotations"]] == [1, 1, 1, 0]
    assert [x["area"] for x in out["annotations"]] == [30, 40, 20, 8]              # COCO's area is kept
    assert_one_definition(out, maps)


def test_densepose_mask_reading_keeps_parts_inside_the_coco_mask(tmp_path):
    path, (a, b, c, d) = hand_made_densepose(tmp_path)
    summary = densepose.convert_densepose(str(path), str(tmp_path / "out"), reading=densepose.DENSEPOSE_MASK)
    # A's torso below its mask (10 pixels) is dropped; the 12 pixels in both A's and B's masks (rows 0-5,
    # columns 3-4) go to B, the later person; C (no dp_masks) has no parts and keeps its mask.
    assert summary["part_pixels_outside_persons"] == 10 and summary["overlap_pixels"] == 12
    assert summary["persons_with_parts"] == 2
    out, maps = converted(tmp_path / "out")
    expected = np.zeros((8, 10), np.uint8)
    expected[0:6, 0:3], expected[:, 3:8] = 1, 2
    np.testing.assert_array_equal(maps[1], expected)
    first, second, third, fourth = (decoded(x) for x in out["annotations"])
    np.testing.assert_array_equal(first, a & ~b)
    np.testing.assert_array_equal(second, b)
    np.testing.assert_array_equal(third, c)
    np.testing.assert_array_equal(fourth, d)
    assert [x["has_parts"] for x in out["annotations"]] == [1, 1, 0, 0]
    assert (maps[1][first] == 1).all() and (maps[1][second] == 2).all()  # each person's map is its own parts
    assert_one_definition(out, maps)
    with pytest.raises(ValueError, match="'clip' is not one of"):
        densepose.convert_densepose(str(path), str(tmp_path / "x"), reading="clip")


def test_place_in_box_hand_values():
    grid = np.zeros((256, 256), np.uint8)
    grid[:, 128:] = 3
    placed = densepose.place_in_box(grid, [2, 1, 4, 2], 5, 8)
    np.testing.assert_array_equal(placed[1:3, 2:6], [[0, 0, 3, 3], [0, 0, 3, 3]])
    assert placed.sum() == 3 * 4
    # A fractional box: `mask` samples pixel centres in [2.9, 7.8) x [1.7, 4.2); `box` truncates the box to
    # columns 2-5, rows 1-2 (int(2.9) = 2, int(4.9) = 4; int(1.7) = 1, int(2.5) = 2).
    placed = densepose.place_in_box(grid, [2.9, 1.7, 4.9, 2.5], 5, 8)
    np.testing.assert_array_equal(placed[2:4, 3:8], [[0, 0, 3, 3, 3]] * 2)
    assert placed.sum() == 3 * 6
    placed = densepose.place_in_integer_box(grid, [2.9, 1.7, 4.9, 2.5], 5, 8)
    np.testing.assert_array_equal(placed[1:3, 2:6], [[0, 0, 3, 3]] * 2)
    assert placed.sum() == 3 * 4
    # A box past the right border: the whole grid is squeezed into the 2 columns left (cells 0 and 128).
    np.testing.assert_array_equal(densepose.place_in_integer_box(grid, [6, 0, 4, 1], 2, 8),
                                  [[0, 0, 0, 0, 0, 0, 0, 3], [0] * 8])
    assert not densepose.place_in_integer_box(grid, [3.5, 0, 0.9, 2], 2, 8).any()   # int(0.9) = 0: empty


def test_place_in_integer_box_is_opencvs_nearest_resize():
    cv2 = pytest.importorskip("cv2")
    random = np.random.default_rng(3)
    grid = random.integers(0, 15, (256, 256)).astype(np.uint8)
    for _ in range(200):
        height, width = (int(v) for v in random.integers(20, 700, 2))
        x, y = random.uniform(0, width - 1), random.uniform(0, height - 1)
        bbox = [x, y, random.uniform(0.5, 1.2 * (width - x)), random.uniform(0.5, 1.2 * (height - y))]
        # The released code's steps: an int box, its right and bottom ends cut at the border, cv2's resize.
        x0, y0, w, h = np.array(bbox).astype(int)
        x1, y1 = min(x0 + w, width), min(y0 + h, height)
        expected = np.zeros((height, width), np.uint8)
        if x0 < x1 and y0 < y1:
            expected[y0:y1, x0:x1] = cv2.resize(grid, (int(x1 - x0), int(y1 - y0)), interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(densepose.place_in_integer_box(grid, bbox, height, width), expected)


def test_script_densepose_readings(tmp_path):
    path, _ = hand_made_densepose(tmp_path)
    _, box = run_script("convert_parts_dataset.py", "--format", "densepose", "--annotations", str(path),
                        "--output", str(tmp_path / "box"))
    _, mask = run_script("convert_parts_dataset.py", "--format", "densepose", "--annotations", str(path),
                         "--densepose_parts", "mask", "--output", str(tmp_path / "mask"))
    assert (box["overlap_pixels"], box["persons_with_parts"]) == (32, 3)
    assert (mask["overlap_pixels"], mask["persons_with_parts"]) == (12, 2)


def reading_ground_truth(output):
    """{image id: metrics.GroundTruth} of a converted DensePose file, and {person id: its map under its mask}."""
    data, maps = converted(output)
    truths, persons = {}, {}
    for image in data["images"]:
        annotations = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        masks = np.array([decoded(a) for a in annotations], bool).reshape(-1, image["height"], image["width"])
        truths[image["id"]] = metrics.GroundTruth(maps[image["id"]], masks,
                                                  np.array([a["iscrowd"] for a in annotations], bool),
                                                  np.array([a["has_parts"] for a in annotations], bool))
        persons.update({a["id"]: np.where(mask, maps[image["id"]], 0) for a, mask in zip(annotations, masks)
                        if a["has_parts"]})
    return truths, persons


def scored_against(predicted, truth):
    """The metrics of one reading's ground truth (its part-labelled persons' maps as instances, score 1)
    scored against the other's."""
    evaluator = metrics.PartParsingEvaluator(part_sets.DENSEPOSE.num_classes)
    for image_id, target in truth.items():
        source = predicted[image_id]
        instances = np.array([np.where(mask, source.part_map, 0) for mask in source.masks[source.has_parts]],
                             np.uint8).reshape(-1, *source.part_map.shape)
        instances = instances[(instances > 0).any(axis=(1, 2))]
        evaluator.add(target, metrics.Prediction(source.part_map, instances, np.ones(len(instances))))
    results = evaluator.results()
    return {key: round(results[key], 4) for key in ("mIoU", "APp_50", "APp_vol", "PCP50", "APr_vol")}


def measure_readings(tmp_path, images=12, min_side=160, max_side=200):
    """The two readings of the same synthetic DensePose-layout files, measured: the figures of docs/parts.md
    (Data) as a dict. Every fifth person has no dp_masks; the others' are its parts under its COCO mask,
    written (`dp_masks`) at pixel centres of the box (centre_) or from the integer box (box_), as they are
    (_inside) or with the labels spread 2 pixels outward (_spilling_2px), as coarser annotations would."""
    generated = tmp_path / "scene"
    synthetic.generate_dataset(str(generated), images, seed=11, min_side=min_side, max_side=max_side,
                               scene=synthetic_scene.PARTS_SCENE)
    api = COCO(str(generated / coco_format.ANNOTATIONS_FILE))
    maps = {i: np.asarray(Image.open(coco_format.part_labels_path(generated / coco_format.PART_LABELS_DIR,
                                                                  api.imgs[i]["file_name"]))) for i in api.imgs}
    figures = {}
    for variant, integer_box, spill in (("centre_written_inside", False, 0), ("centre_written_spilling_2px", False, 2),
                                        ("box_written_inside", True, 0), ("box_written_spilling_2px", True, 2)):
        data = json.loads((generated / coco_format.ANNOTATIONS_FILE).read_text())
        persons = [a for a in data["annotations"] if not a["iscrowd"]]
        with_dp = set()
        for number, annotation in enumerate(persons):
            if number % 5 == 4:
                continue
            parts = np.where(api.annToMask(annotation).astype(bool), maps[annotation["image_id"]], 0)
            if spill:   # the person's labels spread `spill` pixels outward, as coarse annotations do
                parts = np.where(parts > 0, parts, scipy.ndimage.grey_dilation(parts, size=2 * spill + 1))
            annotation["dp_masks"] = dp_masks(parts, np.ones(parts.shape, bool), annotation["bbox"], integer_box)
            with_dp.add(annotation["id"])
        (tmp_path / f"{variant}.json").write_text(json.dumps(data))
        truths, person_maps = {}, {}
        for reading in densepose.DENSEPOSE_READINGS:
            densepose.convert_densepose(str(tmp_path / f"{variant}.json"), str(tmp_path / variant / reading),
                                         reading=reading)
            truths[reading], person_maps[reading] = reading_ground_truth(tmp_path / variant / reading)
            assert_one_definition(*converted(tmp_path / variant / reading))
        box, mask = truths[densepose.DENSEPOSE_BOX], truths[densepose.DENSEPOSE_MASK]
        box_maps = np.concatenate([box[i].part_map.ravel() for i in sorted(box)])
        mask_maps = np.concatenate([mask[i].part_map.ravel() for i in sorted(mask)])
        agree = {reading: 0 for reading in truths}              # COCO-mask pixels of persons with dp_masks
        total = 0                                                 # whose label is the synthetic truth's
        for annotation in persons:
            if annotation["id"] in with_dp:
                coco_mask = api.annToMask(annotation).astype(bool)
                total += coco_mask.sum()
                for reading in truths:
                    agree[reading] += np.sum(truths[reading][annotation["image_id"]].part_map[coco_mask]
                                             == maps[annotation["image_id"]][coco_mask])
        changed_sets = changed_maps = 0
        for person in with_dp:
            a, b = person_maps[densepose.DENSEPOSE_BOX][person], person_maps[densepose.DENSEPOSE_MASK][person]
            changed_sets += set(np.unique(a[a > 0])) != set(np.unique(b[b > 0]))
            changed_maps += not np.array_equal(a, b)
        figures[variant] = {
            "truth_agreement_under_coco_masks": {reading: round(agree[reading] / total, 4) for reading in truths},
            "part_pixels_per_image": {"box": round(np.count_nonzero(box_maps) / len(box), 1),
                                      "mask": round(np.count_nonzero(mask_maps) / len(mask), 1)},
            "pixels_changed_per_image": round(np.count_nonzero(box_maps != mask_maps) / len(box), 1),
            "box_only": int(np.count_nonzero((box_maps > 0) & (mask_maps == 0))),
            "mask_only": int(np.count_nonzero((box_maps == 0) & (mask_maps > 0))),
            "relabelled": int(np.count_nonzero((box_maps > 0) & (mask_maps > 0) & (box_maps != mask_maps))),
            "changed_of_part_pixels": round(np.count_nonzero(box_maps != mask_maps)
                                            / np.count_nonzero((box_maps > 0) | (mask_maps > 0)), 4),
            "persons_part_set_changed": int(changed_sets), "persons_part_map_changed": int(changed_maps),
            "box_scored_against_mask": scored_against(box, mask), "mask_scored_against_box": scored_against(mask, box)}
    return {"images": len(api.imgs), "persons": len(persons), "persons_with_dp_masks": len(with_dp), **figures}


def test_densepose_readings_measured_on_synthetic_files(tmp_path):
    figures = measure_readings(tmp_path)
    print(json.dumps(figures))                             # one line: docs/parts.md, Data
    assert figures["persons"] >= 20
    # Each reading inverts its own way of writing dp_masks: the synthetic truth comes back under the masks.
    assert figures["centre_written_inside"]["truth_agreement_under_coco_masks"]["mask"] == 1
    assert figures["box_written_inside"]["truth_agreement_under_coco_masks"]["box"] == 1
    for written in ("centre_written", "box_written"):
        inside, spilling = figures[f"{written}_inside"], figures[f"{written}_spilling_2px"]
        # Labels spilling past the COCO masks are kept by `box`, dropped by `mask`.
        assert spilling["box_only"] > inside["box_only"] and spilling["mask_only"] == 0
        assert spilling["part_pixels_per_image"]["box"] > 1.3 * spilling["part_pixels_per_image"]["mask"]


def test_exclusive_masks_give_each_pixel_to_the_last_mask():
    masks = np.zeros((3, 1, 4), bool)
    masks[0, 0, :3], masks[1, 0, 1:], masks[2, 0, 3] = True, True, True
    exclusive, moved = common.exclusive_masks(masks)
    np.testing.assert_array_equal(exclusive[:, 0], [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    assert moved == 3


# --------------------------------------------------------------------------------------- MHP v2


def write_mhp(scene, root, drop_pose_of=None):
    """The scene in MHP v2's layout under root/train (parsing PNGs with 3 equal channels, as released);
    returns {name: image id}."""
    path, api, maps = scene
    names = {}
    for image_id, info in api.imgs.items():
        name = f"img{image_id}"
        names[name] = image_id
        (root / "train" / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(path / coco_format.IMAGES_DIR / info["file_name"], root / "train" / "images" / f"{name}.jpg")
        persons = persons_of(api, image_id)
        poses = {}
        for n, annotation in enumerate(persons, start=1):
            mask = api.annToMask(annotation).astype(bool)
            png(root / "train" / "parsing_annos" / f"{name}_{len(persons):02d}_{n:02d}.png",
                np.where(mask, maps[image_id], 0), channels=3)
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
    summary = mhp_v2.convert_mhp(str(tmp_path / "mhp"), "train", str(tmp_path / "out"))
    persons_2 = len(persons_of(api, 2))
    assert summary["warnings"] == {common.MISSING_IMAGE: 1, common.MISSING_POSE: 1 + persons_2}
    assert summary["overlap_pixels"] == 0 and summary["part_pixels_outside_persons"] == 0
    out, out_maps = converted(tmp_path / "out")
    assert [image["file_name"] for image in out["images"]] == [f"{name}.jpg" for name in names]
    for image in out["images"]:
        truth_id = names[image["file_name"][:-4]]
        np.testing.assert_array_equal(out_maps[image["id"]], maps[truth_id])
        truths = persons_of(api, truth_id)
        mine = [a for a in out["annotations"] if a["image_id"] == image["id"]]
        assert len(mine) == len(truths)
        for annotation, truth in zip(mine, truths):
            np.testing.assert_array_equal(decoded(annotation), api.annToMask(truth).astype(bool) & (maps[truth_id] > 0))
            kept = np.array(annotation["keypoints"]).reshape(-1, 3)
            expected = np.array(truth["keypoints"], float).reshape(-1, 3)
            assert kept.shape == (16, 3)
            if truth_id == 2:
                assert not kept.any()
                continue
            for joint in range(16):
                if joint in MHP_TO_COCO:             # the same v: flag 0 <- v 2 -> v 2, flag 1 <- v 1 -> v 1
                    np.testing.assert_allclose(kept[joint], expected[MHP_TO_COCO[joint]], atol=0.01)
                else:
                    assert not kept[joint].any()    # pelvis, thorax, upper neck, head top: rows of -1
    assert out["categories"] == [skeleton.MHP_V2.category_entry()]
    assert_one_definition(out, out_maps)


def test_mhp_overlaps_empty_and_broken_person_files(tmp_path):
    root = tmp_path / "mhp"
    (root / "train" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(root / "train" / "images" / "7.jpg")
    first, second = np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8)
    first[:, 0:5], second[:, 3:8] = 4, 12                  # hair, tee shirt; columns 3-4 in both
    parsing = root / "train" / "parsing_annos"
    png(parsing / "7_04_01.png", first, channels=3)
    png(parsing / "7_04_02.png", second, channels=3)
    png(parsing / "7_04_03.png", np.zeros((6, 8)), channels=3)          # labels nothing
    png(parsing / "7_04_04.png", np.ones((5, 8)), channels=3)           # wrong size
    (parsing / "7_notes.png").write_text("not a person file")           # ignored: not {id}_{N}_{n}.png
    (root / "train" / "pose_annos").mkdir()
    scipy.io.savemat(root / "train" / "pose_annos" / "7.mat", {"person_0": -np.ones((20, 3)), "person_1": [[1, 2]]})
    (root / "list").mkdir()
    (root / "list" / "train.txt").write_text("7\n")
    summary = mhp_v2.convert_mhp(str(root), "train", str(tmp_path / "out"))
    assert summary["warnings"] == {common.EMPTY_PERSON: 1, common.SIZE_MISMATCH: 1,
                                   common.MISSING_POSE: 1}           # person_1 is not 3-column rows
    assert summary["persons"] == 2 and summary["overlap_pixels"] == 12
    out, maps = converted(tmp_path / "out")
    expected = np.where(second > 0, second, first)
    np.testing.assert_array_equal(maps[1], expected)
    np.testing.assert_array_equal(decoded(out["annotations"][0]), (first > 0) & (second == 0))
    assert [a["id"] for a in out["annotations"]] == [1001, 1002]
    assert_one_definition(out, maps)


def test_mhp_keeps_its_16_joints_with_v_2_minus_flag(tmp_path):
    """A hand-made pose file as released (`person_0`: 20 rows of x, y, flag, the first 16 the joints): flag 0
    -> v 2, 1 -> v 1, 2 (outside the image) -> v 0 with coordinates 0; negative or NaN coordinates and other
    flags are unlabelled; the rows after the 16 joints are not keypoints."""
    root = tmp_path / "mhp"
    (root / "train" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(root / "train" / "images" / "9.jpg")
    person = np.zeros((40, 50), np.uint8)
    person[5:35, 10:40] = 3
    png(root / "train" / "parsing_annos" / "9_01_01.png", person, channels=3)
    rows = np.full((20, 3), -1.0)
    rows[9] = (20.0, 6.0, 0)            # head top, visible
    rows[8] = (21.5, 12.25, 1)          # upper neck, occluded
    rows[12] = (60.0, 15.0, 2)          # right shoulder, outside the image
    rows[13] = (-3.0, 15.0, 0)          # left shoulder: a negative coordinate
    rows[0] = (np.nan, 30.0, 0)         # right ankle: NaN
    rows[5] = (25.0, 30.0, 3)           # left ankle: an unknown flag
    rows[15] = (33.0, 20.0, 0)          # left wrist, the last joint
    rows[16:] = (1.0, 1.0, 0)           # box rows, not joints
    (root / "train" / "pose_annos").mkdir(parents=True)
    scipy.io.savemat(root / "train" / "pose_annos" / "9.mat", {"person_0": rows})
    (root / "list").mkdir()
    (root / "list" / "train.txt").write_text("9\n")
    summary = mhp_v2.convert_mhp(str(root), "train", str(tmp_path / "out"))
    assert summary["warnings"] == {} and summary["persons_with_keypoints"] == 1
    out, _ = converted(tmp_path / "out")
    expected = np.zeros((16, 3))
    expected[9], expected[8], expected[15] = (20, 6, 2), (21.5, 12.25, 1), (33, 20, 2)
    (annotation,) = out["annotations"]
    np.testing.assert_allclose(np.reshape(annotation["keypoints"], (16, 3)), expected)
    assert annotation["num_keypoints"] == 3 and annotation["category_id"] == skeleton.MHP_V2.category_id
    assert out["categories"][0]["keypoints"][9] == "head_top"
    np.testing.assert_allclose(mhp_v2.mhp_keypoints(rows), expected)
    np.testing.assert_allclose(mhp_v2.mhp_keypoints(rows[:10])[9], (20, 6, 2))   # fewer rows: the rest unlabelled


def test_mhp_records_carry_its_part_set(scene, tmp_path):
    write_mhp(scene, tmp_path / "mhp")
    mhp_v2.convert_mhp(str(tmp_path / "mhp"), "train", str(tmp_path / "out"))
    summary = writer.convert(str(tmp_path / "out" / "person_keypoints.json"), str(tmp_path / "mhp" / "train" / "images"),
                             str(tmp_path / "records" / "train"), part_labels_dir=str(tmp_path / "out" / "part_labels"),
                             num_part_classes=part_sets.MHP_V2.num_classes)
    assert summary["warnings"] == {} and summary["images_written"] == 3 and summary["persons_with_parts"] > 0
    assert summary[writer.SKELETON] == "mhp_v2"        # the file's own skeleton, from its category


# --------------------------------------------------------------------------------------- PASCAL


def pascal_part_mat(path, name, objects):
    """A PASCAL-Part annotation file: struct `anno` with `imname` and `objects` (1 x N struct array of
    `class`, `class_ind` (double), `mask` (uint8 H x W), `parts` (1 x P struct array of `part_name`, `mask`,
    or [] when the object has no parts)). objects: [(class, class_ind, mask, [(part name, mask)])]."""
    records = np.zeros((1, len(objects)), dtype=[("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")])
    for i, (name_of_class, index, mask, parts) in enumerate(objects):
        part_records = np.zeros((1, len(parts)), dtype=[("part_name", "O"), ("mask", "O")])
        for j, (part_name, part_mask) in enumerate(parts):
            part_records[0, j] = (part_name, part_mask.astype(np.uint8))
        records[0, i] = (name_of_class, np.array([[float(index)]]), mask.astype(np.uint8),
                         part_records if parts else np.zeros((0, 0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"anno": {"imname": name, "objects": records}})


def write_pascal(scene, root):
    """The scene in PASCAL-Person-Part's layout (JPEGImages, SegmentationPart) with PASCAL-Part's
    Annotations_Part; a chair object in each image. Returns {name: image id}."""
    path, api, maps = scene
    names = {}
    for image_id, info in api.imgs.items():
        name = f"2008_{image_id:06d}"
        names[name] = image_id
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        shutil.copy(path / coco_format.IMAGES_DIR / info["file_name"], root / "JPEGImages" / f"{name}.jpg")
        objects = [("chair", 9, np.pad(np.ones((3, 3), bool), ((0, info["height"] - 3), (0, info["width"] - 3))), [])]
        for annotation in persons_of(api, image_id):
            mask = api.annToMask(annotation).astype(bool)
            parts = [(PASCAL_PART_NAMES[c], mask & (maps[image_id] == c)) for c in sorted(PASCAL_PART_NAMES)
                     if (mask & (maps[image_id] == c)).any()]
            objects.append(("person", 15, mask, parts))
        pascal_part_mat(root / "Annotations_Part" / f"{name}.mat", name, objects)
        parts = SYNTHETIC_TO_PASCAL[maps[image_id]]
        parts[-1, :] = pascal_person_part.VOID
        png(root / "SegmentationPart" / f"{name}.png", parts)
    return names


def pascal_joints(persons):
    """[P, 14, 3] joints in the project's reading (converters/pascal_person_part.py: x, y, visible 1 / occluded 0,
    -1 rows unlabelled) of persons with COCO keypoints: the head is the nose, the neck unlabelled."""
    joints = -np.ones((len(persons), 14, 3))
    for p, annotation in enumerate(persons):
        keypoints = np.array(annotation["keypoints"], float).reshape(-1, 3)
        for joint, k in PASCAL_TO_COCO.items():
            if keypoints[k, 2] > 0:
                joints[p, joint] = (keypoints[k, 0], keypoints[k, 1], 1 if keypoints[k, 2] == 2 else 0)
    return joints


def pascal_expected(annotation):
    """The [14, 3] keypoints the converter must give a person whose joints are `pascal_joints`'."""
    keypoints = np.array(annotation["keypoints"], float).reshape(-1, 3)
    expected = np.zeros((14, 3))
    for joint, k in PASCAL_TO_COCO.items():
        expected[joint] = keypoints[k]
    return expected


def write_joints(scene, root, names, directory="Joints"):
    """Joint files `{directory}/{name}.mat` (`joints` [P, 14, 3]) of the named images of write_pascal."""
    _, api, _ = scene
    (root / directory).mkdir(parents=True, exist_ok=True)
    for name, image_id in names.items():
        scipy.io.savemat(root / directory / f"{name}.mat", {"joints": pascal_joints(persons_of(api, image_id))})


def test_pascal_person_part_instances_parts_and_keypoints(scene, tmp_path):
    _, api, maps = scene
    root = tmp_path / "pascal"
    names = write_pascal(scene, root)
    first, second, _ = names
    write_joints(scene, root, {first: names[first]})
    scipy.io.savemat(root / "Joints" / f"{second}.mat", {"joints": np.zeros((2, 13, 3))})     # malformed
    # Both list formats: ids, and "/IMAGE /LABEL" pairs as in the usual release.
    lines = [first] + [f"/JPEGImages/{n}.jpg /SegmentationPart/{n}.png" for n in list(names)[1:]]
    (root / "train_id.txt").write_text("\n".join(lines) + "\n")
    summary = pascal_person_part.convert_pascal_person_part(str(root), str(root / "train_id.txt"),
                                                            str(tmp_path / "out"))
    # The second image's joint file is malformed, the third has none.
    assert summary["warnings"] == {common.BAD_KEYPOINTS: 1, common.MISSING_POSE: 1}
    assert summary["overlap_pixels"] == 0 and summary["part_pixels_outside_persons"] == 0
    out, out_maps = converted(tmp_path / "out")
    assert out["categories"] == [skeleton.PASCAL_PERSON_PART.category_entry()]
    assert [image["file_name"] for image in out["images"]] == [f"JPEGImages/{n}.jpg" for n in names]
    for image in out["images"]:
        truth_id = names[image["file_name"][len("JPEGImages/"):-4]]
        truths = persons_of(api, truth_id)
        mine = [a for a in out["annotations"] if a["image_id"] == image["id"]]
        assert len(mine) == len(truths)                   # the chair is not a person
        assert [a["id"] for a in mine] == [image["id"] * 1000 + n for n in range(2, len(truths) + 2)]
        expected_parts = SYNTHETIC_TO_PASCAL[maps[truth_id]]
        expected_parts[-1, :] = 0                         # void -> background
        np.testing.assert_array_equal(out_maps[image["id"]], expected_parts)
        for annotation, truth in zip(mine, truths):
            np.testing.assert_array_equal(decoded(annotation), api.annToMask(truth).astype(bool))
            keypoints = np.reshape(annotation["keypoints"], (14, 3))
            if truth_id == names[first]:
                np.testing.assert_allclose(keypoints, pascal_expected(truth), atol=0.01)
            else:
                assert not keypoints.any()
    assert sum(a["num_keypoints"] > 0 for a in out["annotations"]) == summary["persons_with_keypoints"] > 0
    assert_one_definition(out, out_maps)
    summary = writer.convert(str(tmp_path / "out" / "person_keypoints.json"), str(root), str(tmp_path / "records" / "t"),
                             part_labels_dir=str(tmp_path / "out" / "part_labels"),
                             num_part_classes=part_sets.PASCAL_PERSON_PART.num_classes)
    assert summary["warnings"] == {} and summary["images_written"] == 3
    assert summary[writer.SKELETON] == "pascal_person_part"


def test_pascal_joint_files_hand_made(tmp_path):
    """The project's reading of a joint file: `joints` P x 14 x 3 (14 x 3 for one person), x and y in
    pixels, visible 1 -> v 2, 0 -> v 1; negative or NaN coordinates and other flags unlabelled; rows taken
    in the order of the person objects, missing ones warned about."""
    joints = -np.ones((14, 3))
    joints[0] = (10.0, 4.5, 1)           # head, visible
    joints[1] = (10.0, 9.0, 0)           # neck, occluded
    joints[2] = (np.nan, 9.0, 1)         # left shoulder: NaN
    joints[3] = (14.0, 9.0, 2)           # right shoulder: an unknown flag
    joints[13] = (12.0, 30.0, 1)         # right ankle, the last joint
    expected = np.zeros((14, 3))
    expected[0], expected[1], expected[13] = (10, 4.5, 2), (10, 9, 1), (12, 30, 2)
    scipy.io.savemat(tmp_path / "one.mat", {"joints": joints})                         # 14 x 3: one person
    scipy.io.savemat(tmp_path / "two.mat", {"joints": np.stack([joints, -np.ones((14, 3))])})
    scipy.io.savemat(tmp_path / "bad.mat", {"joints": np.zeros((1, 17, 3))})
    scipy.io.savemat(tmp_path / "other.mat", {"keypoints": joints})
    one = pascal_person_part.read_pascal_joints(str(tmp_path / "one.mat"))
    assert one.shape == (1, 14, 3)
    np.testing.assert_allclose(one[0], expected)
    two = pascal_person_part.read_pascal_joints(str(tmp_path / "two.mat"))
    np.testing.assert_allclose(two, [expected, np.zeros((14, 3))])
    with pytest.raises(pascal_person_part.BadPartAnnotation, match=r"joints is \(1, 17, 3\)"):
        pascal_person_part.read_pascal_joints(str(tmp_path / "bad.mat"))
    with pytest.raises(pascal_person_part.BadPartAnnotation, match="no variable 'joints'"):
        pascal_person_part.read_pascal_joints(str(tmp_path / "other.mat"))
    conversion = common.Conversion(str(tmp_path / "out"), skeleton.PASCAL_PERSON_PART)
    three = pascal_person_part.pascal_persons_keypoints(str(tmp_path), "two", 3, conversion)   # 2 rows, 3 persons
    np.testing.assert_allclose(three, [expected, np.zeros((14, 3)), np.zeros((14, 3))])
    first = pascal_person_part.pascal_persons_keypoints(str(tmp_path), "two", 1, conversion)   # 2 rows, 1 person
    np.testing.assert_allclose(first, [expected])
    assert conversion.problems.warnings == {common.MISSING_POSE: 1, common.BAD_KEYPOINTS: 1}
    none = pascal_person_part.pascal_persons_keypoints(str(tmp_path), "absent", 2, conversion)
    assert np.shape(none) == (2, 14, 3) and not np.any(none)
    assert conversion.problems.warnings[common.MISSING_POSE] == 2


def test_pascal_part_files_that_do_not_match_are_named(scene, tmp_path, caplog):
    root = tmp_path / "pascal"
    names = list(write_pascal(scene, root))
    height, width = np.asarray(Image.open(root / "SegmentationPart" / f"{names[1]}.png")).shape
    scipy.io.savemat(root / "Annotations_Part" / f"{names[0]}.mat", {"anno": {"imname": names[0]}})
    pascal_part_mat(root / "Annotations_Part" / f"{names[1]}.mat", names[1],
                    [("chair", 9, np.zeros((height, width)), []), ("person", 15, np.ones((height + 1, width)), [])])
    (root / "Annotations_Part" / f"{names[2]}.mat").write_bytes(b"not a MATLAB file")
    (root / "list.txt").write_text("\n".join(names + ["2008_999999"]) + "\n")
    with caplog.at_level(logging.WARNING):
        summary = pascal_person_part.convert_pascal_person_part(str(root), str(root / "list.txt"),
                                                                str(tmp_path / "out"))
    assert summary["images"] == 0
    assert summary["warnings"] == {common.BAD_PART_ANNOTATION: 3, common.MISSING_IMAGE: 1}
    text = caplog.text
    assert f"{names[0]}.mat: anno has no field 'objects'" in text
    assert f"{names[1]}.mat: anno.objects(2).mask is ({height + 1}, {width}), the image is ({height}, {width})" in text
    assert f"{names[2]}.mat: does not load as a MATLAB file" in text


def test_script_formats_and_errors(scene, tmp_path):
    write_mhp(scene, tmp_path / "mhp")
    _, summary = run_script("convert_parts_dataset.py", "--format", "mhp_v2", "--root", str(tmp_path / "mhp"),
                            "--split", "train", "--output", str(tmp_path / "out"))
    assert summary["images"] == 3 and summary["persons_with_parts"] == summary["persons"] > 0
    root = tmp_path / "pascal"
    names = write_pascal(scene, root)
    (root / "val_id.txt").write_text("\n".join(names) + "\n")
    write_joints(scene, tmp_path, names, "joints")
    _, summary = run_script("convert_parts_dataset.py", "--format", "pascal_person_part", "--root", str(root),
                            "--split", "val", "--joints", str(tmp_path / "joints"),
                            "--output", str(tmp_path / "pascal_out"))
    assert summary["images"] == 3 and summary["warnings"] == {} and summary["persons_with_keypoints"] > 0
    (root / "bad.txt").write_text("a b c\n")
    for extra in (["--format", "densepose"], ["--format", "mhp_v2", "--root", str(tmp_path / "nowhere")],
                  ["--format", "pascal_person_part", "--root", str(root), "--list", str(root / "bad.txt")]):
        last = script_error("convert_parts_dataset.py", *extra, "--output", str(tmp_path / "x"))
    assert "bad.txt, entry 1: expected 'ID' or 'IMAGE LABEL'" in last
