"""Keypoint scores: Expected-OKS (Eq. 3) against a direct numpy evaluation, and the plain h_k(y) variant."""

import math

import numpy as np
import pytest

from personlab_tf.skeleton import COCO17
from personlab_tf.tasks.personlab.scoring import (
    cell_mean_gaussian,
    expected_oks_scores,
    hough_scores,
    instance_scores,
    person_areas,
)

STRIDE = 8
RADIUS = 32.0


def numpy_expected_oks(heatmaps, hough, keypoints, stride, radius, kappas):
    """Eq. 3 by loops: p_k(y) sum over the disk cells of h / sum(h) * exp(-d^2 / (2 lambda^2 kappa^2))."""
    height, width, _ = hough.shape
    scores = np.zeros(keypoints.shape[:2])
    for j, person in enumerate(keypoints):
        extent = person.max(axis=0) - person.min(axis=0)
        area = max(extent[0] * extent[1], 1.0)
        for k, (x, y) in enumerate(person):
            mass = weighted = 0.0
            for i in range(height):
                for c in range(width):
                    d2 = (stride * c - x) ** 2 + (stride * i - y) ** 2
                    if d2 <= radius ** 2:
                        mass += hough[i, c, k]
                        weighted += hough[i, c, k] * math.exp(-d2 / (2 * area * kappas[k] ** 2))
            presence = heatmaps[round(y / stride), round(x / stride), k]  # keypoints on cells in this test
            scores[j, k] = presence * weighted / mass if mass > 0 else 0.0
    return scores


def test_kappas_are_twice_the_coco_sigmas():
    np.testing.assert_allclose(COCO17.kappas[:3], [0.052, 0.05, 0.05], rtol=1e-6)  # COCO's nose and eyes
    np.testing.assert_allclose(COCO17.kappas, 2 * np.array(COCO17.sigmas), rtol=1e-6)


def test_expected_oks_equals_a_numpy_evaluation_of_eq3():
    rng = np.random.default_rng(0)
    hough = (rng.random([12, 14, COCO17.num_keypoints]) ** 4).astype(np.float32)
    heatmaps = rng.random([12, 14, COCO17.num_keypoints]).astype(np.float32)
    # Person 0 in the middle, person 1 against the top-left border (its disks are cut by the map edge).
    cells = np.stack([rng.integers(3, 9, [COCO17.num_keypoints, 2]), rng.integers(0, 3, [COCO17.num_keypoints, 2])])
    keypoints = (cells * STRIDE).astype(np.float32)
    expected = numpy_expected_oks(heatmaps, hough, keypoints, STRIDE, RADIUS, COCO17.kappas)
    scores = expected_oks_scores(heatmaps, hough, keypoints, STRIDE, COCO17.kappas, RADIUS).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    assert 0 < scores.min() and scores.max() <= 1


def test_expected_oks_of_a_perfect_peak_is_the_presence_probability():
    hough = np.zeros([10, 10, COCO17.num_keypoints], np.float32)
    heatmaps = np.full([10, 10, COCO17.num_keypoints], 0.8, np.float32)
    keypoints = np.stack([np.arange(COCO17.num_keypoints) % 5 * 16, np.arange(COCO17.num_keypoints) // 5 * 16], -1)
    hough[keypoints[:, 1] // 8, keypoints[:, 0] // 8, np.arange(COCO17.num_keypoints)] = 0.97
    scores = expected_oks_scores(heatmaps, hough, keypoints[np.newaxis].astype(np.float32), STRIDE,
                                 COCO17.kappas).numpy()
    np.testing.assert_allclose(scores, 0.8, rtol=1e-6)
    empty = expected_oks_scores(heatmaps, np.zeros_like(hough), keypoints[np.newaxis].astype(np.float32), STRIDE,
                                COCO17.kappas)
    np.testing.assert_array_equal(empty.numpy(), 0.0)  # no Hough mass in the disk: score 0, not NaN


def test_cell_mean_gaussian_is_the_mean_over_the_cell():
    """erf form against a 10001-point midpoint rule over [offset - 4, offset + 4] (stride 8)."""
    for offset, sigma2 in ((0.0, 4.0), (3.0, 4.0), (-9.5, 30.0), (20.0, 900.0)):
        u = offset - 4.0 + (np.arange(10001) + 0.5) * 8.0 / 10001
        expected = np.exp(-u * u / (2 * sigma2)).mean()
        np.testing.assert_allclose(float(cell_mean_gaussian(offset, sigma2, STRIDE)), expected, rtol=1e-4)


def test_integrated_cells_make_a_narrow_gaussian_independent_of_where_the_keypoint_falls_in_its_cell():
    """One cell of Hough mass (centre (16, 16)), a 1 px person (lambda^2 = 1, lambda kappa = 0.16 px for the
    left shoulder, far below the 8 px cell). Read at the cell centre, Eq. 3's Gaussian falls from 1 to below
    1e-3 as the keypoint moves 3.9 px off the centre along both axes; averaged over the cell it is the
    product of the two axes' cell means and keeps more than half of its value."""
    hough = np.zeros([6, 6, COCO17.num_keypoints], np.float32)
    hough[2, 2] = 1.0
    heatmaps = np.ones_like(hough)
    shifts = (0.0, 2.0, 3.9)
    scores = {}
    for shift in shifts:
        person = np.full([1, COCO17.num_keypoints, 2], 16.0 + shift, np.float32)
        person[0, 0] -= 1.0                                      # the box of the keypoints: 1 x 1 px
        for integrate in (False, True):
            scores[shift, integrate] = expected_oks_scores(heatmaps, hough, person, STRIDE, COCO17.kappas, RADIUS,
                                                           integrate=integrate).numpy()[0, 5]
    assert scores[0.0, False] == pytest.approx(1.0) and scores[3.9, False] < 1e-3
    sigma2 = COCO17.kappas[5] ** 2                               # lambda^2 kappa^2 with lambda^2 = 1
    np.testing.assert_allclose([scores[shift, True] for shift in shifts],
                               [float(cell_mean_gaussian(-shift, sigma2, STRIDE)) ** 2 for shift in shifts], rtol=1e-4)
    assert scores[3.9, True] > 0.5 * scores[0.0, True]


def test_plain_scores_sample_the_hough_map_bilinearly():
    hough = np.zeros([4, 4, COCO17.num_keypoints], np.float32)
    hough[1, 1, :], hough[1, 2, :] = 0.6, 0.2
    keypoints = np.tile([[[8.0, 8.0]], [[12.0, 8.0]]], [1, COCO17.num_keypoints, 1]).astype(np.float32)
    scores = hough_scores(hough, keypoints, STRIDE).numpy()
    np.testing.assert_allclose(scores[0], 0.6)
    np.testing.assert_allclose(scores[1], 0.4)      # halfway between 0.6 and 0.2
    np.testing.assert_allclose(instance_scores(scores).numpy(), [0.6, 0.4])


def test_person_areas():
    keypoints = np.zeros([2, COCO17.num_keypoints, 2], np.float32)
    keypoints[0, 3], keypoints[0, 9] = (10, 40), (30, -10)  # with the others at (0, 0): box 30 x 50
    np.testing.assert_allclose(person_areas(keypoints).numpy(), [1500.0, 1.0])  # all at one point: floor 1
