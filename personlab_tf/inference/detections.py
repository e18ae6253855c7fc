"""Ranking and padding of detections: both tasks keep their best D persons in fixed-size slots.

Slots at and beyond the number of detections are zero / False (keys.Detection), so that a SavedModel's
outputs have static shapes [D, ...] with D = constants.MAX_DETECTIONS.
"""

from typing import Tuple

import tensorflow as tf


def pad_to(values: tf.Tensor, size: int) -> tf.Tensor:
    """Pads the first dimension of `values` with zeros (False) up to `size`; the other dimensions keep their
    static shapes."""
    padding = [[0, size - tf.shape(values)[0]]] + [[0, 0]] * (values.shape.rank - 1)
    return tf.ensure_shape(tf.pad(values, padding), [size] + values.shape[1:].as_list())


def best(scores: tf.Tensor, keep: tf.Tensor, max_detections: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """The kept items with the highest scores, best first (ties: lower index first).

    Args:
      scores: [P] float32; keep: [P] bool, items that may be chosen; max_detections: D.

    Returns:
      (indices [n] int32 into the P items, n = min(number kept, D); n as a [] int32).
    """
    count = tf.minimum(tf.reduce_sum(tf.cast(keep, tf.int32)), max_detections)
    ranked = tf.where(keep, scores, -float("inf"))
    top = tf.math.top_k(ranked, tf.minimum(tf.size(ranked), max_detections)).indices
    return top[:count], count
