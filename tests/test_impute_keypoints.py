"""Keypoint imputation (paper §3.3): personlab_tf/tasks/personlab/crops.py, impute.py, scripts/impute_keypoints.py.

The end-to-end tests run on a small synthetic dataset whose images are replaced by *coordinate images*:
pixel (x, y) of image i has the colour (x, y, i). A fake detector therefore sees, in the frame it gets,
which image and which pixels the crop was cut from (its corner pixels are exact copies of the crop's
corner pixels), and answers with the true keypoints and masks of that image's persons moved into the
frame, plus a distractor that covers the whole frame and has the highest instance score.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.data import coco, coco_format, coco_problems, synthetic, writer
from personlab_tf.data import record_format as rf
from personlab_tf.tasks.personlab import crops, impute

from inference_fixtures import MAX_SIDE, REPO, exported_model, run_script
from test_create_tfrecords import parse_shards

K = COCO17.num_keypoints
NUM_IMAGES = 5
SEED = 0
MIN_AREA = 100.0
INPUT_SIZE = 97            # the fake detector works at any size; small frames keep the test fast
TRUE_SCORE = 0.9           # the fake's keypoint score of every true keypoint
OPTIONS = impute.Options(input_size=INPUT_SIZE, min_area=MIN_AREA)


# ---------------------------------------------------------------- (a) geometry


@pytest.mark.parametrize("bbox, margin, image_size, expected", [
    ((10, 20, 8, 4), 0.5, (100, 50), (6, 18, 22, 26)),          # 10 - 4, 20 - 2, 18 + 4, 24 + 2
    ((2.5, 3.2, 5.0, 4.0), 0.25, (100, 100), (1, 2, 9, 9)),     # floor 1.25, floor 2.2, ceil 8.75, ceil 8.2
    ((1, 2, 10, 10), 0.5, (12, 14), (0, 0, 14, 12)),            # -4, -3, 16, 17 clamped to the 14 x 12 image
    ((60, 5, 4, 4), 0.5, (20, 50), (50, 3, 50, 11)),            # right of the image: no column
])
def test_crop_box(bbox, margin, image_size, expected):
    assert crops.crop_box(bbox, margin, image_size) == expected


def test_upscale_is_corner_aligned_and_points_map_back():
    crop = (np.arange(5 * 9 * 3).reshape(5, 9, 3) * 2).astype(np.uint8)  # h 5, w 9
    frame, scale = crops.upscale_crop(crop, 33)
    assert scale == pytest.approx(4.0)                                  # (33 - 1) / (9 - 1)
    assert frame.shape == (17, 33, 3)                                   # (5 - 1) * 4 + 1 rows
    np.testing.assert_array_equal(frame[::4, ::4], crop)                # crop pixel (x, y) is frame pixel 4 (x, y)
    np.testing.assert_array_equal(frame[0, 2], (crop[0, 0].astype(int) + crop[0, 1]) // 2)  # half way: the mean
    np.testing.assert_allclose(crops.crop_to_original([[8.0, 12.0], [0.0, 0.0]], scale, (3, 7)),
                               [[3 + 2, 7 + 3], [3, 7]])


def test_a_crop_larger_than_the_input_is_shrunk():
    frame, scale = crops.upscale_crop(np.zeros((30, 65, 3), np.uint8), 33)
    assert scale == pytest.approx(0.5) and frame.shape == (15, 33, 3)  # (30 - 1) * 0.5 + 1 = 15.5 -> 15


def test_frame_masks_are_read_at_the_crop_pixels():
    masks = np.zeros((2, 17, 33), bool)
    masks[0, 12, 8] = True         # frame pixel (8, 12) = crop pixel (2, 3) at f = 4
    masks[0, 13, 9] = True         # nearest crop pixel (2.25, 3.25) -> read by no crop pixel
    masks[1] = True
    sampled = crops.masks_at_crop_pixels(masks, 4.0, (5, 9))
    assert sampled.shape == (2, 5, 9)
    assert list(zip(*np.nonzero(sampled[0]))) == [(3, 2)]
    assert sampled[1].all()


# ---------------------------------------------------------------- (b) selection and keypoints


def box_mask(rows, columns, shape=(10, 10)):
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], columns[0]:columns[1]] = True
    return mask


def test_mask_iou_and_best_fit():
    annotated = box_mask((2, 6), (2, 5))                                   # 4 x 3 = 12 pixels
    shifted = box_mask((2, 6), (3, 6))                                     # 8 shared, 16 in the union
    detections = np.stack([shifted, annotated, box_mask((7, 9), (7, 9)), np.zeros((10, 10), bool)])
    np.testing.assert_allclose(impute.mask_iou(detections, annotated), [0.5, 1.0, 0.0, 0.0])
    assert impute.best_fit(detections, annotated, 0.5) == 1                # not the first (best-scored) one
    assert impute.best_fit(detections[[0, 2]], annotated, 0.5) == 0        # IoU 0.5 is enough
    assert impute.best_fit(np.stack([annotated, annotated]), annotated, 0.5) == 0  # tie: higher instance score
    with pytest.raises(impute.Skipped) as skipped:
        impute.best_fit(detections[[0, 2, 3]], annotated, 0.6)
    assert skipped.value.reason == impute.POOR_FIT
    assert impute.mask_iou(np.zeros((1, 3, 3), bool), np.zeros((3, 3), bool)).tolist() == [0.0]


def test_imputed_visibility_needs_a_score_and_the_image():
    points = np.array([[0.0, 0.0], [-0.6, 3.0], [9.5, 4.0], [9.4, 4.4], [3.0, 4.6]])
    scores = np.array([0.9, 0.9, 0.5, 0.49, 0.9])
    # 10 x 5 image: x in [-0.5, 9.5], y in [-0.5, 4.5]
    assert impute.imputed_visibility(points, scores, (5, 10), 0.5).tolist() == [2, 0, 2, 0, 0]


def test_keypoint_similarity_counts_the_labelled_truth_only():
    area = 400.0
    truth = np.zeros((K, 3))
    truth[0], truth[5] = (10, 20, 2), (30, 40, 1)
    kappa = 2 * COCO17.sigmas[5]
    distance = math.sqrt(2 * area * kappa ** 2 * math.log(2))          # exp(-d^2 / (2 s^2 kappa^2)) = 1/2
    imputed = np.full((K, 3), 500.0)                                   # unlabelled truth: not counted
    imputed[0], imputed[5] = (10, 20, 2), (30 + distance, 40, 2)
    assert impute.keypoint_similarity(imputed, truth, area, COCO17.kappas) == pytest.approx(0.75, abs=1e-6)  # (1 + 1/2) / 2
    assert impute.keypoint_similarity(imputed, np.zeros((K, 3)), area, COCO17.kappas) is None


def test_unusable_hidden_keypoints_file(tmp_path):
    path = tmp_path / "hidden.json"
    path.write_text(json.dumps([{"id": 1, "keypoints": [0] * (3 * K)}, {"id": 2, "keypoints": [0] * 50}]))
    with pytest.raises(coco.AnnotationError, match="entry 1"):
        impute.load_hidden_keypoints(str(path), K)
    path.write_text(json.dumps({"id": 1}))
    with pytest.raises(coco.AnnotationError, match="not a JSON list"):
        impute.load_hidden_keypoints(str(path), K)


# ---------------------------------------------------------------- (c) end to end with a fake detector


def coordinate_image(height, width, image_id):
    """[H, W, 3] uint8 with pixel (x, y) = (x, y, image_id); sides and ids below 256."""
    y, x = np.mgrid[:height, :width]
    return np.stack([x, y, np.full_like(x, image_id)], axis=-1).astype(np.uint8)


class FakeDetector:
    """Answers a frame with the true persons of its image moved into the frame, as the SavedModel would.

    Args:
      truth: {image id: [(annotation id, keypoints [K, 2] original pixels, mask [H, W] bool)]}.
      withheld: annotation ids the fake never reports; blind: image ids where it reports nobody.
    """

    def __init__(self, truth, withheld, blind):
        self.truth, self.withheld, self.blind = truth, withheld, blind
        self.calls = 0

    def __call__(self, frame):
        self.calls += 1
        height, width = frame.shape[:2]
        x0, y0, image_id = frame[0, 0].astype(int)
        if width >= height:  # the larger side spans the crop's first to last pixel: f = (S - 1) / (L - 1)
            scale = (width - 1) / (int(frame[0, width - 1, 0]) - x0)
        else:
            scale = (height - 1) / (int(frame[height - 1, 0, 1]) - y0)
        persons = [p for p in self.truth[image_id] if p[0] not in self.withheld]
        keypoints = [np.full((K, 2), (width / 2, height / 2))]            # the distractor, scored highest
        masks = [np.ones((height, width), bool)]
        for _, points, mask in persons:
            keypoints.append(scale * (points - (x0, y0)))                  # original -> frame: u = f (x - x0)
            rows = np.clip(np.floor(y0 + np.arange(height) / scale + 0.5).astype(int), 0, mask.shape[0] - 1)
            columns = np.clip(np.floor(x0 + np.arange(width) / scale + 0.5).astype(int), 0, mask.shape[1] - 1)
            masks.append(mask[rows[:, None], columns[None, :]])
        count = 0 if image_id in self.blind else len(keypoints)
        return {keys.Detection.KEYPOINTS: np.array(keypoints)[:count], keys.Detection.NUM_DETECTIONS: count,
                keys.Detection.KEYPOINT_SCORES: np.full((count, K), TRUE_SCORE),
                keys.Detection.INSTANCE_SCORES: np.array([0.99] + [0.5] * len(persons))[:count],
                keys.Detection.MASKS: np.array(masks)[:count]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A synthetic dataset with coordinate images, one image file missing, and its imputation by the fake."""
    root = tmp_path_factory.mktemp("impute")
    synthetic.generate_dataset(str(root), NUM_IMAGES, SEED, min_side=160, max_side=240)
    annotations = root / coco_format.ANNOTATIONS_FILE
    api = COCO(str(annotations))
    hidden = {e["id"]: np.array(e["keypoints"], np.float64).reshape(K, 3)
              for e in json.loads((root / synthetic.HIDDEN_KEYPOINTS_FILE).read_text())}
    for info in api.imgs.values():  # PNG bytes under the .jpg name: the reader goes by content
        Image.fromarray(coordinate_image(info["height"], info["width"], info["id"])).save(
            root / coco_format.IMAGES_DIR / info["file_name"], "PNG")
    persons = [a for a in api.anns.values() if not a["iscrowd"]]
    truth = {image_id: [] for image_id in api.imgs}
    for a in persons:
        points = hidden[a["id"]] if a["num_keypoints"] == 0 else np.array(a["keypoints"], np.float64).reshape(K, 3)
        truth[a["image_id"]].append((a["id"], points[:, :2], api.annToMask(a).astype(bool)))
    candidates = [a for a in persons if a["num_keypoints"] == 0 and a["area"] >= MIN_AREA]
    images = sorted({a["image_id"] for a in candidates})
    missing, blind = images[-1], {images[0]}
    (root / coco_format.IMAGES_DIR / api.imgs[missing]["file_name"]).unlink()
    seen = [a for a in candidates if a["image_id"] not in (missing, *blind)]
    withheld = {a["id"] for a in seen[::3]}
    fake = FakeDetector(truth, withheld, blind)
    problems = coco_problems.ProblemCounter()
    dataset = coco.load_dataset(str(annotations), problems)
    entries, summary = impute.impute_dataset(dataset, str(root / coco_format.IMAGES_DIR), fake, OPTIONS, problems)
    return dict(root=root, api=api, hidden=hidden, candidates=candidates, missing=missing, blind=blind,
                withheld=withheld, dataset=dataset, entries=entries, summary=summary, fake=fake, problems=problems)


def outside_everywhere(points, info):
    """True if no point [K, 3] lies inside the image (coco.points_inside_image rule)."""
    return not coco.points_inside_image(points[:, :2], info["height"], info["width"]).any()


def test_imputation_recovers_the_hidden_keypoints_and_skips_what_does_not_fit(world):
    api, hidden, summary, candidates = world["api"], world["hidden"], world["summary"], world["candidates"]
    unreadable = [a for a in candidates if a["image_id"] == world["missing"]]
    blind = [a for a in candidates if a["image_id"] in world["blind"]]
    rest = [a for a in candidates if a not in unreadable and a not in blind and a["id"] not in world["withheld"]]
    hopeless = [a for a in rest if outside_everywhere(hidden[a["id"]], api.imgs[a["image_id"]])]
    imputed = [a["id"] for a in rest if a not in hopeless]
    assert len(unreadable) and len(blind) and len(world["withheld"]) and len(imputed) >= 5
    expected_skips = {impute.IMAGE_UNREADABLE: len(unreadable), impute.NO_DETECTION: len(blind),
                      impute.POOR_FIT: len(world["withheld"]), impute.NO_CONFIDENT_KEYPOINT: len(hopeless)}
    assert summary == {"persons_considered": len(candidates), "imputed": len(imputed),
                       "skipped": {reason: n for reason, n in sorted(expected_skips.items()) if n},
                       "images_missing": 1}
    assert world["problems"].warnings == {coco_problems.MISSING_IMAGE: 1}
    assert world["fake"].calls == len(candidates) - len(unreadable)   # small persons are not considered

    assert [e["id"] for e in world["entries"]] == imputed
    for item in world["entries"]:
        keypoints = np.array(item["keypoints"]).reshape(K, 3)
        truth = hidden[item["id"]]
        info = api.imgs[api.anns[item["id"]]["image_id"]]
        np.testing.assert_allclose(keypoints[:, :2], truth[:, :2], atol=0.006)   # written to 0.01 px
        inside = coco.points_inside_image(truth[:, :2], info["height"], info["width"])
        assert keypoints[:, 2].tolist() == np.where(inside, 2, 0).tolist()
        assert item["scores"] == [TRUE_SCORE] * K
    quality = impute.imputation_quality(world["entries"], hidden, world["dataset"], MIN_AREA)["all"]
    assert quality["considered"] == len(candidates) and quality["imputed"] == len(imputed)
    assert quality["scored"] == len(imputed) and quality["mean_oks"] == pytest.approx(1.0, abs=1e-6)


def hand_annotation(annotation_id, area):
    """A COCO person annotated without keypoints, of area `area` (what `impute.candidates` considers)."""
    return {"id": annotation_id, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": area,
            "bbox": [0, 0, 10, 10], "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], "num_keypoints": 0,
            "keypoints": [0] * (3 * K)}


def test_imputation_quality_by_size_by_hand():
    """Three persons, one per COCO size, and a small one left unimputed. Small: the truth exactly, 9 of 17
    keypoints labelled; medium: every keypoint 3 px right, all labelled; large: 17 labelled, truth with only
    the first 10 keypoints known. OKS by the COCO formula exp(-d^2 / (2 s^2 kappa^2)), kappa = 2 sigma."""
    truth_points = np.stack([np.arange(K) * 5.0, np.arange(K) * 3.0 + 1.0, np.full(K, 2.0)], -1)
    annotations = [hand_annotation(1, 400.0), hand_annotation(2, 2000.0), hand_annotation(3, 20000.0),
                   hand_annotation(4, 200.0)]
    dataset = coco.parse_dataset({"images": [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 100}],
                                  "annotations": annotations}, "hand-made", coco_problems.ProblemCounter(), COCO17)
    small = truth_points.copy()
    small[9:, 2] = 0
    medium = truth_points + [3.0, 0.0, 0.0]
    large_truth = truth_points.copy()
    large_truth[10:, 2] = 0
    entries = [impute.entry(1, small, np.ones(K)), impute.entry(2, medium, np.ones(K)),
               impute.entry(3, truth_points + [0.0, 4.0, 0.0], np.ones(K))]
    truth = {1: truth_points, 2: truth_points, 3: large_truth, 4: truth_points}
    quality = impute.imputation_quality(entries, truth, dataset)
    kappas = 2.0 * np.asarray(COCO17.sigmas)
    medium_oks = float(np.mean(np.exp(-9.0 / (2.0 * 2000.0 * kappas ** 2))))
    large_terms = np.exp(-16.0 / (2.0 * 20000.0 * kappas[:10] ** 2))
    assert quality["small"] == {"considered": 2, "imputed": 1, "coverage": 0.5, "scored": 1, "mean_oks": 1.0,
                                "keypoint_coverage": round(9 / 17, 4), "labelled_keypoint_oks": 1.0}
    assert quality["medium"] == {"considered": 1, "imputed": 1, "coverage": 1.0, "scored": 1,
                                 "mean_oks": round(medium_oks, 4), "keypoint_coverage": 1.0,
                                 "labelled_keypoint_oks": round(medium_oks, 4)}
    assert quality["large"]["keypoint_coverage"] == 1.0      # all 10 known keypoints are labelled
    assert quality["large"]["mean_oks"] == round(float(large_terms.mean()), 4)
    assert quality["all"]["considered"] == 4 and quality["all"]["coverage"] == 0.75
    assert quality["all"]["mean_oks"] == round((1.0 + medium_oks + float(large_terms.mean())) / 3, 4)


def test_min_area_and_labelled_persons_are_not_considered(world):
    selected = impute.candidates(world["dataset"], MIN_AREA)
    chosen = sorted(p.annotation_id for persons in selected.persons.values() for p in persons)
    assert chosen == sorted(a["id"] for a in world["candidates"])
    everyone = impute.candidates(world["dataset"], 0.0)
    small = [p for persons in everyone.persons.values() for p in persons if p.area < MIN_AREA]
    assert len(small) > 0   # the synthetic data has persons below the threshold, excluded above


# ---------------------------------------------------------------- (d) the output feeds create_tfrecords.py


def test_written_entries_round_trip_through_create_tfrecords(world, tmp_path):
    imputed_path = tmp_path / "imputed.json"
    imputed_path.write_text(json.dumps(world["entries"]))
    root, api = world["root"], world["api"]
    prefix = tmp_path / "records"
    process = subprocess.run([sys.executable, str(REPO / "scripts" / "create_tfrecords.py"),
                              "--annotations", str(root / coco_format.ANNOTATIONS_FILE),
                              "--images", str(root / coco_format.IMAGES_DIR), "--output", str(prefix),
                              "--imputed_keypoints", str(imputed_path)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    summary = json.loads(process.stdout.strip().splitlines()[-1])
    labelled = [a for a in api.anns.values() if a["num_keypoints"] > 0 and a["image_id"] != world["missing"]]
    assert summary[writer.IMPUTED_PERSONS] == len(world["entries"])
    assert summary[writer.ANNOTATED_PERSONS] == len(labelled) + len(world["entries"])
    assert summary[writer.WARNINGS] == {coco_problems.MISSING_IMAGE: 1}   # no imputed entry was refused

    records = parse_shards(writer.shard_paths(str(prefix), 1))
    written = {e["id"]: np.float32(e["keypoints"]).reshape(K, 3) for e in world["entries"]}
    found = 0
    for record in records:
        for n, annotation_id in enumerate(record[rf.PERSON_ID]):
            if int(annotation_id) in written:
                found += 1
                assert record[rf.PERSON_IMPUTED][n] == 1 and record[rf.PERSON_ANNOTATED][n] == 1
                np.testing.assert_array_equal(record[rf.PERSON_KEYPOINTS][n], written[int(annotation_id)])
            else:
                assert record[rf.PERSON_IMPUTED][n] == 0
    assert found == len(written)


# ---------------------------------------------------------------- the script with a real SavedModel


def test_script_with_the_exported_model(world, tmp_path):
    """The tiny random-weight export (larger side MAX_SIDE) predicts empty masks, so the thresholds are
    set to 0 to take its best-scored detection and every keypoint inside the image: the written path."""
    _, export_dir, _ = exported_model()
    root, candidates = world["root"], world["candidates"]
    output = tmp_path / "out" / "imputed.json"
    process, summary = run_script(
        "impute_keypoints.py", "--saved_model", export_dir, "--annotations", str(root / coco_format.ANNOTATIONS_FILE),
        "--images", str(root / coco_format.IMAGES_DIR), "--output", str(output), "--input_size", str(MAX_SIDE),
        "--min_area", str(MIN_AREA), "--hidden_keypoints", str(root / synthetic.HIDDEN_KEYPOINTS_FILE),
        "--min_mask_iou", "0", "--min_keypoint_score", "0")
    missing_file = world["api"].imgs[world["missing"]]["file_name"]
    assert missing_file in process.stderr                       # the warning names the file
    assert summary["persons_considered"] == len(candidates)
    assert summary["images_missing"] == 1 and summary["input_warnings"] == {coco_problems.MISSING_IMAGE: 1}
    unreadable = sum(a["image_id"] == world["missing"] for a in candidates)
    assert summary["skipped"][impute.IMAGE_UNREADABLE] == unreadable
    assert summary["imputed"] + sum(summary["skipped"].values()) == len(candidates)
    entries = json.loads(output.read_text())
    assert 0 < len(entries) == summary["imputed"]
    assert summary["oks_persons"] == sum(bool(np.any(world["hidden"][e["id"]][:, 2] > 0)) for e in entries)
    assert 0.0 <= summary["mean_oks"] <= 1.0
    assert {e["id"] for e in entries} <= {a["id"] for a in candidates}
    api = world["api"]
    for item in entries:
        assert len(item["keypoints"]) == 3 * K and len(item["scores"]) == K
        keypoints = np.array(item["keypoints"]).reshape(K, 3)
        info = api.imgs[api.anns[item["id"]]["image_id"]]
        inside = coco.points_inside_image(keypoints[:, :2], info["height"], info["width"])
        assert keypoints[:, 2].tolist() == np.where(inside, 2, 0).tolist() and inside.any()


def test_script_unusable_inputs_end_with_one_line(world, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    root = world["root"]
    cases = [("--annotations", str(bad), str(bad)),
             ("--saved_model", str(tmp_path / "no_model"), str(tmp_path / "no_model"))]
    arguments = {"--saved_model": str(tmp_path), "--annotations": str(root / coco_format.ANNOTATIONS_FILE),
                 "--images": str(root / coco_format.IMAGES_DIR), "--output": str(tmp_path / "x.json")}
    for flag, value, named in cases:
        flags = [item for key, default in arguments.items() for item in (key, value if key == flag else default)]
        process = subprocess.run([sys.executable, str(REPO / "scripts" / "impute_keypoints.py"), *flags],
                                 cwd=REPO, capture_output=True, text=True, timeout=300)
        assert process.returncode == 1, flag
        assert "Traceback" not in process.stderr
        last = process.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and named in last
        assert not (tmp_path / "x.json").exists()
