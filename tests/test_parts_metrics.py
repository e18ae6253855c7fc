"""Part-parsing metrics on hand-made images whose answers can be worked out by hand (tasks/parts/metrics.py)."""

import numpy as np
import pytest

from personlab_tf.tasks.parts import metrics

H = W = 10
CLASSES = 4   # background + parts 1, 2, 3


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
    return metrics.GroundTruth(part_map=part_map, masks=np.array(masks), is_crowd=np.array(flags),
                               has_parts=np.array(has_parts))


def predicted(instances, scores):
    parts = np.array([p for p in instances]) if instances else np.zeros((0, H, W), np.uint8)
    part_map = parts.max(axis=0) if len(instances) else np.zeros((H, W), np.uint8)
    return metrics.Prediction(part_map=part_map, instance_part_maps=parts, scores=np.array(scores, float))


def evaluate(pairs):
    evaluator = metrics.PartParsingEvaluator(CLASSES)
    for ground_truth, prediction in pairs:
        evaluator.add(ground_truth, prediction)
    return evaluator.results()


def test_voc_average_precision_hand_values():
    # Ranked: TP, FP, TP with 2 positives: precision 1 at recall 0.5, 2/3 at recall 1 -> 0.5 + 0.5 * 2/3.
    assert metrics.voc_average_precision([True, False, True], [0.9, 0.8, 0.7], 2) == pytest.approx(0.5 + 1 / 3)
    # The monotone envelope: FP first, then TP -> precision 1/2 at recall 1.
    assert metrics.voc_average_precision([False, True], [0.9, 0.8], 1) == pytest.approx(0.5)
    assert metrics.voc_average_precision([True], [0.5], 2) == pytest.approx(0.5)


def test_the_truth_scores_one():
    a = person((1, 5), (1, 7), [1, 2, 3])
    b = person((6, 9), (2, 8), [3, 1])
    ground_truth = truth([a, b])
    result = evaluate([(ground_truth, predicted([a[1], b[1]], [0.9, 0.8]))])
    for key in ("mIoU", "APp_50", "APp_vol", "PCP50", "APr_50", "APr_60", "APr_70", "APr_vol"):
        assert result[key] == pytest.approx(1.0), key
    assert result["instances"] == 2


def test_half_the_parts_right():
    # The person has parts 1 and 2 (6 pixels each); the prediction gets part 1 exactly and calls part 2 part 3.
    mask, parts = person((2, 5), (2, 6), [1, 2])
    guess = parts.copy()
    guess[guess == 2] = 3
    result = evaluate([(truth([(mask, parts)]), predicted([guess], [0.7]))])
    # Person-level part IoU = mean(IoU_1 = 1, IoU_2 = 0, IoU_3 = 0) = 1/3: a match at t <= 0.3 only.
    assert result["APp_50"] == 0.0
    assert result["APp_vol"] == pytest.approx(3 / 9)
    assert result["PCP50"] == 0.0                       # unmatched at t = 0.5
    assert result["APr_50"] == pytest.approx(1 / 2)     # class 1 region found (AP 1), class 2 missed (AP 0)
    # mIoU over the 100 pixels: background 88/88, part 1 6/6, part 2 0/6, part 3 0/6 -> (1 + 1) / 4.
    assert result["mIoU"] == pytest.approx(0.5)


def test_pcp_counts_the_parts_of_matched_persons():
    # Three parts of 4 pixels; the prediction misses 3 pixels of part 3: IoUs 1, 1, 1/4 -> person IoU 0.75.
    mask, parts = person((1, 3), (0, 6), [1, 2, 3])
    guess = parts.copy()
    guess[tuple(np.argwhere(parts == 3)[:3].T)] = 0
    result = evaluate([(truth([(mask, parts)]), predicted([guess], [0.5]))])
    assert result["APp_50"] == 1.0 and result["PCP50"] == pytest.approx(2 / 3)
    assert result["APp_vol"] == pytest.approx(7 / 9)    # matched for t = 0.1 ... 0.7


def test_ranking_and_duplicates():
    # Two images, one person each; person A is predicted twice: the lower-scored copy is a false positive.
    a = person((1, 5), (1, 7), [1, 2, 3])
    b = person((1, 5), (1, 7), [2, 3, 1])
    result = evaluate([(truth([a]), predicted([a[1], a[1]], [0.6, 0.9])), (truth([b]), predicted([], []))])
    # Ranked: TP (0.9), FP (0.6); 2 positives -> AP = 1/2 * 1.
    assert result["APp_50"] == pytest.approx(0.5)
    assert result["PCP50"] == pytest.approx(0.5)


def test_predictions_in_ignored_regions_do_not_count():
    a = person((1, 4), (1, 7), [1, 2, 3])
    crowd = np.zeros((H, W), bool)
    crowd[6:10, 0:10] = True
    on_crowd = np.zeros((H, W), np.uint8)
    on_crowd[6:9, 1:7] = 2
    ground_truth = truth([a], crowd=[crowd])
    result = evaluate([(ground_truth, predicted([a[1], on_crowd], [0.5, 0.9]))])
    assert result["APp_50"] == 1.0 and result["APr_50"] == 1.0
    # The crowd's pixels are out of the mIoU too: the other pixels are parsed exactly.
    assert result["mIoU"] == pytest.approx(1.0)
