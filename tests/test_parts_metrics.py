"""Part-parsing metrics (tasks/parts/metrics.py): hand-computed values of the official definitions (MHP v2's
eval_mhp.py for AP^p and PCP, CIHP's test_inst_part_ap.py for AP^r; docs/parts.md "Metrics"), and agreement
with a plain-loop reference of those tools' logic on random predictions."""

import numpy as np
import pytest

from personlab_tf.tasks.parts import metrics

H = W = 10
CLASSES = 4   # background + parts 1, 2, 3
THRESHOLDS = [str(t) for t in metrics.THRESHOLDS]


def person(rows, columns, labels):
    """(mask [H, W] bool, part map [H, W] uint8) of a rectangle split into vertical bands of `labels`."""
    mask = np.zeros((H, W), bool)
    mask[rows[0]:rows[1], columns[0]:columns[1]] = True
    parts = np.zeros((H, W), np.uint8)
    width = (columns[1] - columns[0]) // len(labels)
    for index, label in enumerate(labels):
        start = columns[0] + index * width
        parts[rows[0]:rows[1], start:start + width] = label
    return mask, parts


def truth(people, crowd=(), unlabelled=()):
    """Ground truth of persons [(mask, parts)] plus crowd and no-parts regions (masks)."""
    masks = [m for m, _ in people] + list(crowd) + list(unlabelled)
    part_map = np.zeros((H, W), np.uint8)
    for mask, parts in people:
        part_map[mask] = parts[mask]
    flags = [False] * len(people) + [True] * len(crowd) + [False] * len(unlabelled)
    has_parts = [True] * len(people) + [False] * (len(crowd) + len(unlabelled))
    return metrics.GroundTruth(part_map=part_map, masks=np.array(masks).reshape(-1, H, W), is_crowd=np.array(flags),
                               has_parts=np.array(has_parts))


def predicted(instances, scores):
    parts = np.array(instances).reshape(-1, H, W).astype(np.uint8)
    part_map = parts.max(axis=0) if len(instances) else np.zeros((H, W), np.uint8)
    return metrics.Prediction(part_map=part_map, instance_part_maps=parts, scores=np.array(scores, float))


def evaluate(pairs, classes=CLASSES):
    evaluator = metrics.PartParsingEvaluator(classes)
    for ground_truth, prediction in pairs:
        evaluator.add(ground_truth, prediction)
    return evaluator.results()


def test_voc_average_precision_hand_values():
    # Ranked: TP, FP, TP with 2 positives: precision 1 at recall 0.5, 2/3 at recall 1 -> 0.5 + 0.5 * 2/3.
    assert metrics.voc_average_precision([True, False, True], [0.9, 0.8, 0.7], 2) == pytest.approx(0.5 + 1 / 3)
    # The monotone envelope: FP first, then TP -> precision 1/2 at recall 1.
    assert metrics.voc_average_precision([False, True], [0.9, 0.8], 1) == pytest.approx(0.5)
    assert metrics.voc_average_precision([True], [0.5], 2) == pytest.approx(0.5)
    assert metrics.voc_average_precision([], [], 3) == 0.0
    assert np.isnan(metrics.voc_average_precision([True], [0.5], 0))


def test_person_iou_counts_background_and_classes_present_in_either():
    # One pixel row: truth 0 0 1 1 2, prediction 0 1 1 3 2.
    truth_row, guess = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 3, 2])
    areas = [np.bincount(v, minlength=5) for v in (guess, truth_row)]
    inter = np.bincount(truth_row[truth_row == guess], minlength=5)
    ious = metrics.class_ious(inter, *areas)
    # bg 1/2, part 1 1/3, part 2 1, part 3 0/1, class 4 absent (NaN).
    np.testing.assert_allclose(ious[:4], [1 / 2, 1 / 3, 1.0, 0.0])
    assert np.isnan(ious[4])
    assert metrics.person_iou(ious) == pytest.approx((1 / 2 + 1 / 3 + 1 + 0) / 4)


def test_the_truth_scores_one():
    a = person((1, 5), (1, 7), [1, 2, 3])
    b = person((6, 9), (2, 8), [3, 1])
    ground_truth = truth([a, b])
    result = evaluate([(ground_truth, predicted([a[1], b[1]], [0.9, 0.8]))])
    for key in ("mIoU", "APp_50", "APp_vol", "PCP50", "APr_50", "APr_60", "APr_70", "APr_vol"):
        assert result[key] == pytest.approx(1.0), key
    assert result["instances"] == 2


def test_background_counts_in_the_person_iou():
    # Part 1 exact, part 2 (6 pixels) called part 3. Classes present: background (IoU 88/88), part 1 (1),
    # part 2 (0), part 3 (0) -> person IoU 2/4 = 0.5 (1/3 without the background).
    mask, parts = person((2, 5), (2, 6), [1, 2])
    guess = parts.copy()
    guess[guess == 2] = 3
    result = evaluate([(truth([(mask, parts)]), predicted([guess], [0.7]))])
    # Matched when 0.5 > t: t = 0.1 ... 0.4 (not at 0.5: the tool's test is strict).
    assert [result["APp"][t] for t in THRESHOLDS] == [1.0] * 4 + [0.0] * 5
    assert result["APp_50"] == 0.0 and result["APp_vol"] == pytest.approx(4 / 9)
    assert result["PCP50"] == 0.0                              # unmatched at 0.5
    assert result["PCP"]["0.1"] == pytest.approx(1 / 2)       # part 1 of the person's parts {1, 2}
    assert result["APr_50"] == pytest.approx(1 / 2)           # class 1 found (AP 1), class 2 missed (AP 0)
    # mIoU over the 100 pixels: background 88/88, part 1 6/6, part 2 0/6, part 3 0/6 -> (1 + 1) / 4.
    assert result["mIoU"] == pytest.approx(0.5)


def test_background_moves_a_person_over_a_threshold():
    # Three parts of 4 pixels; the prediction misses 3 pixels of part 3: part IoUs 1, 1, 1/4 and background
    # 88/91 -> person IoU (88/91 + 2.25) / 4 = 0.804: matched up to t = 0.8 (parts alone: 0.75, up to 0.7).
    mask, parts = person((1, 3), (0, 6), [1, 2, 3])
    guess = parts.copy()
    guess[tuple(np.argwhere(parts == 3)[:3].T)] = 0
    result = evaluate([(truth([(mask, parts)]), predicted([guess], [0.5]))])
    assert [result["APp"][t] for t in THRESHOLDS] == [1.0] * 8 + [0.0]
    assert result["APp_vol"] == pytest.approx(8 / 9)
    # PCP: the parts with IoU > t over the person's 3 parts.
    assert result["PCP50"] == pytest.approx(2 / 3) and result["PCP"]["0.2"] == pytest.approx(1.0)
    assert result["PCP"]["0.9"] == 0.0                       # unmatched at 0.9


def test_a_prediction_goes_to_its_best_instance_even_if_taken():
    # Two 10-pixel persons of part 1 (rows 0-1 and 8-9); d1 = the first exactly (0.9); d2 (0.8) a 10-pixel
    # part-1 band on rows 4-5, touching nobody: person IoU with either = (background 80/100 + part 1 0) / 2 =
    # 0.4, a tie that goes to the first person, already taken -> a false positive at every threshold, even
    # at t <= 0.3 where the second person is free (no fallback, as in the tool).
    first, second = person((0, 2), (0, 5), [1]), person((8, 10), (0, 5), [1])
    band = person((4, 6), (0, 5), [1])[1]
    result = evaluate([(truth([first, second]), predicted([first[1], band], [0.9, 0.8]))])
    assert all(result["APp"][t] == pytest.approx(0.5) for t in THRESHOLDS)
    assert result["APr_vol"] == pytest.approx(0.5)            # the band's part-1 region overlaps no region


def test_ranking_duplicates_and_empty_instances():
    # Two images, one person each. In the first, A's parts are predicted on A (0.6) and again on rows 6-9
    # (0.7, touching nobody: person IoU with A = background 52/100 / 4 classes = 0.13), plus an instance
    # without pixels (0.9), which is not submitted (eval_submission drops persons without pixels).
    a = person((1, 5), (1, 7), [1, 2, 3])
    b = person((1, 5), (1, 7), [2, 3, 1])
    copy = np.roll(a[1], 5, axis=0)
    empty = np.zeros((H, W), np.uint8)
    result = evaluate([(truth([a]), predicted([a[1], copy, empty], [0.6, 0.7, 0.9])), (truth([b]), predicted([], []))])
    # t = 0.1: the copy (0.13 > 0.1) takes A first, the exact prediction is a duplicate: TP, FP over 2 persons.
    assert result["APp"]["0.1"] == pytest.approx(0.5) and result["PCP"]["0.1"] == 0.0
    # t >= 0.2: FP (the copy), TP -> precision 1/2 at recall 1/2.
    assert result["APp_50"] == pytest.approx(0.25) and result["PCP50"] == pytest.approx(0.5)


def test_region_ap_lets_two_predictions_hit_one_region():
    # CIHP's rule: a predicted region is a true positive when its best IoU with a ground-truth region of
    # its class is > t, whether or not another prediction already hit it. One person, parts 1 (10 pixels,
    # rows 0-1, cols 0-4) and 2; the prediction splits part 1 in 6 + 4 pixels between two instances.
    mask, parts = person((0, 2), (0, 10), [1, 2])
    big, small = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
    big[0:2, 0:3] = 1                                       # 6 pixels: IoU 0.6
    small[0:2, 3:5] = 1                                     # 4 pixels: IoU 0.4
    result = evaluate([(truth([(mask, parts)]), predicted([big, small], [0.9, 0.8]))])
    # Class 1 at t = 0.3: TP, TP over 1 region -> recall 1 then 2: AP 2 (as the tool computes it);
    # class 2: no prediction, AP 0. Mean over the 2 classes.
    assert result["APr"]["0.3"] == pytest.approx((2.0 + 0.0) / 2)
    assert result["APr_50"] == pytest.approx((1.0 + 0.0) / 2)  # only the 6-pixel region passes
    assert result["APr_70"] == 0.0


def test_persons_without_part_pixels_are_not_instances():
    a = person((1, 4), (1, 7), [1, 2, 3])
    empty = (person((6, 9), (1, 4), [1])[0], np.zeros((H, W), np.uint8))
    result = evaluate([(truth([a, empty]), predicted([a[1]], [0.5]))])
    assert result["instances"] == 1 and result["APp_50"] == 1.0


def test_predictions_in_ignored_regions_do_not_count():
    a = person((1, 4), (1, 7), [1, 2, 3])
    crowd = np.zeros((H, W), bool)
    crowd[6:10, 0:10] = True
    on_crowd = np.zeros((H, W), np.uint8)
    on_crowd[6:9, 1:7] = 2
    unlabelled = np.zeros((H, W), bool)
    unlabelled[0:3, 8:10] = True
    on_unlabelled = np.zeros((H, W), np.uint8)
    on_unlabelled[0:3, 8:10] = 1
    ground_truth = truth([a], crowd=[crowd], unlabelled=[unlabelled])
    result = evaluate([(ground_truth, predicted([a[1], on_crowd, on_unlabelled], [0.5, 0.9, 0.8]))])
    assert result["APp_50"] == 1.0 and result["APr_50"] == 1.0
    # The ignored pixels are out of the mIoU too: the other pixels are parsed exactly.
    assert result["mIoU"] == pytest.approx(1.0)
    # Without the ignore flags the two predictions are false positives ranked first.
    plain = metrics.GroundTruth(part_map=ground_truth.part_map, masks=ground_truth.masks[:1],
                                is_crowd=np.array([False]), has_parts=np.array([True]))
    result = evaluate([(plain, predicted([a[1], on_crowd, on_unlabelled], [0.5, 0.9, 0.8]))])
    assert result["APp_50"] == pytest.approx(1 / 3)


def test_bad_predictions_are_refused():
    a = person((1, 4), (1, 7), [1, 2, 3])
    evaluator = metrics.PartParsingEvaluator(CLASSES)
    with pytest.raises(ValueError, match="overlap"):
        evaluator.add(truth([a]), predicted([a[1], a[1]], [0.5, 0.4]))
    with pytest.raises(ValueError, match="labels"):
        evaluator.add(truth([a]), predicted([a[1] * 2], [0.5]))


# ------------------------------------------------------------------------------- reference of the tools


def reference_voc_ap(recall, precision):
    """voc_ap(use_07_metric=False) of the MHP and CIHP tools, written as loops."""
    mrec = [0.0] + list(recall) + [1.0]
    mpre = [0.0] + list(precision) + [0.0]
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


def reference_curve(hits, scores, positives):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = fp = 0
    recall, precision = [], []
    for i in order:
        tp, fp = tp + hits[i], fp + (not hits[i])
        recall.append(tp / positives)
        precision.append(tp / max(tp + fp, np.finfo(np.float64).eps))
    return reference_voc_ap(recall, precision)


def reference_mhp(images, classes, threshold):
    """(AP^p, PCP) of eval_mhp.eval_seg_ap: images = [(per-person label maps, [(instance map, score)])]."""
    detections = [(score, i, mask) for i, (_, predictions) in enumerate(images) for mask, score in predictions]
    detections.sort(key=lambda item: -item[0])
    taken = [[False] * len(persons) for persons, _ in images]
    positives = sum(len(persons) for persons, _ in images)
    hits, pcp = [], []
    for _, i, prediction in detections:
        best, best_index, best_ious, best_person = -np.inf, -1, None, None
        for j, gt in enumerate(images[i][0]):
            ious = []
            for c in range(classes):
                union = np.sum((prediction == c) | (gt == c))
                ious.append(np.sum((prediction == c) & (gt == c)) / union if union else np.nan)
            if np.nanmean(ious) > best:
                best, best_index, best_ious, best_person = np.nanmean(ious), j, ious, gt
        if best > threshold and not taken[i][best_index]:
            taken[i][best_index] = True
            hits.append(True)
            labels = [c for c in np.unique(best_person) if 0 < c < classes]
            pcp.append(sum(best_ious[c] > threshold for c in range(1, classes)) / len(labels))
        else:
            hits.append(False)
    return reference_curve(hits, [d[0] for d in detections], positives), sum(pcp) / positives


def reference_cihp(images, classes, threshold):
    """AP^r of test_inst_part_ap.compute_class_ap, averaged over the classes with ground-truth regions."""
    aps = []
    for c in range(1, classes):
        hits, scores, regions = [], [], 0
        for persons, predictions in images:
            truth_regions = [gt == c for gt in persons if np.any(gt == c)]
            regions += len(truth_regions)
            for mask, score in predictions:
                region = mask == c
                if not region.any():
                    continue
                scores.append(score)
                best = max((np.sum(region & r) / np.sum(region | r) for r in truth_regions), default=-1.0)
                hits.append(best > threshold)
        if regions:
            aps.append(reference_curve(hits, scores, regions))
    return float(np.mean(aps))


def random_image(rng, size, classes):
    """(GroundTruth, Prediction, per-person maps, [(instance map, score)]) of random overlapping persons."""
    part_map = np.zeros((size, size), np.uint8)
    masks = []
    for _ in range(rng.integers(1, 5)):
        mask = np.zeros((size, size), bool)
        y, x = rng.integers(0, size - 8, 2)
        height, width = rng.integers(3, 9, 2)
        mask[y:y + height, x:x + width] = True
        bands = rng.integers(0, classes, rng.integers(1, 5))            # horizontal bands of parts (0: none)
        rows = np.minimum((np.arange(height) * len(bands)) // height, len(bands) - 1)
        part_map[y:y + height, x:x + width] = bands[rows][:, None]      # later persons over earlier ones
        masks.append(mask)
    masks = np.array(masks)
    persons = [np.where(mask, part_map, 0) for mask in masks]
    owner = np.full((size, size), -1)
    labels = np.zeros((size, size), np.uint8)
    count = 0
    for gt in persons:
        if rng.random() < 0.8:                                          # a noisy, shifted copy
            copy = np.roll(gt, tuple(rng.integers(-1, 2, 2)), axis=(0, 1))
            noise = (rng.random(copy.shape) < rng.uniform(0, 0.3)) & (copy > 0)
            copy[noise] = rng.integers(0, classes, noise.sum())
            owner[copy > 0], labels[copy > 0], count = count, copy[copy > 0], count + 1
    for _ in range(rng.integers(0, 3)):                                 # false positives
        y, x = rng.integers(0, size - 3, 2)
        owner[y:y + 3, x:x + 3] = count
        labels[y:y + 3, x:x + 3] = rng.integers(1, classes, (3, 3))
        count += 1
    instances = np.array([np.where(owner == d, labels, 0) for d in range(count)], np.uint8).reshape(-1, size, size)
    scores = rng.random(count)
    category = np.where(rng.random((size, size)) < 0.1, rng.integers(0, classes, (size, size)), labels).astype(np.uint8)
    ground_truth = metrics.GroundTruth(part_map=part_map, masks=masks, is_crowd=np.zeros(len(masks), bool),
                                       has_parts=np.ones(len(masks), bool))
    prediction = metrics.Prediction(part_map=category, instance_part_maps=instances, scores=scores)
    submitted = [(m, s) for m, s in zip(instances, scores) if m.any()]     # eval_submission drops empty persons
    return ground_truth, prediction, [p for p in persons if (p > 0).any()], submitted


def test_agrees_with_the_official_logic_on_random_predictions():
    """The acceptance criterion: every AP^p, PCP and AP^r equal to a plain-loop reference of the tools to 1e-6."""
    rng = np.random.default_rng(7)
    classes, size = 5, 16
    evaluator = metrics.PartParsingEvaluator(classes)
    images, confusion = [], np.zeros((classes, classes))
    for _ in range(12):
        ground_truth, prediction, persons, submitted = random_image(rng, size, classes)
        evaluator.add(ground_truth, prediction)
        images.append((persons, submitted))
        for t, p in zip(ground_truth.part_map.ravel(), prediction.part_map.ravel()):
            confusion[t, p] += 1
    result = evaluator.results()
    assert result["instances"] == sum(len(p) for p, _ in images) > 20
    matched = 0
    for t in metrics.THRESHOLDS:
        ap, pcp = reference_mhp(images, classes, t)
        assert result["APp"][str(t)] == pytest.approx(ap, abs=1e-6), t
        assert result["PCP"][str(t)] == pytest.approx(pcp, abs=1e-6), t
        assert result["APr"][str(t)] == pytest.approx(reference_cihp(images, classes, t), abs=1e-6), t
        matched += ap > 0
    assert matched >= 5                                    # the random predictions match at several thresholds
    iou = np.diag(confusion) / (confusion.sum(0) + confusion.sum(1) - np.diag(confusion))
    assert result["mIoU"] == pytest.approx(np.nanmean(iou), abs=1e-12)
