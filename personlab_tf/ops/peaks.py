"""Peaks of the Hough maps, all keypoint types in one queue: PersonLab's seeds (§3.1) and the part parser's
keypoint candidates (second paper §3.3).

Positions in input pixels, (x, y) order; a map of stride s has cell (i, j) at (x, y) = (s j, s i).
"""

from typing import Tuple

import tensorflow as tf

from personlab_tf.ops.sampling import static_keypoints


def find_peaks(hough: tf.Tensor, stride: float, threshold: float = 0.01, window: int = 3,
               max_seeds: int = 512) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Local maxima of h_k with h_k >= threshold, by descending score (PersonLab's seed queue).

    A cell is a local maximum of channel k when no cell of the `window` x `window` neighbourhood has a
    higher h_k (plateaus give several maxima). Seeds of all K types are sorted together by descending score
    (ties: lower flat index (i, j, k) first). Only the best `max_seeds` are kept: the paper has no cap; it
    bounds the [S, S] rejection test and the parallel decoding, and at 512 it drops only seeds weaker than
    30 people x 17 keypoints (COCO's skeleton).

    Args:
      hough: [h, w, K] float32 Hough scores (hough.hough_voting).
      stride: s, input pixels per cell.
      threshold: smallest seed score (0.01 in the paper).
      window: side of the local-maximum window in cells (odd).
      max_seeds: the most seeds returned (python int).

    Returns:
      positions: [S, 2] float32 seed positions x_i, (x, y) in input pixels (cell centres).
      types: [S] int32 keypoint type k of each seed.
      scores: [S] float32 h_k(x_i), descending; S <= max_seeds.
    """
    width = tf.shape(hough)[1]
    num_keypoints = static_keypoints(hough)
    pooled = tf.nn.max_pool2d(hough[tf.newaxis], window, 1, "SAME")[0]
    is_seed = (hough >= pooled) & (hough >= threshold)
    # The local maxima in flat-index order, then the best of them (top_k keeps equal scores in index order).
    index = tf.cast(tf.where(tf.reshape(is_seed, [-1]))[:, 0], tf.int32)
    scores, order = tf.math.top_k(tf.gather(tf.reshape(hough, [-1]), index), tf.minimum(max_seeds, tf.size(index)))
    index = tf.gather(index, order)
    cell = index // num_keypoints
    positions = tf.cast(tf.stack([cell % width, cell // width], axis=-1), tf.float32) * stride
    return positions, index % num_keypoints, scores


def refine_peaks(hough: tf.Tensor, positions: tf.Tensor, types: tf.Tensor, stride: float) -> tf.Tensor:
    """Sub-cell positions of peaks: each peak moves to the centroid of its 3 x 3 neighbourhood of h_k.

    A peak is found on a cell centre; its vote mass spreads over the neighbouring cells (the bilinear kernel
    of Eq. 1 splits every vote between 4 cells), so the h_k-weighted mean of the neighbourhood's positions
    locates the vote peak between cell centres. Cells outside the map count 0; the shift stays within half
    a cell of the peak's cell.

    Args:
      hough: [h, w, K] Hough scores; positions: [S, 2] (x, y) input pixels of peak cells; types: [S] int32.
      stride: s of the map.

    Returns:
      [S, 2] float32 refined positions.
    """
    height, width = tf.shape(hough)[0], tf.shape(hough)[1]
    cells = tf.cast(tf.round(positions / stride), tf.int32)                       # (j, i)
    total = tf.zeros_like(positions[:, 0])
    moment = tf.zeros_like(positions)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            row, column = cells[:, 1] + di, cells[:, 0] + dj
            inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
            index = tf.stack([tf.clip_by_value(row, 0, height - 1), tf.clip_by_value(column, 0, width - 1), types], -1)
            value = tf.where(inside, tf.gather_nd(hough, index), 0.0)
            total += value
            moment += value[:, tf.newaxis] * tf.constant([dj, di], tf.float32)
    shift = tf.clip_by_value(tf.math.divide_no_nan(moment, total[:, tf.newaxis]), -0.5, 0.5)
    return positions + shift * stride
