"""Keypoint- and instance-level scores of decoded persons (PersonLab §3.1, Eq. 3).

Positions in input pixels, (x, y) order; a map of stride s has cell (i, j) at (x, y) = (s j, s i).

kappa_k: Eq. 3 is the expected COCO OKS term exp(-d^2 / (2 s^2 kappa_k^2)), whose kappa_k is twice the
COCO "sigma" (pycocotools: vars = (2 sigma)^2; COCO's page: kappa_i = 2 sigma_i). `Skeleton.kappas` gives
them from the skeleton's sigmas (coco17: .026 ... .089), the default of decoding (decode.PersonLabDecoding).
"""

import math
from typing import Tuple

import numpy as np
import tensorflow as tf

from personlab_tf.constants import DISK_RADIUS, MIN_AREA
from personlab_tf.ops.sampling import sample_each, static_keypoints


def person_areas(keypoints: tf.Tensor) -> tf.Tensor:
    """lambda_j^2: area of the box tightly containing all keypoints of each person, at least MIN_AREA.

    Args:
      keypoints: [P, K, 2] (x, y) input pixels.

    Returns:
      [P] float32 areas in input pixels^2 (lambda_j = sqrt of it).
    """
    size = tf.reduce_max(keypoints, axis=1) - tf.reduce_min(keypoints, axis=1)
    return tf.maximum(size[:, 0] * size[:, 1], MIN_AREA)


def disk_window(radius_cells: float) -> Tuple[np.ndarray, np.ndarray]:
    """Static cell offsets that can hold a cell of a disk of radius `radius_cells` (in cells) whose centre
    rounds to the cell (0, 0): those within `radius_cells` of the square [-0.5, 0.5]^2 (69 offsets for 4).

    Returns:
      (dx, dy): two [V] int32 numpy arrays of column and row offsets.
    """
    half = math.ceil(radius_cells + 0.5)
    dy, dx = np.mgrid[-half:half + 1, -half:half + 1]
    gap = np.hypot(np.maximum(np.abs(dx) - 0.5, 0.0), np.maximum(np.abs(dy) - 0.5, 0.0))
    near = gap <= radius_cells
    return dx[near].astype(np.int32), dy[near].astype(np.int32)


def hough_scores(hough: tf.Tensor, keypoints: tf.Tensor, stride: int) -> tf.Tensor:
    """Plain keypoint scores s_{j,k} = h_k(y_{j,k}) (the variant of [33], §3.1), sampled bilinearly.

    Args:
      hough: [h, w, K] Hough scores; keypoints: [P, K, 2] (x, y) input pixels; stride: s.

    Returns:
      [P, K] float32.
    """
    return sample_each(hough, keypoints, stride)


def cell_mean_gaussian(offset: tf.Tensor, sigma2: tf.Tensor, stride: int) -> tf.Tensor:
    """The mean of exp(-u^2 / (2 sigma^2)) over the cell [offset - s/2, offset + s/2] along one axis:
    sqrt(pi sigma^2 / 2) / s (erf((offset + s/2) / sqrt(2 sigma^2)) - erf((offset - s/2) / sqrt(2 sigma^2))).

    The Gaussian of Eq. 3 averaged over the cell instead of read at its centre: a cell much larger than
    lambda kappa (face keypoints of small persons at stride 8) then scores the same wherever the keypoint
    falls in it (docs/decoding.md).

    Args:
      offset: [...] cell centre minus keypoint, pixels; sigma2: [...] sigma^2, pixels^2 (broadcastable).
    """
    scale = tf.sqrt(2.0 * sigma2)
    half = stride / 2.0
    return (tf.math.erf((offset + half) / scale) - tf.math.erf((offset - half) / scale)) * (
        tf.sqrt(math.pi * sigma2 / 2.0) / stride)


def expected_oks_scores(heatmaps: tf.Tensor, hough: tf.Tensor, keypoints: tf.Tensor, stride: int, kappas: np.ndarray,
                        radius: float = DISK_RADIUS, integrate: bool = False) -> tf.Tensor:
    """Expected-OKS keypoint scores (Eq. 3).

    s_{j,k} = p_k(y_{j,k}) sum_{x in D_R(y_{j,k})} h^_k(x) exp(-|x - y_{j,k}|^2 / (2 lambda_j^2 kappa_k^2)),
    with h^_k = h_k / sum_{x in D_R(y_{j,k})} h_k(x) the Hough map normalised to sum 1 inside the disk (the
    paper's integral, as a sum over the cells x of the disk), lambda_j^2 = person_areas, and p_k(y)
    sampled bilinearly. A disk without Hough mass scores 0. With `integrate`, each cell's Gaussian term is
    its mean over the cell (`cell_mean_gaussian`, separable in x and y) rather than its value at the centre.

    Args:
      heatmaps: [h, w, K] keypoint probabilities p_k; hough: [h, w, K] Hough scores h_k.
      keypoints: [P, K, 2] (x, y) input pixels.
      stride: s of both maps.
      kappas: [K] OKS constants kappa_k (Skeleton.kappas).
      radius: disk radius R in input pixels.
      integrate: average the Gaussian over each cell.

    Returns:
      [P, K] float32 scores in [0, 1].
    """
    kappas = tf.constant(kappas, tf.float32)
    num_keypoints = static_keypoints(keypoints, axis=1)
    height, width = tf.shape(hough)[0], tf.shape(hough)[1]
    window_x, window_y = (tf.constant(steps)[tf.newaxis, tf.newaxis] for steps in disk_window(radius / stride))

    def along(axis, steps, size):
        """Window cells along one axis, [P, K, V]: clamped index, offset to y_{j,k} in pixels, in-map flag."""
        cells = tf.cast(tf.round(keypoints[..., axis] / stride), tf.int32)[..., tf.newaxis] + steps
        offsets = tf.cast(cells, tf.float32) * stride - keypoints[..., axis, tf.newaxis]
        return tf.clip_by_value(cells, 0, size - 1), offsets, (cells >= 0) & (cells < size)

    column, dx, column_in = along(0, window_x, width)
    row, dy, row_in = along(1, window_y, height)
    distance2 = tf.square(dx) + tf.square(dy)
    inside = (distance2 <= radius * radius) & column_in & row_in
    cell = (row * width + column) * num_keypoints + tf.range(num_keypoints)[:, tf.newaxis]
    mass = tf.where(inside, tf.gather(tf.reshape(hough, [-1]), cell), 0.0)                  # [P, K, V]
    sigma2 = (person_areas(keypoints)[:, tf.newaxis] * tf.square(kappas))[..., tf.newaxis]  # [P, K, 1]
    if integrate:
        gaussian = cell_mean_gaussian(dx, sigma2, stride) * cell_mean_gaussian(dy, sigma2, stride)
    else:
        gaussian = tf.exp(-distance2 / (2.0 * sigma2))
    weighted = tf.reduce_sum(mass * gaussian, axis=-1)
    expected = tf.math.divide_no_nan(weighted, tf.reduce_sum(mass, axis=-1))
    return sample_each(heatmaps, keypoints, stride) * expected


def instance_scores(keypoint_scores: tf.Tensor) -> tf.Tensor:
    """Instance-level score s^h_j = (1 / K) sum_k s_{j,k} (§3.1): [P, K] -> [P]."""
    return tf.reduce_mean(keypoint_scores, axis=-1)
