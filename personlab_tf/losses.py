"""PersonLab losses (§3.1, §3.2, §4.1), correct under any number of replicas.

Every term is a weighted mean over its valid positions, the weights coming from the targets:

    L = sum_{b,i,j,c} w[b,i,j,c] * e[b,i,j,c] / sum_{b,i,j,c} w[b,i,j,c]

- heatmap (c = keypoint k) and segmentation (c = 0): e = logistic loss of the logit;
- short- and long-range (c = keypoint k), mid-range (c = directed edge e): e = (|dx| + |dy|) / R, the L1
  norm of the (x, y) error of one offset vector divided by R = 32 px; a position is one (cell, channel).
An empty valid set (sum of weights 0) gives 0 and zero gradients, never NaN.

Predictions come at output stride os and are resized to the target grid (stride s, corner-aligned) with
`ops.bilinear.resize_aligned` before the losses; offsets stay in pixels. Corner alignment needs a crop of
S = n os + 1 pixels (801 for os 8, 16 and 32): predictions (S - 1) / os + 1 cells, targets (S - 1) / s + 1.

Distribution: Keras sums the gradients of the replicas. Each replica therefore returns its own weighted
error sum divided by the GLOBAL sum of weights (all-reduced over replicas), so that the sum over replicas
is the global mean and the summed gradient equals the one-device gradient on the global batch. On one
device this is the plain weighted mean. The values returned are this replica's share; `global_sum` of a
value gives the global loss (for reporting).

Total: sum_t lambda_t L_t with lambda = (4, 2, 1, 1/4, 1/8) for (heatmap, segmentation, short, mid, long);
the auxiliary heads add the same terms with the same weights, times `auxiliary_weight` (1 by default).
"""

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS
from personlab_tf.ops.bilinear import resize_aligned

# Loss weights of (heatmap, segmentation, short, mid, long), §4.1.
DEFAULT_LOSS_WEIGHTS = (4.0, 2.0, 1.0, 0.25, 0.125)
LOSS_KEYS = (keys.HEATMAP_LOSS, keys.SEGMENTATION_LOSS, keys.SHORT_LOSS, keys.MID_LOSS, keys.LONG_LOSS)


def global_sum(value):
    """Sum of `value` over the replicas in sync (`value` itself outside a multi-replica step)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def replica_weighted_mean(errors, weights):
    """This replica's share of the global weighted mean: sum(w e) / (sum of w over all replicas), 0 if none.

    Args:
      errors, weights: float tensors of the same shape (this replica's positions).

    Returns:
      [] float32.
    """
    weight_sum = global_sum(tf.stop_gradient(tf.reduce_sum(weights)))
    return tf.math.divide_no_nan(tf.reduce_sum(weights * errors), weight_sum)


def _logistic(logits, labels, weights):
    return replica_weighted_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), weights)


def _offset_l1(offsets, targets, weights, radius):
    return replica_weighted_mean(tf.reduce_sum(tf.abs(offsets - targets), axis=-1) / radius, weights)


def heatmap_loss(logits, heatmaps, weights):
    """Keypoint heatmap loss (§3.1): logistic loss averaged over valid (position, keypoint) pairs.

    Args:
      logits: [B, h, w, K] on the target grid; heatmaps, weights: [B, h, w, K].
    """
    return _logistic(logits, heatmaps, weights)


def segmentation_loss(logits, segmentation, weights):
    """Person segmentation loss (§3.2): logistic loss averaged over valid positions (crowd excluded).

    Args:
      logits, segmentation, weights: [B, h, w, 1] on the target grid.
    """
    return _logistic(logits, segmentation, weights)


def short_offset_loss(offsets, targets, weights, radius=DISK_RADIUS):
    """Short-range offset loss (§3.1): L1 / R averaged over positions in the keypoint disks.

    Args:
      offsets, targets: [B, h, w, K, 2] (x, y) in input pixels; weights: [B, h, w, K].
    """
    return _offset_l1(offsets, targets, weights, radius)


def mid_offset_loss(offsets, targets, weights, radius=DISK_RADIUS):
    """Mid-range offset loss (§3.1): L1 / R of the refined offsets over the source keypoint disks.

    Args:
      offsets, targets: [B, h, w, E, 2] (x, y) in input pixels; weights: [B, h, w, E].
    """
    return _offset_l1(offsets, targets, weights, radius)


def long_offset_loss(offsets, targets, weights, radius=DISK_RADIUS):
    """Long-range offset loss (§3.2): L1 / R of the refined offsets over pixels of exactly one person.

    Args:
      offsets, targets: [B, h, w, K, 2] (x, y) in input pixels; weights: [B, h, w, K].
    """
    return _offset_l1(offsets, targets, weights, radius)


def head_losses(predictions, targets, prefix=""):
    """The five loss terms of one set of heads, predictions resized to the target grid.

    Args:
      predictions: dict with `prefix + key` for the prediction keys, at any stride (corner-aligned).
      targets: batched target dict (personlab_tf.keys), on the target grid [B, h, w, ...].
      prefix: "" for the main heads, keys.AUXILIARY_PREFIX for the auxiliary ones.

    Returns:
      dict LOSS_KEYS -> [] this replica's share of each term.
    """
    size = tf.shape(targets[keys.HEATMAPS])[1:3]

    def resized(key):
        return resize_aligned(predictions[prefix + key], size)

    return {
        keys.HEATMAP_LOSS: heatmap_loss(resized(keys.HEATMAP_LOGITS), targets[keys.HEATMAPS],
                                        targets[keys.HEATMAP_WEIGHTS]),
        keys.SEGMENTATION_LOSS: segmentation_loss(resized(keys.SEGMENTATION_LOGITS), targets[keys.SEGMENTATION],
                                                  targets[keys.SEGMENTATION_WEIGHTS]),
        keys.SHORT_LOSS: short_offset_loss(resized(keys.SHORT_OFFSETS), targets[keys.SHORT_OFFSETS],
                                           targets[keys.SHORT_WEIGHTS]),
        keys.MID_LOSS: mid_offset_loss(resized(keys.MID_OFFSETS), targets[keys.MID_OFFSETS],
                                       targets[keys.MID_WEIGHTS]),
        keys.LONG_LOSS: long_offset_loss(resized(keys.LONG_OFFSETS), targets[keys.LONG_OFFSETS],
                                         targets[keys.LONG_WEIGHTS]),
    }


def personlab_losses(predictions, targets, loss_weights=DEFAULT_LOSS_WEIGHTS, auxiliary_weight=1.0):
    """All loss terms and their weighted total.

    Args:
      predictions: model output dict; the auxiliary terms are added when it holds auxiliary predictions.
      targets: batched target dict on the target grid.
      loss_weights: weights of (heatmap, segmentation, short, mid, long).
      auxiliary_weight: factor of the auxiliary heads' weighted sum.

    Returns:
      dict: LOSS_KEYS, AUXILIARY_PREFIX + LOSS_KEYS (if auxiliary predictions) and TOTAL_LOSS -> [] float32,
      each this replica's share (see module docstring).
    """
    losses = head_losses(predictions, targets)
    total = tf.add_n([w * losses[k] for w, k in zip(loss_weights, LOSS_KEYS)])
    if keys.AUXILIARY_PREFIX + keys.HEATMAP_LOGITS in predictions:
        auxiliary = head_losses(predictions, targets, keys.AUXILIARY_PREFIX)
        total += auxiliary_weight * tf.add_n([w * auxiliary[k] for w, k in zip(loss_weights, LOSS_KEYS)])
        losses.update({keys.AUXILIARY_PREFIX + k: v for k, v in auxiliary.items()})
    losses[keys.TOTAL_LOSS] = total
    return losses
