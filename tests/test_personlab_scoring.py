"""Keypoint scores: Expected-OKS (Eq. 3) against values worked by hand, and the plain h_k(y) variant."""

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


def test_kappas_are_twice_the_coco_sigmas():
    np.testing.assert_allclose(COCO17.kappas[:3], [0.052, 0.05, 0.05], rtol=1e-6)  # COCO's nose and eyes
    np.testing.assert_allclose(COCO17.kappas, 2 * np.array(COCO17.sigmas), rtol=1e-6)


def test_expected_oks_of_a_hand_computed_case():
    """Eq. 3 worked by hand. Stride 8, R = 8 px: the disk D_R(y) of a keypoint on a cell centre is that cell
    and its 4 neighbours (8 px away, d^2 = 64); the diagonal cells (d^2 = 128) and those 2 cells away are
    outside. Two keypoint types with kappa = (0.25, 0.125), on an 8 x 8 grid (pixels 0..56).

    Hough maps h_k (cell (row, column) = pixel (y, x) / 8):
      type 0: (2, 2) 0.4, (2, 3) 0.2, (1, 2) 0.2; outside every disk (2 px too far or diagonal): (3, 3) 0.5,
              (2, 4) 0.5.
      type 1: (6, 6) 0.2, (6, 5) 0.2, (0, 1) 0.4.
    Heatmaps p_k: 0.1 everywhere but type 0: (2, 2) 0.9; type 1: (6, 6) 0.5, (0, 0) 0.8.

    Person A: keypoints (16, 16) and (48, 48): lambda^2 = 32 x 32 = 1024.
      k = 0: 2 lambda^2 kappa^2 = 2 x 1024 x 0.0625 = 128. In the disk of (16, 16) the Hough mass is
             0.4 + 0.2 + 0.2 = 0.8, normalised 0.5 (d^2 = 0), 0.25 and 0.25 (d^2 = 64):
             0.5 + 0.5 exp(-64 / 128) = 0.5 + 0.5 x 0.6065307 = 0.8032653; times p = 0.9: 0.7229388.
      k = 1: 2 x 1024 x 0.015625 = 32. Mass 0.2 + 0.2 at (48, 48) (d^2 = 0) and (40, 48) (d^2 = 64):
             0.5 + 0.5 exp(-2) = 0.5 + 0.5 x 0.1353353 = 0.5676676; times p = 0.5: 0.2838338.
    Person B: keypoints (16, 16) and (0, 0): lambda^2 = 16 x 16 = 256.
      k = 0: 2 x 256 x 0.0625 = 32: the same normalised mass, 0.5 + 0.5 exp(-64 / 32) = 0.5676676; times 0.9:
             0.5109009.
      k = 1: 2 x 256 x 0.015625 = 8. The disk of (0, 0) is cut by the map's edge: (0, 0), (8, 0), (0, 8);
             all its mass (0.4) at (8, 0), d^2 = 64: exp(-64 / 8) = exp(-8) = 0.00033546; times 0.8: 0.00026837.
    Instance scores (the mean over k): A (0.7229388 + 0.2838338) / 2 = 0.5033863, B (0.5109009 + 0.00026837) / 2
    = 0.2555846.
    """
    hough = np.zeros([8, 8, 2], np.float32)
    hough[2, 2, 0], hough[2, 3, 0], hough[1, 2, 0], hough[3, 3, 0], hough[2, 4, 0] = 0.4, 0.2, 0.2, 0.5, 0.5
    hough[6, 6, 1], hough[6, 5, 1], hough[0, 1, 1] = 0.2, 0.2, 0.4
    heatmaps = np.full([8, 8, 2], 0.1, np.float32)
    heatmaps[2, 2, 0], heatmaps[6, 6, 1], heatmaps[0, 0, 1] = 0.9, 0.5, 0.8
    keypoints = np.array([[[16, 16], [48, 48]], [[16, 16], [0, 0]]], np.float32)
    scores = expected_oks_scores(heatmaps, hough, keypoints, STRIDE, np.array([0.25, 0.125]), radius=8.0).numpy()
    np.testing.assert_allclose(scores, [[0.7229388, 0.2838338], [0.5109009, 0.00026837]], rtol=1e-5)
    np.testing.assert_allclose(instance_scores(scores).numpy(), [0.5033863, 0.2555846], rtol=1e-5)


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
