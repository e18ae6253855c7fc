"""Hough voting (Eq. 1) on hand-made heatmaps and short-range offsets."""

import math

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf.skeleton import COCO17
from personlab_tf.ops.hough import hough_voting

RADIUS = 32.0


def disk_maps(cells, stride, keypoint, channel=0):
    """A perfect disk of radius R on one channel: p = 1 within R of `keypoint`, offsets pointing at it."""
    rows, cols = np.mgrid[:cells, :cells]
    positions = np.stack([cols, rows], axis=-1).astype(np.float32) * stride
    to_keypoint = np.asarray(keypoint, np.float32) - positions
    inside = np.sum(to_keypoint ** 2, axis=-1) <= RADIUS ** 2
    heatmaps = np.zeros([cells, cells, COCO17.num_keypoints], np.float32)
    short = np.zeros([cells, cells, COCO17.num_keypoints, 2], np.float32)
    heatmaps[..., channel] = inside
    short[..., channel, :] = to_keypoint * inside[..., np.newaxis]
    return heatmaps, short, inside.sum()


@pytest.mark.parametrize("stride, cells", [(8, 20), (4, 40)])
def test_perfect_disk_votes_one_at_the_keypoint_and_zero_elsewhere(stride, cells):
    keypoint = (10 * stride, 9 * stride)  # cell (i, j) = (9, 10)
    heatmaps, short, count = disk_maps(cells, stride, keypoint, channel=3)
    hough = hough_voting(heatmaps, short, stride, RADIUS).numpy()
    expected = np.zeros_like(hough)
    expected[9, 10, 3] = count / (math.pi * (RADIUS / stride) ** 2)  # 49 / 50.3 at stride 8, 197 / 201.1 at 4
    np.testing.assert_allclose(hough, expected, atol=1e-6)
    assert hough[9, 10, 3] == pytest.approx(1.0, abs=0.03)


def test_fractional_vote_is_split_bilinearly_between_four_cells():
    stride = 8
    heatmaps = np.zeros([10, 10, COCO17.num_keypoints], np.float32)
    short = np.zeros([10, 10, COCO17.num_keypoints, 2], np.float32)
    heatmaps[5, 5, 0] = 1.0                      # the cell at (x, y) = (40, 40) votes at (58, 52):
    short[5, 5, 0] = (2.25 * stride, 1.5 * stride)  # column 7.25, row 6.5
    hough = hough_voting(heatmaps, short, stride, RADIUS).numpy()[..., 0] * math.pi * (RADIUS / stride) ** 2
    expected = np.zeros([10, 10])
    expected[6, 7], expected[6, 8], expected[7, 7], expected[7, 8] = 0.375, 0.125, 0.375, 0.125
    np.testing.assert_allclose(hough, expected, atol=1e-6)


def test_votes_add_up_and_parts_outside_the_map_are_dropped():
    stride = 8
    heatmaps = np.zeros([6, 6, COCO17.num_keypoints], np.float32)
    short = np.zeros([6, 6, COCO17.num_keypoints, 2], np.float32)
    heatmaps[2, 2, 1], heatmaps[3, 3, 1] = 0.5, 0.25        # both vote at cell (2, 2)
    short[3, 3, 1] = (-stride, -stride)
    heatmaps[1, 0, 2] = 1.0                                   # votes at column -0.5: half is outside
    short[1, 0, 2] = (-0.5 * stride, 0.0)
    heatmaps[4, 5, 3] = 1.0                                   # votes at column 5.25 of 6: a quarter is outside
    short[4, 5, 3] = (0.25 * stride, 0.0)
    heatmaps[0, 0, 4], heatmaps[5, 5, 4] = 1.0, 1.0           # vote far above-left and below-right: all outside
    short[0, 0, 4], short[5, 5, 4] = (-100.0 * stride, -3.5 * stride), (40.0 * stride, 1.5 * stride)
    hough = hough_voting(heatmaps, short, stride, RADIUS).numpy() * math.pi * (RADIUS / stride) ** 2
    assert hough[2, 2, 1] == pytest.approx(0.75)
    assert hough[1, 0, 2] == pytest.approx(0.5)
    assert hough[4, 5, 3] == pytest.approx(0.75)
    assert np.all(hough[..., 4] == 0.0)
    assert hough.sum() == pytest.approx(2.0)


def test_unknown_map_size_in_a_tf_function():
    vote = tf.function(lambda p, s: hough_voting(p, s, 8, RADIUS), input_signature=[
        tf.TensorSpec([None, None, COCO17.num_keypoints]), tf.TensorSpec([None, None, COCO17.num_keypoints, 2])])
    heatmaps, short, count = disk_maps(12, 8, (40, 48))
    hough = vote(heatmaps, short).numpy()
    assert hough[6, 5, 0] == pytest.approx(count / (math.pi * 16))
    assert vote(tf.zeros([0, 0, COCO17.num_keypoints]), tf.zeros([0, 0, COCO17.num_keypoints, 2])).shape == (0, 0, COCO17.num_keypoints)
