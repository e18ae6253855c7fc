"""The part parser's submission files (tasks/parts/submission.py; docs/parts.md "Submission formats") read back
the way the official tools read them give the evaluator's figures: AP^p and PCP at the nine thresholds and
AP^p_vol through MHP v2's eval_submission.py / eval_mhp.py file handling, AP^r through CIHP's
test_inst_part_ap.py; the evaluator writes them with its metrics and reports the keypoint AP (pose_*)."""

import dataclasses
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from personlab_tf import keys
from personlab_tf.data import coco_records
from personlab_tf.skeleton import COCO17
from personlab_tf.task import EvaluationImage
from personlab_tf.tasks.parts import metrics, submission, targets
from personlab_tf.tasks.parts.task import PartsTask

from test_parts_metrics import person, predicted, random_image, reference_curve, reference_mhp, truth

IMAGES = 12
CLASSES, SIZE = 5, 16


# ------------------------------------------------------------------ the tools' file handling, written as they do
def read_mhp_submission(folder):
    """{key: [(person map, score)]} as eval_submission.py builds its results: results.txt split on whitespace
    into the key and (int id, float score) pairs; global_seg and global_tag read with cv2.IMREAD_UNCHANGED;
    a person is global_seg under global_tag == id, skipped when no pixel has its id."""
    images = {}
    with open(folder / submission.MHP_RESULTS_FILE) as f:
        for line in f.readlines():
            items = line.strip().split()
            key, items = items[0], items[1:]
            assert len(items) % 2 == 0
            seg = cv2.imread(str(folder / submission.MHP_SEG_DIR / f"{key}.png"), cv2.IMREAD_UNCHANGED)
            tag = cv2.imread(str(folder / submission.MHP_TAG_DIR / f"{key}.png"), cv2.IMREAD_UNCHANGED)
            persons = []
            for k in range(len(items) // 2):
                mask = tag == int(items[2 * k])
                if np.sum(mask) == 0:
                    continue
                persons.append((mask * seg, float(items[2 * k + 1])))
            images[key] = persons
    return images


def write_mhp_annotations(folder, key, ground_truth):
    """The ground truth as MHP v2 ships it: one PNG per person, `{key}_{N:02d}_{n:02d}.png`, 3 equal channels."""
    persons = [np.where(mask, ground_truth.part_map, 0).astype(np.uint8) for mask in ground_truth.masks]
    for number, parts in enumerate(persons, start=1):
        Image.fromarray(np.repeat(parts[..., None], 3, axis=-1)).save(
            folder / f"{key}_{len(persons):02d}_{number:02d}.png")


def read_mhp_annotations(folder, key):
    """eval_mhp.get_gt: each annotation PNG read with PIL, its first channel; one without a labelled pixel
    skipped."""
    persons = []
    for name in sorted(os.listdir(folder)):
        if name.rsplit("_", 2)[0] == key:
            gt = np.array(Image.open(folder / name))
            if len(gt.shape) == 3:
                gt = gt[:, :, 0]
            if np.sum(gt > 0) > 0:
                persons.append(gt)
    return persons


def read_lines(path):
    """A CIHP text file's lines split on single spaces, as the tool splits them."""
    with open(path) as f:
        return [line.strip().split(" ") for line in f.readlines()]


def cihp_region_ap(predictions, truths, classes, threshold):
    """test_inst_part_ap.compute_class_ap, the class mean over the classes with ground-truth regions: the images
    are the .txt files of the predictions folder; a region map PNG read with PIL; predicted region i + 1 is line i
    (class, score), its masks taken in the order of the map's values and paired with the scores in line order;
    ground-truth lines (region, class, ...); a predicted region is a hit when its best IoU with the image's
    ground-truth regions of its class is > threshold."""
    image_keys = [name[:-4] for name in os.listdir(predictions) if name[-3:] == "txt"]
    aps = []
    for c in range(1, classes):
        hits, scores, regions = [], [], 0
        for key in image_keys:
            truth_map = np.array(Image.open(truths / f"{key}.png"))
            truth_ids = {int(line[0]) for line in read_lines(truths / f"{key}.txt") if int(line[1]) == c}
            items = read_lines(predictions / f"{key}.txt")
            predicted_ids = {i + 1 for i in range(len(items)) if int(items[i][0]) == c}
            predicted_scores = [float(items[i][1]) for i in range(len(items)) if int(items[i][0]) == c]
            predicted_map = np.array(Image.open(predictions / f"{key}.png"))
            truth_masks = [truth_map == i for i in np.unique(truth_map) if i != 0 and i in truth_ids]
            predicted_masks = [predicted_map == i for i in np.unique(predicted_map) if i != 0 and i in predicted_ids]
            regions += len(truth_masks)
            if not predicted_masks:
                continue
            scores += predicted_scores
            for mask in predicted_masks:
                best = max((np.sum(mask & r) / np.sum(mask | r) for r in truth_masks), default=-1.0)
                hits.append(best > threshold)
        if regions:
            aps.append(reference_curve(hits, scores, regions))
    return float(np.mean(aps))


# ------------------------------------------------------------------------------------------------ round trip
def disjoint(ground_truth):
    """The ground truth under the project's definition (docs/parts.md "Data"): where masks overlap, the later
    person keeps the pixel."""
    masks = np.array(ground_truth.masks, bool)
    for index in range(len(masks)):
        masks[index] &= ~masks[index + 1:].any(axis=0)
    return dataclasses.replace(ground_truth, masks=masks)


def file_name(index):
    return f"val/images/{index:07d}.v2.jpg"        # key: the stem up to the first '.'


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """(evaluator results, submission folder, MHP annotations folder) of 12 random images."""
    rng = np.random.default_rng(11)
    folder, annotations = tmp_path_factory.mktemp("submission"), tmp_path_factory.mktemp("annotations")
    evaluator = metrics.PartParsingEvaluator(CLASSES)
    writer = submission.SubmissionWriter(str(folder))
    for index in range(IMAGES):
        ground_truth, prediction, _, _ = random_image(rng, SIZE, CLASSES)
        ground_truth = disjoint(ground_truth)
        evaluator.add(ground_truth, prediction)
        writer.add(index, file_name(index), ground_truth, prediction)
        write_mhp_annotations(annotations, submission.image_key(file_name(index)), ground_truth)
    return evaluator.results(), folder, annotations


def test_mhp_v2_files_read_as_eval_submission_reads_them_give_the_evaluators_figures(round_trip):
    expected, folder, annotations = round_trip
    submitted = read_mhp_submission(folder / submission.MHP_DIR)
    assert list(submitted) == [f"{index:07d}" for index in range(IMAGES)]   # every image, in order
    images = [(read_mhp_annotations(annotations, key), persons) for key, persons in submitted.items()]
    assert expected["instances"] == sum(len(truths) for truths, _ in images) > 20
    aps = []
    for t in metrics.THRESHOLDS:
        ap, pcp = reference_mhp(images, CLASSES, t)
        assert expected["APp"][str(t)] == pytest.approx(ap, abs=1e-6), t
        assert expected["PCP"][str(t)] == pytest.approx(pcp, abs=1e-6), t
        aps.append(ap)
    assert expected["APp_vol"] == pytest.approx(np.mean(aps), abs=1e-6)
    assert expected["PCP50"] == pytest.approx(reference_mhp(images, CLASSES, 0.5)[1], abs=1e-6)
    assert sum(ap > 0 for ap in aps) >= 5 and len(set(np.round(aps, 6))) >= 4   # the figures vary with t


def test_cihp_files_read_as_test_inst_part_ap_reads_them_give_the_evaluators_region_ap(round_trip):
    expected, folder, _ = round_trip
    predictions = folder / submission.CIHP_DIR / submission.CIHP_PREDICTIONS_DIR
    truths = folder / submission.CIHP_DIR / submission.CIHP_TRUTH_DIR
    assert len(os.listdir(predictions)) == len(os.listdir(truths)) == 2 * IMAGES
    aps = [cihp_region_ap(predictions, truths, CLASSES, t) for t in metrics.THRESHOLDS]
    for t, ap in zip(metrics.THRESHOLDS, aps):
        assert expected["APr"][str(t)] == pytest.approx(ap, abs=1e-6), t
    assert expected["APr_vol"] == pytest.approx(np.mean(aps), abs=1e-6)
    assert sum(ap > 0 for ap in aps) >= 5 and len(set(np.round(aps, 6))) >= 4


# ------------------------------------------------------------------------------------------------ by hand
def test_the_files_of_a_hand_made_image(tmp_path):
    # Persons a (parts 1, 2, 3 over rows 1-4) and b (parts 3, 1 over rows 6-8); slot 0 finds a, slot 1 is
    # empty, slot 2 finds b's part 3 only; the category-level map also labels pixel (9, 9) as part 2.
    a, b = person((1, 5), (1, 7), [1, 2, 3]), person((6, 9), (2, 8), [3, 1])
    guess = np.where(b[1] == 3, 3, 0)
    prediction = predicted([a[1], np.zeros_like(guess), guess], [0.9, 0.5, 0.25])
    prediction.part_map[9, 9] = 2
    submission.SubmissionWriter(str(tmp_path)).add(7, "0007.jpg", truth([a, b]), prediction)

    mhp = tmp_path / submission.MHP_DIR
    assert (mhp / submission.MHP_RESULTS_FILE).read_text() == "0007 1 0.9 3 0.25\n"   # the empty slot 2: none
    tag = cv2.imread(str(mhp / submission.MHP_TAG_DIR / "0007.png"), cv2.IMREAD_UNCHANGED)
    seg = cv2.imread(str(mhp / submission.MHP_SEG_DIR / "0007.png"), cv2.IMREAD_UNCHANGED)
    assert tag.shape == seg.shape == (10, 10) and tag.dtype == seg.dtype == np.uint8
    np.testing.assert_array_equal(tag, np.where(a[0], 1, 0) + np.where(guess > 0, 3, 0))
    np.testing.assert_array_equal(seg, prediction.part_map)
    assert seg[9, 9] == 2 and tag[9, 9] == 0

    cihp = tmp_path / submission.CIHP_DIR
    lines = (cihp / submission.CIHP_PREDICTIONS_DIR / "0007.txt").read_text()
    assert lines == "1 0.9\n2 0.9\n3 0.9\n3 0.25\n"
    regions = np.array(Image.open(cihp / submission.CIHP_PREDICTIONS_DIR / "0007.png"))
    np.testing.assert_array_equal(regions, a[1] + np.where(guess > 0, 4, 0))   # a's parts are regions 1-3
    assert (cihp / submission.CIHP_TRUTH_DIR / "0007.txt").read_text() == "1 1 1\n2 2 1\n3 3 1\n4 1 2\n5 3 2\n"
    truth_regions = np.array(Image.open(cihp / submission.CIHP_TRUTH_DIR / "0007.png"))
    np.testing.assert_array_equal(truth_regions, a[1] + np.where(b[1] == 1, 4, 0) + np.where(b[1] == 3, 5, 0))


def test_overlapping_truth_regions_go_to_the_later_person_and_numbers_stay_dense():
    # Person 1's part 2 lies entirely under person 2: region numbers 1 (person 1, part 1), 2 (person 2, part 3).
    first = np.array([[1, 2], [0, 0]])
    second = np.array([[0, 3], [3, 0]])
    region_map, found = submission.regions(np.array([first, second]))
    np.testing.assert_array_equal(region_map, [[1, 2], [2, 0]])
    assert found == [(0, 1), (1, 3)]


def test_labels_above_255_are_written_in_16_bits(tmp_path):
    labels = np.array([[0, 255], [256, 1000]])
    path = str(tmp_path / "labels.png")
    submission.write_labels(path, labels)
    read = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, labels)
    np.testing.assert_array_equal(np.array(Image.open(path)), labels)
    with pytest.raises(ValueError, match="must lie in"):
        submission.write_labels(path, np.array([[70000]]))


def test_bad_folders_and_file_names_are_refused_in_one_line(tmp_path):
    (tmp_path / "taken").write_text("a file where the folder should be")
    with pytest.raises(OSError, match="cannot write the submission files in .*taken") as error:
        submission.SubmissionWriter(str(tmp_path / "taken"))
    assert "\n" not in str(error.value)
    writer = submission.SubmissionWriter(str(tmp_path / "out"))
    a = person((1, 5), (1, 7), [1, 2])
    ground_truth, prediction = truth([a]), predicted([a[1]], [0.8])
    writer.add(1, "dir/0001.jpg", ground_truth, prediction)
    for image_id, name, message in [(2, "my photo.jpg", r"image 2: its file name 'my photo.jpg' gives .* 'my photo'"),
                                    (3, ".jpg", r"image 3: .* key ''"),
                                    (4, "other/0001.png", r"images 1 and 4 have the same submission key '0001'")]:
        with pytest.raises(ValueError, match=message) as error:
            writer.add(image_id, name, ground_truth, prediction)
        assert "\n" not in str(error.value)
    assert (tmp_path / "out" / submission.MHP_DIR / submission.MHP_RESULTS_FILE).read_text() == "0001 1 0.8\n"


def test_a_new_writer_replaces_the_earlier_submission(tmp_path):
    a = person((1, 5), (1, 7), [1, 2])
    submission.SubmissionWriter(str(tmp_path)).add(1, "old.jpg", truth([a]), predicted([a[1]], [0.8]))
    submission.SubmissionWriter(str(tmp_path)).add(2, "new.jpg", truth([a]), predicted([a[1]], [0.5]))
    assert (tmp_path / submission.MHP_DIR / submission.MHP_RESULTS_FILE).read_text() == "new 1 0.5\n"
    assert os.listdir(tmp_path / submission.MHP_DIR / submission.MHP_SEG_DIR) == ["new.png"]
    assert sorted(os.listdir(tmp_path / submission.CIHP_DIR / submission.CIHP_PREDICTIONS_DIR)) == ["new.png",
                                                                                                "new.txt"]


# ------------------------------------------------------------------------------ the evaluator: files and pose AP
def band_person(shape, rows, columns):
    """(mask, part map) of a rectangle of parts 1, 2, 3 in vertical bands, in an image of `shape`."""
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], columns[0]:columns[1]] = True
    parts = np.zeros(shape, np.uint8)
    parts[mask] = 1 + (3 * (np.nonzero(mask)[1] - columns[0])) // (columns[1] - columns[0])
    return mask, parts


def scene():
    """Images 1 ("a.jpg", persons 1 and 2) and 2 ("b.jpg", person 3) of 24 x 32 pixels: (COCO ground truth dict,
    [(EvaluationImage, [per person: (part map, keypoints [17, 2])])])."""
    rng = np.random.default_rng(3)
    boxes = {1: [(1, 11, 2, 14), (13, 23, 16, 30)], 2: [(4, 20, 8, 20)]}     # rows, columns of each person
    dataset = {"images": [], "annotations": [], "categories": [COCO17.category_entry()]}
    images = []
    for image_id, name in ((1, "a.jpg"), (2, "b.jpg")):
        dataset["images"].append({"id": image_id, "file_name": name, "height": 24, "width": 32})
        people = [band_person((24, 32), (y0, y1), (x0, x1)) for y0, y1, x0, x1 in boxes[image_id]]
        points = [np.stack([rng.uniform(x0, x1 - 1, 17), rng.uniform(y0, y1 - 1, 17)], axis=-1)
                  for y0, y1, x0, x1 in boxes[image_id]]
        for (y0, y1, x0, x1), xy in zip(boxes[image_id], points):
            dataset["annotations"].append({
                "id": len(dataset["annotations"]) + 1, "image_id": image_id, "category_id": COCO17.category_id,
                "keypoints": np.concatenate([xy, np.full((17, 1), 2.0)], axis=-1).ravel().tolist(),
                "num_keypoints": 17, "area": float((y1 - y0) * (x1 - x0)), "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": 0})
        n = len(people)
        part_map = np.sum([parts for _, parts in people], axis=0).astype(np.uint8)
        record = coco_records.ImageRecord(
            image_id=image_id, file_name=name, height=24, width=32, encoded=b"",
            keypoints=np.zeros((n, 17, 3), np.float32), masks=np.array([m for m, _ in people], np.uint8),
            is_crowd=np.zeros(n, bool), annotated=np.ones(n, bool), imputed=np.zeros(n, bool),
            annotation_ids=np.arange(n), areas=np.ones(n, np.float32), bboxes=np.zeros((n, 4), np.float32),
            has_parts=np.ones(n, bool), skeleton=COCO17.name, part_labels=part_map)
        images.append((EvaluationImage(image_id, b"", record), [(p, xy) for (_, p), xy in zip(people, points)]))
    return dataset, images


def parts_task():
    """The part parser's task with COCO's keypoints and the synthetic part set, whatever gin holds."""
    return PartsTask(data=targets.PartsData(part_set="synthetic"), skeleton=COCO17)


def detections(found):
    """Detections of [(part map, keypoints)], scores 0.75, 0.5 (exact in float32)."""
    count = len(found)
    maps = np.array([parts for parts, _ in found], np.uint8)
    return {keys.Detection.KEYPOINTS: np.array([xy for _, xy in found], np.float32),
            keys.Detection.KEYPOINT_SCORES: np.ones((count, 17), np.float32),
            keys.Detection.INSTANCE_SCORES: 0.75 - 0.25 * np.arange(count, dtype=np.float32),
            keys.Detection.NUM_DETECTIONS: np.array(count, np.int32),
            keys.Detection.PART_MAP: maps.max(axis=0), keys.Detection.INSTANCE_PART_MAPS: maps}


def test_the_evaluator_writes_both_layouts_and_reports_the_keypoint_ap(tmp_path):
    dataset, images = scene()
    evaluator = parts_task().evaluator(dataset, str(tmp_path))
    for image, found in images:
        evaluator.add(image, detections(found))
    results = evaluator.results()
    assert results["pose_AP"] == pytest.approx(1.0) and results["pose_AP50"] == pytest.approx(1.0)
    assert results["APp_50"] == pytest.approx(1.0)
    assert set(evaluator.headline(results)) == {"APp_50", "APp_vol", "PCP50", "mIoU"}
    assert (tmp_path / submission.MHP_DIR / submission.MHP_RESULTS_FILE).read_text() == "a 1 0.75 2 0.5\nb 1 0.75\n"
    for folder in (tmp_path / submission.MHP_DIR / submission.MHP_SEG_DIR,
                   tmp_path / submission.MHP_DIR / submission.MHP_TAG_DIR):
        assert sorted(os.listdir(folder)) == ["a.png", "b.png"]
    for folder in (submission.CIHP_PREDICTIONS_DIR, submission.CIHP_TRUTH_DIR):
        assert sorted(os.listdir(tmp_path / submission.CIHP_DIR / folder)) == ["a.png", "a.txt", "b.png", "b.txt"]
    assert (tmp_path / "metrics.json").read_text().count('"pose_AP"') == 1


def test_the_keypoint_ap_of_two_persons_found_out_of_three():
    # Person 2 missed: recall 1/3, 2/3 at precision 1, so COCO's interpolated precision is 1 at the 67 recall
    # points 0, 0.01, ..., 0.66 and 0 at the 34 others, at every OKS threshold: AP = 67 / 101.
    dataset, images = scene()
    evaluator = parts_task().evaluator(dataset)
    (first, found), (second, found_second) = images
    evaluator.add(first, detections(found[:1]))
    evaluator.add(second, detections(found_second))
    results = evaluator.results()
    assert results["pose_AP"] == pytest.approx(67 / 101) and results["pose_AP50"] == pytest.approx(67 / 101)
    assert results["pose_AR"] == pytest.approx(2 / 3)
    assert results["APp_50"] == pytest.approx(2 / 3)      # the same miss in VOC's all-point AP
