"""Soft keypoint NMS (Eq. 4) and hard OKS-NMS (threshold 0.5)."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf.skeleton import COCO17
from personlab_tf.tasks.personlab.nms import hard_oks_nms, object_keypoint_similarity, soft_nms


def person(x, y, spread=40.0):
    """[K, 2] keypoints on a line: keypoint k at (x + spread k / K, y + 3 spread k / K)."""
    k = np.arange(COCO17.num_keypoints, dtype=np.float32)
    return np.stack([x + spread * k / COCO17.num_keypoints, y + 3 * spread * k / COCO17.num_keypoints], -1)


def test_soft_nms_drops_exactly_the_claimed_keypoints_share():
    a, b, c = person(100, 100), person(300, 100), person(100, 400)
    b[:5] = a[:5] + (6, 8)      # 10 px from A's: claimed (boundary included)
    b[5:7] = a[5:7] + (11, 0)   # 11 px: not claimed
    keypoint_scores = np.stack([np.full(COCO17.num_keypoints, 0.9), np.linspace(0.2, 0.8, COCO17.num_keypoints),
                                np.full(COCO17.num_keypoints, 0.3)]).astype(np.float32)
    order = [2, 0, 1]           # input order is irrelevant: persons are visited by descending score
    scores = soft_nms(np.stack([a, b, c])[order], keypoint_scores[order]).numpy()
    expected_b = keypoint_scores[1, 5:].sum() / COCO17.num_keypoints
    np.testing.assert_allclose(scores, [0.3, 0.9, expected_b], rtol=1e-6)


def test_soft_nms_counts_claims_by_every_higher_scoring_person():
    a = person(100, 100)
    keypoints = np.stack([a, a + (3, 0), a + (6, 0)]).astype(np.float32)  # the third: within 10 px of both
    keypoint_scores = np.array([[0.9] * COCO17.num_keypoints, [0.8] * COCO17.num_keypoints, [0.7] * COCO17.num_keypoints], np.float32)
    np.testing.assert_allclose(soft_nms(keypoints, keypoint_scores).numpy(), [0.9, 0.0, 0.0], atol=1e-7)


def test_oks_is_the_coco_formula():
    a, b = person(100, 100), person(104, 97)
    area = np.float32(1500.0)
    d2 = np.sum((a - b) ** 2, axis=-1)
    expected = np.mean(np.exp(-d2 / (2 * area * COCO17.kappas ** 2)))  # pycocotools: vars = (2 sigma)^2
    assert object_keypoint_similarity(a, b, tf.constant(area), COCO17.kappas).numpy() == pytest.approx(expected, rel=1e-5)


def test_hard_nms_suppresses_a_duplicate_above_oks_half():
    a = person(100, 100)
    duplicate = a + (2, 1)          # OKS with A close to 1
    moved = a + (40, 0)             # OKS with A close to 0
    chained = duplicate + (40, 0)   # a duplicate of `moved` only
    keypoints = np.stack([duplicate, a, moved, chained]).astype(np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.6], np.float32)
    assert hard_oks_nms(keypoints, scores, COCO17.kappas).numpy().tolist() == [False, True, True, False]
    # Threshold is "above": with threshold 1 nothing is suppressed.
    assert hard_oks_nms(keypoints, scores, COCO17.kappas, threshold=1.0).numpy().all()


def test_hard_nms_keeps_a_person_suppressed_only_by_a_suppressed_one():
    base = person(100, 100)
    # B overlaps A (OKS > 0.5); C overlaps B but not A. Sequential NMS: A kept, B dropped, C kept.
    keypoints = np.stack([base, base + (5, 0), base + (10, 0)]).astype(np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    areas = np.full(3, 40.0 * 120.0, np.float32)
    oks = object_keypoint_similarity(keypoints[:, None], keypoints[None], tf.constant(areas)[None], COCO17.kappas).numpy()
    assert oks[1, 0] > 0.5 and oks[2, 1] > 0.5 and oks[2, 0] <= 0.5
    assert hard_oks_nms(keypoints, scores, COCO17.kappas).numpy().tolist() == [True, False, True]
