"""Instance masks from the segmentation and the long-range geometric embedding (PersonLab §3.2, Eq. 6).

Positions in input pixels, (x, y) order; a map of stride s has cell (i, j) at (x, y) = (s j, s i). Masks
are at the maps' resolution (the caller upsamples the maps first for finer masks).
"""

import tensorflow as tf

from personlab_tf.ops.sampling import static_keypoints


def embedding_distances(embeddings: tf.Tensor, keypoints: tf.Tensor, weights: tf.Tensor, areas: tf.Tensor) -> tf.Tensor:
    """Embedding distance of pixels to persons (Eq. 6).

    D_{i,j} = sum_k p_k(y_{j,k}) |G_k(x_i) - y_{j,k}| / (lambda_j sum_k p_k(y_{j,k})). A person whose
    weights sum to 0 is at distance +inf.

    Args:
      embeddings: [N, K, 2] embeddings G_k(x_i) = x_i + L_k(x_i) of N pixels, (x, y) input pixels.
      keypoints: [P, K, 2] person keypoints y_{j,k}, (x, y) input pixels (K static).
      weights: [P, K] keypoint presence probabilities p_k(y_{j,k}).
      areas: [P] lambda_j^2 (scoring.person_areas).

    Returns:
      [P, N] float32 distances D (transposed: person first).
    """
    total = tf.zeros([tf.shape(keypoints)[0], tf.shape(embeddings)[0]])
    for k in range(static_keypoints(keypoints, axis=1)):  # one keypoint at a time keeps memory at [P, N]
        dx = embeddings[tf.newaxis, :, k, 0] - keypoints[:, k, 0, tf.newaxis]
        dy = embeddings[tf.newaxis, :, k, 1] - keypoints[:, k, 1, tf.newaxis]
        total += weights[:, k, tf.newaxis] * tf.sqrt(tf.square(dx) + tf.square(dy))
    normaliser = (tf.sqrt(areas) * tf.reduce_sum(weights, axis=-1))[:, tf.newaxis]
    return tf.where(normaliser > 0, total / tf.maximum(normaliser, 1e-12), float("inf"))


def instance_masks(segmentation: tf.Tensor, long_offsets: tf.Tensor, keypoints: tf.Tensor, weights: tf.Tensor,
                   areas: tf.Tensor, stride: int, segmentation_threshold: float = 0.5,
                   distance_threshold: float = 0.25) -> tf.Tensor:
    """Person masks (§3.2): a cell with p_S >= 0.5 joins EVERY person with D <= 0.25 (Eq. 6).

    The assignment is non-exclusive: a person pixel may join several persons, or none (an orphan). Only the
    person pixels are embedded (cost O(N_S P), N_S the number of person pixels).

    Args:
      segmentation: [h, w, 1] person probability p_S.
      long_offsets: [h, w, K, 2] long-range offsets L_k (refined), (x, y) input pixels.
      keypoints, weights, areas: as in `embedding_distances`.
      stride: s of the maps.
      segmentation_threshold: smallest p_S of a person pixel (0.5 in the paper).
      distance_threshold: t, the largest relative embedding distance (0.25 in the paper).

    Returns:
      [P, h, w] bool masks.
    """
    foreground = segmentation[..., 0] >= segmentation_threshold                         # [h, w]
    cells = tf.where(foreground)                                                         # [N_S, 2] (i, j)
    positions = tf.cast(tf.reverse(cells, [1]), tf.float32) * stride                   # (x, y)
    embeddings = positions[:, tf.newaxis, :] + tf.gather_nd(long_offsets, cells)        # [N_S, K, 2]
    member = embedding_distances(embeddings, keypoints, weights, areas) <= distance_threshold
    # Back to the grid: cell -> its index among the person pixels, background -> a False column.
    order = tf.reshape(tf.cumsum(tf.reshape(tf.cast(foreground, tf.int32), [-1])), tf.shape(foreground)) - 1
    index = tf.where(foreground, order, tf.shape(cells)[0])  # row-major order, as tf.where lists cells
    return tf.gather(tf.pad(member, [[0, 0], [0, 1]]), index, axis=1)
