"""Losses shared by the tasks, correct under any number of replicas, and the loss table both tasks fill.

Every term is a weighted mean over its valid positions, the weights coming from the targets, taken per image
and averaged over the images (the default, AVERAGE_IMAGES: the paper trains one image per GPU, so every image
weighs the same, however many persons it holds):

    L = (1 / B) sum_b [ sum_{i,j,c} w[b,i,j,c] e[b,i,j,c] / sum_{i,j,c} w[b,i,j,c] ]      (0 for an image
                                                                                            without weights)
or pooled over the whole batch (AVERAGE_POOLED, where crowded images weigh more):

    L = sum_{b,i,j,c} w[b,i,j,c] * e[b,i,j,c] / sum_{b,i,j,c} w[b,i,j,c]

with e a logistic loss (heatmaps, segmentation, limbs), a softmax cross-entropy (part classes) or the L1
norm of an offset error divided by R (PersonLab §3.1-3.2, §4.1). An empty valid set (sum of weights 0)
gives 0 and zero gradients, never NaN.

Distribution: Keras sums the gradients of the replicas. Each replica therefore returns its own share,
divided by a GLOBAL count (all-reduced over replicas): the number of images of the global batch for
per-image means, the global sum of weights for pooled ones, so that the sum over replicas is the global
loss and the summed gradient equals the one-device gradient on the global batch. The values returned are
this replica's share; `global_sum` of a value gives the global loss (for reporting).

The loss table (`LossTerm`, after deeplab2's loss builder): a task lists, per term, the prediction, the
target and the weight it reads, the error function and the term's weight in the total; `table_losses`
resizes each prediction to its target's grid (corner aligned, ops/bilinear.resize_aligned) and computes
every row. docs/model.md lists both tasks' tables.
"""

import dataclasses
from typing import Callable, Dict, Sequence

import tensorflow as tf

from personlab_tf.constants import DISK_RADIUS
from personlab_tf.ops.bilinear import resize_aligned

AVERAGE_IMAGES = "image"    # per-image means, averaged over the images (default)
AVERAGE_POOLED = "pooled"   # one mean over every position of the batch
AVERAGINGS = (AVERAGE_IMAGES, AVERAGE_POOLED)


def global_sum(value: tf.Tensor) -> tf.Tensor:
    """Sum of `value` over the replicas in sync (`value` itself outside a multi-replica step)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def replica_weighted_mean(errors: tf.Tensor, weights: tf.Tensor, averaging: str = AVERAGE_IMAGES) -> tf.Tensor:
    """This replica's share of the global weighted mean of `errors` (module docstring), 0 if nothing is valid.

    Args:
      errors, weights: float tensors [B, ...] of the same shape (this replica's images and positions).
      averaging: AVERAGE_IMAGES (sum over this replica's images of their weighted means, divided by the
        number of images over all replicas) or AVERAGE_POOLED (sum(w e) divided by the sum of w over all
        replicas).

    Returns:
      [] float32.
    """
    if averaging not in AVERAGINGS:
        raise ValueError(f"unknown loss averaging {averaging!r}; expected one of {', '.join(AVERAGINGS)}")
    errors = tf.cast(errors, tf.float32)
    weights = tf.cast(weights, tf.float32)
    if averaging == AVERAGE_POOLED:
        weight_sum = global_sum(tf.stop_gradient(tf.reduce_sum(weights)))
        return tf.math.divide_no_nan(tf.reduce_sum(weights * errors), weight_sum)
    positions = list(range(1, errors.shape.rank))
    per_image = tf.math.divide_no_nan(tf.reduce_sum(weights * errors, axis=positions),
                                      tf.stop_gradient(tf.reduce_sum(weights, axis=positions)))
    images = global_sum(tf.cast(tf.shape(errors)[0], tf.float32))
    return tf.math.divide_no_nan(tf.reduce_sum(per_image), images)


def logistic_loss(logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor,
                  averaging: str = AVERAGE_IMAGES) -> tf.Tensor:
    """Logistic (sigmoid cross-entropy) loss of logits against labels in [0, 1], averaged over the weights.

    The heatmap (PersonLab §3.1), segmentation (§3.2) and limb (second paper §3.3) losses.
    """
    logits = tf.cast(logits, tf.float32)
    errors = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return replica_weighted_mean(errors, weights, averaging)


def softmax_loss(logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor,
                 averaging: str = AVERAGE_IMAGES) -> tf.Tensor:
    """Softmax cross-entropy of logits [..., C] against int class labels [...], averaged over the weights.

    The part segmentation loss (second paper Eq. 1, §3.4).
    """
    logits = tf.cast(logits, tf.float32)
    errors = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)
    return replica_weighted_mean(errors, weights, averaging)


def offset_l1_loss(offsets: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor, radius: float = DISK_RADIUS,
                   averaging: str = AVERAGE_IMAGES) -> tf.Tensor:
    """Offset loss (PersonLab §3.1-3.2): (|dx| + |dy|) / R of each offset vector, averaged over the weights.

    Args:
      offsets, targets: [..., C, 2] (x, y) in input pixels; weights: [..., C]; radius: R.
    """
    offsets = tf.cast(offsets, tf.float32)
    errors = tf.reduce_sum(tf.abs(offsets - targets), axis=-1) / radius
    return replica_weighted_mean(errors, weights, averaging)


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One row of a task's loss table.

    Attributes:
      name: the term's key (keys.Loss).
      prediction: key of the prediction it reads (keys.Prediction), at any stride (resized to the target).
      target: key of its target (keys.Map); weight: key of the target's weights.
      function: (prediction, target, weights) -> this replica's share of the term.
      loss_weight: the term's factor in the task's total.
    """

    name: str
    prediction: str
    target: str
    weight: str
    function: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]
    loss_weight: float = 1.0


def table_losses(table: Sequence[LossTerm], predictions: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor],
                 prefix: str = "") -> Dict[str, tf.Tensor]:
    """Every term of a loss table.

    Args:
      table: the rows.
      predictions: dict holding `prefix + row.prediction` [B, h, w, ...] for every row.
      targets: batched targets [B, h', w', ...] holding every row's target and weight.
      prefix: prepended to the prediction keys (keys.Prediction.AUXILIARY_PREFIX for auxiliary heads).

    Returns:
      {row.name: [] this replica's share}.
    """
    terms = {}
    for row in table:
        target = targets[row.target]
        prediction = resize_aligned(predictions[prefix + row.prediction], tf.shape(target)[1:3])
        terms[row.name] = row.function(prediction, target, targets[row.weight])
    return terms


def weighted_total(table: Sequence[LossTerm], terms: Dict[str, tf.Tensor]) -> tf.Tensor:
    """sum over the rows of loss_weight * term."""
    return tf.add_n([row.loss_weight * terms[row.name] for row in table])
