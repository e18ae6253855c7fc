"""Non-maximum suppression of decoded persons: soft keypoint NMS (PersonLab §3.1, Eq. 4) and hard OKS-NMS
(the scheme of [33], threshold 0.5, Appendix A.2).

Both visit persons by descending instance score s^h_j (ties: lower index first) and return per-person
results in the input order. Positions in input pixels, (x, y) order.
"""

import numpy as np
import tensorflow as tf

from personlab_tf.ops.suppression import greedy_keep
from personlab_tf.tasks.personlab.scoring import instance_scores, person_areas


def _by_score(scores):
    """Permutation sorting `scores` [P] descending (stable) and its inverse."""
    order = tf.argsort(scores, direction="DESCENDING", stable=True)
    return order, tf.math.invert_permutation(order)


def soft_nms(keypoints: tf.Tensor, keypoint_scores: tf.Tensor, radius: float = 10.0) -> tf.Tensor:
    """Soft keypoint NMS (Eq. 4): s_j = (1 / K) sum_k s_{j,k} [|y_{j,k} - y_{j',k}| > r for every j' < j].

    j' < j ranges over all persons with a higher instance score s^h (mean of s_{j,k}), suppressed or not:
    a keypoint within r of the same keypoint of any higher-scoring person is "claimed" and does not count.

    Args:
      keypoints: [P, K, 2] (x, y) input pixels; keypoint_scores: [P, K] s_{j,k}.
      radius: r, the NMS radius in input pixels (10 in the paper).

    Returns:
      [P] float32 final instance scores s_j (input order).
    """
    order, inverse = _by_score(instance_scores(keypoint_scores))
    points = tf.transpose(tf.gather(keypoints, order), [1, 0, 2])                          # [K, P, 2]
    x, y = points[..., 0], points[..., 1]
    distance2 = (tf.square(x[:, :, tf.newaxis] - x[:, tf.newaxis, :])
                 + tf.square(y[:, :, tf.newaxis] - y[:, tf.newaxis, :]))                   # [K, P_j, P_j']
    index = tf.range(tf.shape(x)[1])
    earlier = index[:, tf.newaxis] > index[tf.newaxis, :]
    claimed = tf.reduce_any((distance2 <= radius * radius) & earlier, axis=-1)              # [K, P]
    scores = tf.reduce_mean(tf.where(tf.transpose(claimed), 0.0, tf.gather(keypoint_scores, order)), axis=-1)
    return tf.gather(scores, inverse)


def object_keypoint_similarity(keypoints: tf.Tensor, reference: tf.Tensor, area: tf.Tensor,
                               kappas: np.ndarray) -> tf.Tensor:
    """COCO OKS between persons and reference persons, all keypoints counted.

    OKS = (1 / K) sum_k exp(-|y_k - y'_k|^2 / (2 area kappa_k^2)), kappa_k = 2 sigma_k (pycocotools).

    Args:
      keypoints: [..., K, 2] and reference: [..., K, 2] (broadcastable), (x, y) input pixels.
      area: [...] area s^2 of the reference persons.
      kappas: [K] OKS constants (Skeleton.kappas).

    Returns:
      [...] float32 OKS in [0, 1].
    """
    kappas = tf.constant(kappas, tf.float32)
    distance2 = tf.reduce_sum(tf.square(keypoints - reference), axis=-1)
    return tf.reduce_mean(tf.exp(-distance2 / (2.0 * area[..., tf.newaxis] * tf.square(kappas))), axis=-1)


def hard_oks_nms(keypoints: tf.Tensor, scores: tf.Tensor, kappas: np.ndarray, threshold: float = 0.5) -> tf.Tensor:
    """Hard OKS-NMS: a person is dropped when its OKS with a kept higher-scoring person exceeds `threshold`.

    The OKS uses the higher-scoring person's keypoints as reference and its lambda^2 (scoring.person_areas)
    as area. Evaluated exactly as the sequential loop by `suppression.greedy_keep`.

    Args:
      keypoints: [P, K, 2] (x, y) input pixels; scores: [P] instance scores.
      kappas: [K] OKS constants (Skeleton.kappas).
      threshold: OKS above which the lower-scoring person is suppressed (0.5).

    Returns:
      [P] bool, True for kept persons (input order).
    """
    order, inverse = _by_score(scores)
    points = tf.gather(keypoints, order)
    oks = object_keypoint_similarity(points[:, tf.newaxis], points[tf.newaxis],
                                     person_areas(points)[tf.newaxis], kappas)  # [P_i, P_j], j the reference
    return tf.gather(greedy_keep(oks > threshold), inverse)
