"""Seeds: local maxima of the Hough maps above the threshold, one queue sorted by score."""

import numpy as np
import tensorflow as tf

from personlab_tf.skeleton import COCO17
from personlab_tf.ops.peaks import find_peaks, refine_peaks

STRIDE = 8


def hough_with(peaks, size=6):
    """[size, size, K] map with the given {(i, j, k): score}."""
    hough = np.zeros([size, size, COCO17.num_keypoints], np.float32)
    for (i, j, k), score in peaks.items():
        hough[i, j, k] = score
    return tf.constant(hough)


def as_lists(seeds):
    positions, types, scores = (t.numpy() for t in seeds)
    return positions.tolist(), types.tolist(), np.round(scores.astype(np.float64), 6).tolist()


def test_local_maxima_above_threshold_sorted_by_score_over_all_types():
    hough = hough_with({
        (1, 1, 0): 0.5,
        (1, 2, 0): 0.3,    # neighbour of a higher cell: not a maximum
        (4, 4, 0): 0.02,
        (3, 3, 5): 0.009,  # a maximum below the 0.01 threshold
        (0, 5, 2): 0.9,    # on the border
        (1, 2, 7): 0.4,    # same cell as a non-maximum of type 0, but a maximum of type 7
    })
    positions, types, scores = as_lists(find_peaks(hough, STRIDE))
    assert types == [2, 0, 7, 0]
    assert scores == [0.9, 0.5, 0.4, 0.02]
    assert positions == [[40, 0], [8, 8], [16, 8], [32, 32]]  # (x, y) = (8 j, 8 i)


def test_equal_scores_come_in_cell_then_type_order():
    hough = hough_with({(3, 1, 4): 0.5, (1, 4, 6): 0.5, (1, 4, 2): 0.5, (0, 0, 9): 0.7})
    positions, types, _ = as_lists(find_peaks(hough, STRIDE))
    assert types == [9, 2, 6, 4]
    assert positions == [[0, 0], [32, 8], [32, 8], [8, 24]]


def test_window_and_cap():
    hough = hough_with({(1, 1, 0): 0.5, (1, 3, 0): 0.3, (5, 5, 0): 0.2, (5, 0, 1): 0.1})
    _, _, scores = as_lists(find_peaks(hough, STRIDE))
    assert scores == [0.5, 0.3, 0.2, 0.1]
    _, _, scores = as_lists(find_peaks(hough, STRIDE, window=5))  # (1, 3) is within 2 cells of (1, 1)
    assert scores == [0.5, 0.2, 0.1]
    _, _, scores = as_lists(find_peaks(hough, STRIDE, max_seeds=2))
    assert scores == [0.5, 0.3]


def test_no_seed():
    positions, types, scores = find_peaks(hough_with({(2, 2, 0): 0.005}), STRIDE)
    assert positions.shape == (0, 2) and types.shape == (0,) and scores.shape == (0,)


def test_refined_peaks_move_to_the_centroid_of_their_neighbourhood():
    """Peak (2, 2) of type 0 with 0.5 to its right and 0.25 below it: centroid (x, y) = (16 + 8 * 0.5 / 1.75,
    16 + 8 * 0.25 / 1.75); a peak on the map's corner counts the cells outside as 0; a lone peak stays."""
    hough = np.zeros([6, 6, COCO17.num_keypoints], np.float32)
    hough[2, 2, 0], hough[2, 3, 0], hough[3, 2, 0] = 1.0, 0.5, 0.25
    hough[0, 0, 1], hough[0, 1, 1] = 1.0, 1.0
    hough[4, 4, 2] = 0.3
    positions = tf.constant([[16.0, 16.0], [0.0, 0.0], [32.0, 32.0]])
    refined = refine_peaks(tf.constant(hough), positions, tf.constant([0, 1, 2]), STRIDE).numpy()
    np.testing.assert_allclose(refined, [[16 + 8 * 0.5 / 1.75, 16 + 8 * 0.25 / 1.75], [4.0, 0.0], [32.0, 32.0]],
                               rtol=1e-6)
