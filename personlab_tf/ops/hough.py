"""Hough voting of the heatmaps along the short-range offsets (PersonLab §3.1, Eq. 1).

Positions in input pixels, (x, y) order, pixel centres at integer coordinates; a map of stride s has cell
(i, j) at (x, y) = (s j, s i).
"""

import math

import tensorflow as tf

from personlab_tf.constants import DISK_RADIUS
from personlab_tf.ops.sampling import static_keypoints


def hough_voting(heatmaps: tf.Tensor, short_offsets: tf.Tensor, stride: float,
                 radius: float = DISK_RADIUS) -> tf.Tensor:
    """Hough score maps h_k (Eq. 1): h_k(x) = 1 / (pi R^2) sum_i p_k(x_i) B(x_i + S_k(x_i) - x).

    Every cell x_i votes its probability p_k(x_i) at x_i + S_k(x_i), split between the 4 cells around that
    point by the bilinear kernel B (weights (1 - a)(1 - b), a(1 - b), (1 - a)b, ab for the fractional cell
    coordinates (a, b)); parts of a vote that fall outside the map are dropped.

    Normalisation: the paper's pi R^2 is the number of pixels in a disk of radius R at stride 1. At stride s
    a disk holds about pi (R / s)^2 cells, so we divide by pi (R / s)^2: a perfect disk of probability 1 whose
    offsets all point at one cell gives h ~ 1 there at any stride (exactly the number of cells in the disk
    over pi (R / s)^2, e.g. 49 / 50.3 = 0.975 for R / s = 4).

    Args:
      heatmaps: [h, w, K] float32 keypoint probabilities p_k.
      short_offsets: [h, w, K, 2] float32 short-range offsets S_k, (x, y) in input pixels.
      stride: s, input pixels per cell (python number).
      radius: disk radius R in input pixels.

    Returns:
      [h, w, K] float32 Hough scores h_k on the same grid.
    """
    height, width = tf.shape(heatmaps)[0], tf.shape(heatmaps)[1]
    num_keypoints = static_keypoints(heatmaps)
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    # Vote targets in cell units (u = column, v = row). The votes go to a grid with a border of 2 cells on
    # every side, where targets outside the map are clamped, so that all 4 corners of an outside vote land
    # in the border (cropped away) without a per-corner test.
    u = tf.clip_by_value(cols[..., tf.newaxis] + short_offsets[..., 0] / stride, -2.0, tf.cast(width, tf.float32))
    v = tf.clip_by_value(rows[..., tf.newaxis] + short_offsets[..., 1] / stride, -2.0, tf.cast(height, tf.float32))
    u_lower, v_lower = tf.floor(u), tf.floor(v)
    a, b = u - u_lower, v - v_lower
    padded_width = width + 4
    padded_size = (height + 4) * padded_width * num_keypoints
    lower = tf.reshape(((tf.cast(v_lower, tf.int32) + 2) * padded_width + tf.cast(u_lower, tf.int32) + 2)
                       * num_keypoints + tf.range(num_keypoints), [-1])
    pa, pb = heatmaps * a, heatmaps * b
    pab = pa * b
    corners = (  # (weight, column step, row step) of the 4 cells of the bilinear kernel
        (heatmaps - pa - pb + pab, 0, 0), (pa - pab, 1, 0), (pb - pab, 0, 1), (pab, 1, 1))
    votes = tf.concat([tf.reshape(weight, [-1]) for weight, _, _ in corners], axis=0)
    cells = tf.concat([lower + (dr * padded_width + dc) * num_keypoints for _, dc, dr in corners], axis=0)
    flat = tf.math.bincount(cells, weights=votes, minlength=padded_size, maxlength=padded_size)
    padded = tf.reshape(flat, [height + 4, padded_width, num_keypoints])
    cells_per_disk = math.pi * (radius / stride) ** 2
    return padded[2:height + 2, 2:width + 2] / cells_per_disk
