"""Tests of the procedural synthetic-people COCO dataset (personlab_tf.data.synthetic)."""

import collections
import hashlib
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

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco_format, synthetic, synthetic_annotations, synthetic_body, synthetic_scene
from personlab_tf.tasks.parts import part_sets

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL_IMAGES = {"min_side": 192, "max_side": 320}
NUM_IMAGES = 40
SEED = 0
COCO17 = skeleton_lib.COCO17


def _generate(path, num_images, seed, **options):
    return synthetic.generate_dataset(str(path), num_images, seed, **SMALL_IMAGES, **options)


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
    assert category == COCO17.category_entry()
    assert category["id"] == 1 and category["name"] == "person"
    assert tuple(category["keypoints"]) == COCO17.keypoints
    assert all(1 <= k <= COCO17.num_keypoints for edge in category["skeleton"] for k in edge)
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
        assert len(a["keypoints"]) == 3 * COCO17.num_keypoints
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
    counts = _check_visibility(coco)
    assert counts[1] > 0 and counts[2] > counts[1]


def _check_visibility(coco):
    """Asserts the visibility rules of every keypoint of `coco` (a COCO object); returns the count of each v."""
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
    return counts


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
    counts = collections.Counter()
    for name, shown in _visible_keypoint_parts(path, coco, COCO17):
        if name in expected:
            counts[name, shown in expected[name]] += 1
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
            left = keypoints[COCO17.keypoints.index(f"left_{part}")]
            right = keypoints[COCO17.keypoints.index(f"right_{part}")]
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
    assert all(a["num_keypoints"] == 0 for a in persons if a["area"] < synthetic_scene.SMALL_AREA)
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
        assert keypoints.shape == (COCO17.num_keypoints, 3)
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
        polygons = synthetic_annotations.mask_to_polygons(mask)
        np.testing.assert_array_equal(_rasterise(polygons, *mask.shape), mask)


def test_uncompressed_rle_matches_pycocotools():
    mask = np.zeros((5, 4), bool)
    mask[0, 0] = mask[2:5, 1] = mask[4, 3] = True
    rle = synthetic_annotations.mask_to_uncompressed_rle(mask)
    # Column-major runs, starting with a (here empty) run of zeros.
    assert rle == {"counts": [0, 1, 6, 3, 9, 1], "size": [5, 4]}
    np.testing.assert_array_equal(_rasterise(rle, 5, 4), mask)


def test_script_prints_summary_last(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/make_synthetic_coco.py", "--output", str(tmp_path), "--num_images", "3",
         "--seed", "1", "--min_side", "128", "--max_side", "160"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["images"] == 3 and summary["seconds"] >= 0 and summary["skeleton"] == "coco17"
    assert set(summary) == {"images", "persons", "persons_with_keypoints", "crowd_regions",
                            "images_without_people", "skeleton", "seconds"}
    assert lines[0].startswith("skeleton: coco17 (17 keypoints): nose, left_eye")
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 3


# ---------------------------------------------------------------------------------------------- skeletons

SKELETON_SCENE = {"num_images": 5, "seed": 0, "min_side": 256, "max_side": 320}  # a crowd, 9 labelled, 20 hidden
BUILT_IN_OTHERS = (skeleton_lib.CROWDPOSE, skeleton_lib.MHP_V2, skeleton_lib.PASCAL_PERSON_PART)
CUSTOM5 = skeleton_lib.make_skeleton("custom5", ("head", "left_hand", "right_hand", "left_foot", "right_foot"),
                                     tree=((0, 1), (0, 2), (0, 3), (0, 4)), sigmas=(0.05,) * 5, category="figure",
                                     category_id=7)
DERIVED = skeleton_lib.make_skeleton(
    "derived", ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "thorax", "pelvis", "neck", "upper_neck",
                "neck_top", "head", "head_top", "top_head"),
    tree=((4, 0), (4, 1), (4, 5), (5, 2), (5, 3), (4, 6), (6, 7), (7, 8), (8, 9), (9, 10), (10, 11)),
    sigmas=(0.07,) * 12)


def _scene_digest(path):
    """SHA-256 of a dataset's scene: its annotations, hidden keypoints and decoded part label maps."""
    digest = hashlib.sha256()
    annotations = json.loads((path / coco_format.ANNOTATIONS_FILE).read_text())["annotations"]
    digest.update(json.dumps(annotations, sort_keys=True).encode())
    digest.update((path / synthetic.HIDDEN_KEYPOINTS_FILE).read_bytes())
    for png in sorted((path / coco_format.PART_LABELS_DIR).glob("*.png")):
        digest.update(np.asarray(Image.open(png)).tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """{skeleton name: (directory, COCO, hidden keypoints)} of SKELETON_SCENE for coco17, the other built-in
    skeletons, CUSTOM5 and DERIVED."""
    root = tmp_path_factory.mktemp("skeletons")
    found = {}
    for skeleton in (COCO17,) + BUILT_IN_OTHERS + (CUSTOM5, DERIVED):
        path = root / skeleton.name
        synthetic.generate_dataset(str(path), skeleton=skeleton, **SKELETON_SCENE)
        found[skeleton.name] = (path, COCO(str(path / coco_format.ANNOTATIONS_FILE)),
                                json.loads((path / synthetic.HIDDEN_KEYPOINTS_FILE).read_text()))
    return found


def _keypoints(values, skeleton):
    """{name: (x, y, v)} of a flat COCO keypoint list."""
    return dict(zip(skeleton.keypoints, np.array(values, float).reshape(skeleton.num_keypoints, 3).tolist()))


def _visible_keypoint_parts(path, coco, skeleton):
    """(keypoint name, part class name its pixel shows) of every visible (v = 2) keypoint of a dataset."""
    names = part_sets.SYNTHETIC.classes
    for image_id, image in coco.imgs.items():
        labels = np.asarray(Image.open(coco_format.part_labels_path(path / coco_format.PART_LABELS_DIR,
                                                                    image["file_name"])))
        for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            for name, (x, y, v) in _keypoints(a["keypoints"], skeleton).items():
                if v == 2:
                    yield name, names[labels[int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]]


def test_coco17_scene_is_the_one_before_skeletons(tmp_path, scenes):
    """The default writes coco17, and the scene of a seed is the pre-skeleton generator's (same digest)."""
    _generate(tmp_path / "default", 3, SEED)
    _generate(tmp_path / "coco17", 3, SEED, skeleton=COCO17)
    assert _files(tmp_path / "default") == _files(tmp_path / "coco17")
    # Recorded from the generator before it took a skeleton (seed 0, 3 images of 192-320 px).
    assert _scene_digest(tmp_path / "default") == "565182438ee056c624eb0b635f5fe4e14c2e457205fda95080ad72e75cbac004"
    path, coco, _ = scenes["coco17"]
    assert tuple(coco.dataset["categories"][0]["keypoints"]) == COCO17.keypoints


@pytest.mark.parametrize("skeleton", BUILT_IN_OTHERS, ids=lambda skeleton: skeleton.name)
def test_built_in_skeleton_scene(scenes, skeleton):
    """K * 3 values per person, the skeleton's category, the same persons with the keypoints the coco17 scene of
    the seed has where the names coincide, and the visibility rules for every keypoint."""
    _, coco, hidden = scenes[skeleton.name]
    _, coco17, hidden17 = scenes["coco17"]
    assert coco.dataset["categories"] == [skeleton.category_entry()]
    annotations, annotations17 = coco.dataset["annotations"], coco17.dataset["annotations"]
    assert [a["id"] for a in annotations] == [a["id"] for a in annotations17]
    common = [name for name in skeleton.keypoints if name in COCO17.keypoints]
    assert len(common) == 12  # the limbs; the head and trunk points differ
    for a, a17 in zip(annotations, annotations17):
        assert a["category_id"] == skeleton.category_id and len(a["keypoints"]) == 3 * skeleton.num_keypoints
        # The same person (its silhouette may differ by the pixels of the keypoints beyond COCO's).
        assert a["iscrowd"] == a17["iscrowd"]
        ours, theirs = _keypoints(a["keypoints"], skeleton), _keypoints(a17["keypoints"], COCO17)
        assert {name: ours[name] for name in common} == {name: theirs[name] for name in common}
    assert [h["id"] for h in hidden] == [h["id"] for h in hidden17] and hidden
    for entry, entry17 in zip(hidden, hidden17):
        assert len(entry["keypoints"]) == 3 * skeleton.num_keypoints
        ours, theirs = _keypoints(entry["keypoints"], skeleton), _keypoints(entry17["keypoints"], COCO17)
        assert {name: ours[name] for name in common} == {name: theirs[name] for name in common}
    assert _check_visibility(coco)[2] > 0


def _true_points(scene, skeleton):
    """{name: [P, 2]} true (x, y) of every person of a scene written with coordinates: the hidden keypoints
    (all of them) and the labelled persons with every keypoint labelled."""
    _, coco, hidden = scene
    lists = [a["keypoints"] for a in coco.dataset["annotations"] if a["num_keypoints"] == skeleton.num_keypoints]
    lists += [h["keypoints"] for h in hidden]
    stacked = np.array(lists, float).reshape(len(lists), skeleton.num_keypoints, 3)
    return {name: stacked[:, k, :2] for k, name in enumerate(skeleton.keypoints)}


def test_derived_points(scenes):
    """pelvis = hip centre, thorax = shoulder centre, neck midway to upper_neck = neck_top, head_top = top_head
    above the head centre (to 0.01 px: the written rounding)."""
    xy = _true_points(scenes[DERIVED.name], DERIVED)
    assert len(xy["pelvis"]) > 20
    np.testing.assert_allclose(xy["pelvis"], (xy["left_hip"] + xy["right_hip"]) / 2, atol=0.011)
    np.testing.assert_allclose(xy["thorax"], (xy["left_shoulder"] + xy["right_shoulder"]) / 2, atol=0.011)
    np.testing.assert_allclose(xy["neck"], (xy["thorax"] + xy["upper_neck"]) / 2, atol=0.011)
    np.testing.assert_array_equal(xy["upper_neck"], xy["neck_top"])
    np.testing.assert_array_equal(xy["head_top"], xy["top_head"])
    assert np.all(xy["head_top"][:, 1] < xy["head"][:, 1]) and np.all(xy["head"][:, 1] < xy["neck_top"][:, 1])
    # mhp_v2's pelvis is the hip centre in its own scene too.
    mhp = _true_points(scenes["mhp_v2"], skeleton_lib.MHP_V2)
    np.testing.assert_allclose(mhp["pelvis"], (mhp["left_hip"] + mhp["right_hip"]) / 2, atol=0.011)


def test_custom_skeleton_of_figure_points(scenes):
    path, coco, hidden = scenes[CUSTOM5.name]
    assert coco.dataset["categories"] == [CUSTOM5.category_entry()]
    assert all(a["category_id"] == 7 and len(a["keypoints"]) == 15 for a in coco.dataset["annotations"])
    assert all(len(h["keypoints"]) == 15 for h in hidden) and hidden
    _check_visibility(coco)
    # A visible hand's pixel shows a hand (or what the figure draws over it: the head, another arm).
    shown = collections.Counter(part for name, part in _visible_keypoint_parts(path, coco, CUSTOM5)
                                if name.endswith("hand"))
    assert shown["hand"] >= 0.8 * sum(shown.values()) > 0


def test_keypoint_parts_follow_the_skeleton():
    assert synthetic_body.KEYPOINT_PARTS == synthetic_body.keypoint_parts(COCO17)
    assert len(synthetic_body.KEYPOINT_PARTS) == 17
    names = part_sets.SYNTHETIC.classes
    mhp = dict(zip(skeleton_lib.MHP_V2.keypoints, synthetic_body.keypoint_parts(skeleton_lib.MHP_V2)))
    assert {name: names[part] for name, part in mhp.items() if name in ("pelvis", "head_top", "left_wrist")} == {
        "pelvis": "torso", "head_top": "head", "left_wrist": "lower_arm"}
    assert [names[part] for part in synthetic_body.keypoint_parts(CUSTOM5)] == ["head", "hand", "hand", "foot", "foot"]


def test_unknown_keypoint_names_are_refused(tmp_path):
    odd = skeleton_lib.make_skeleton("odd", ("nose", "tail", "left_wing"), tree=((0, 1), (0, 2)),
                                     sigmas=(0.05,) * 3)
    with pytest.raises(ValueError, match=r"^skeleton 'odd': the synthetic figures have no keypoint tail, left_wing "
                                         r"\(figure points: nose, .*\)$"):
        synthetic.generate_dataset(str(tmp_path / "odd"), 1, 0, skeleton=odd)
    assert not (tmp_path / "odd").exists()
    with pytest.raises(ValueError, match="tail"):
        synthetic_scene.synthesize_image(0, 0, skeleton=odd)


def test_script_takes_a_skeleton_by_name_or_file(tmp_path):
    def run(*skeleton_flag, check=True):
        return subprocess.run(
            [sys.executable, "scripts/make_synthetic_coco.py", "--output", str(tmp_path / "out"), "--num_images", "1",
             "--seed", "1", "--min_side", "96", "--max_side", "112", *skeleton_flag],
            cwd=REPO_ROOT, capture_output=True, text=True, check=check)

    result = run("--skeleton", "crowdpose")
    assert result.stdout.splitlines()[0].startswith("skeleton: crowdpose (14 keypoints): left_shoulder")
    assert json.loads(result.stdout.splitlines()[-1])["skeleton"] == "crowdpose"
    written = json.loads((tmp_path / "out" / coco_format.ANNOTATIONS_FILE).read_text())
    assert written["categories"] == [skeleton_lib.CROWDPOSE.category_entry()]

    declared = tmp_path / "custom.json"
    declared.write_text(json.dumps({"images": [], "annotations": [], "categories": [CUSTOM5.category_entry()]}))
    result = run("--skeleton", str(declared))
    assert "(5 keypoints): head, left_hand, right_hand, left_foot, right_foot" in result.stdout.splitlines()[0]
    written = json.loads((tmp_path / "out" / coco_format.ANNOTATIONS_FILE).read_text())
    assert written["categories"][0]["keypoints"] == list(CUSTOM5.keypoints)
    assert all(len(a["keypoints"]) == 15 for a in written["annotations"])

    failed = run("--skeleton", "nope", check=False)
    assert failed.returncode != 0 and "--skeleton nope: unknown skeleton 'nope'" in failed.stderr
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"categories": [{"id": 1, "name": "bird", "keypoints": ["beak", "tail"],
                                               "skeleton": [[1, 2]]}]}))
    failed = run("--skeleton", str(odd), check=False)
    assert failed.returncode != 0 and "the synthetic figures have no keypoint beak, tail" in failed.stderr
