"""Losses of instance-aware part parsing (second paper §3.4), correct under any number of replicas.

The standard terms are rows of a loss table (personlab_tf/losses.py), each a weighted mean over its
valid positions (this replica's share of the global mean, 0 when nothing is valid):

| term | prediction | target, weights | error |
| --- | --- | --- | --- |
| part | part logits | part classes, part weights (x class balance) | softmax cross-entropy (Eq. 1) |
| heatmap | heatmap logits | keypoint disks, heatmap weights | logistic (PersonLab's) |
| short-range | short offsets | short offsets, the disks | L1 / R (PersonLab's) |
| limb | limb logits | elliptical Gaussians, limb weights | logistic against soft labels |

Two terms read more than one map and are computed beside the table:
- projection: L1 of the DSPF f_l (Eqs. 2-3) in cells of its level, averaged over the levels predicted
  (four; one for the "direct" ablation; none without a field);
- matching (second stage): cross-entropy of the relaxed assignment (Eqs. 13-15, training settings)
  computed from the predicted limb heatmaps (one per limb of the skeleton, `Skeleton.limbs`) between the
  ground-truth keypoints of the crop's persons, against "same person" (`matching_loss`).
Predictions at stride 4 are resized (corner aligned) to the target grid when it differs; the matching
loss reads the limb heatmaps at their own stride 4.

Class balance (an option; the paper's Eq. 1 is the plain cross-entropy, balance 0): each cell of part class c
weighs n_c^-balance in its image's mean, n_c the image's valid cells of class c (`class_balanced_weights`);
balance 1 gives every class present in an image the same weight, whatever its area.

The total weighs the terms by homoscedastic uncertainty (Kendall et al.):
  sum_i L_i / (2 sigma_i^2) + log sigma_i  =  sum_i exp(-s_i) L_i / 2 + s_i / 2,   s_i = log sigma_i^2
with one learnable s_i per term (`UncertaintyWeights`), so the table's loss weights are all 1.
"""

import functools
from typing import Any, Dict, Sequence, Tuple

import keras
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.losses import (
    AVERAGE_IMAGES,
    LossTerm,
    logistic_loss,
    offset_l1_loss,
    replica_weighted_mean,
    softmax_loss,
    table_losses,
)
from personlab_tf.skeleton import Edge
from personlab_tf.tasks.parts import matching
from personlab_tf.tasks.parts.limb_scores import connection_scores
from personlab_tf.tasks.parts.targets import PYRAMID_STRIDES, limb_ends

BASE_LOSS_KEYS = (keys.Loss.PART, keys.Loss.PROJECTION, keys.Loss.HEATMAP, keys.Loss.SHORT, keys.Loss.LIMB)
_EPSILON = 1e-4


def loss_keys(with_matching: bool, with_projection: bool = True) -> Tuple[str, ...]:
    """The loss terms of a model with or without the matching loss, with or without a projection field."""
    base = BASE_LOSS_KEYS if with_projection else tuple(key for key in BASE_LOSS_KEYS if key != keys.Loss.PROJECTION)
    return base + ((keys.Loss.MATCHING,) if with_matching else ())


def class_balanced_weights(labels: tf.Tensor, weights: tf.Tensor, num_classes: int, balance: float) -> tf.Tensor:
    """Weights [B, ...] of a part loss in which each cell of class c weighs n_c^-balance, n_c the sum of
    the weights of its image's cells of class c (0 where `weights` is 0; `weights` itself for balance 0).

    Args:
      labels: [B, ...] int class labels; weights: [B, ...] float; num_classes: C; balance: the exponent.
    """
    weights = tf.cast(weights, tf.float32)
    if not balance:
        return weights
    classes = tf.one_hot(tf.cast(labels, tf.int32), num_classes) * weights[..., tf.newaxis]   # [B, ..., C]
    counts = tf.reduce_sum(classes, axis=list(range(1, classes.shape.rank - 1)))                 # [B, C]
    factors = tf.where(counts > 0, tf.pow(tf.maximum(counts, 1.0), -balance), 0.0)
    cells = tf.reshape(factors, [-1] + [1] * (classes.shape.rank - 2) + [num_classes])
    return tf.stop_gradient(tf.reduce_sum(classes * cells, axis=-1))


def balanced_softmax_loss(logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, balance: float = 0.0,
                          averaging: str = AVERAGE_IMAGES) -> tf.Tensor:
    """The part loss (Eq. 1): softmax cross-entropy averaged under `class_balanced_weights`."""
    weights = class_balanced_weights(labels, weights, logits.shape[-1], balance)
    return softmax_loss(logits, labels, weights, averaging)


def loss_table(radius: float, averaging: str = AVERAGE_IMAGES, part_balance: float = 0.0) -> Tuple[LossTerm, ...]:
    """The table rows; `radius`: the disk radius R dividing the short-range offset errors; `averaging`:
    personlab_tf/losses.py's per-image or pooled means; `part_balance`: the class-balance exponent of the
    part loss (0: the paper's plain cross-entropy)."""
    logistic = functools.partial(logistic_loss, averaging=averaging)
    return (
        LossTerm(keys.Loss.PART, keys.Prediction.PART_LOGITS, keys.Map.PART_CLASSES, keys.Map.PART_WEIGHTS,
                 functools.partial(balanced_softmax_loss, balance=part_balance, averaging=averaging)),
        LossTerm(keys.Loss.HEATMAP, keys.Prediction.HEATMAP_LOGITS, keys.Map.HEATMAPS, keys.Map.HEATMAP_WEIGHTS,
                 logistic),
        LossTerm(keys.Loss.SHORT, keys.Prediction.SHORT_OFFSETS, keys.Map.SHORT_OFFSETS, keys.Map.SHORT_WEIGHTS,
                 functools.partial(offset_l1_loss, radius=radius, averaging=averaging)),
        LossTerm(keys.Loss.LIMB, keys.Prediction.LIMB_LOGITS, keys.Map.LIMB_HEATMAPS, keys.Map.LIMB_WEIGHTS,
                 logistic),
    )


def projection_loss(predictions: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor],
                    averaging: str = AVERAGE_IMAGES) -> tf.Tensor:
    """DSPF loss (§3.2, §3.4): L1 (|dx| + |dy|) of each level's field in its cells, mean over valid cells,
    averaged over the pyramid levels the network predicts (deep supervision of the coarse-to-fine
    estimates; stride 4 alone for the "direct" field of Table 4's baseline).

    Args:
      predictions: dict with keys.Prediction.projection(s) [B, h, w, 2] for some s in PYRAMID_STRIDES;
        targets: dict with keys.Map.projection(s) [B, h, w, 2] and keys.Map.projection_weights(s) [B, h, w].
    """
    terms = []
    for stride in (s for s in PYRAMID_STRIDES if keys.Prediction.projection(s) in predictions):
        field = tf.cast(predictions[keys.Prediction.projection(stride)], tf.float32)
        error = tf.reduce_sum(tf.abs(field - targets[keys.Map.projection(stride)]), axis=-1)
        terms.append(replica_weighted_mean(error, targets[keys.Map.projection_weights(stride)], averaging))
    return tf.add_n(terms) / len(terms)


def matching_loss(limb_logits: tf.Tensor, points: tf.Tensor, labelled: tf.Tensor, stride: int, limbs: Sequence[Edge],
                  settings: matching.SolverSettings = matching.TRAINING, averaging: str = AVERAGE_IMAGES) -> tf.Tensor:
    """Differentiable matching loss (§3.3): cross-entropy of the LP assignment against the true one.

    For each limb (k, l), the crop's persons are the candidates on both sides (person i's keypoint k
    against person j's keypoint l, where both are labelled); their connection scores are read from the
    predicted limb heatmaps (limb_scores.connection_scores), the relaxed assignment x is solved with the
    training settings (matching.solve_assignment, 10 PGD steps x 5 Dykstra sweeps), and
    -[y log x + (1 - y) log(1 - x)] with y_ij = [i = j] is averaged over the valid pairs. Gradients reach
    the limb heatmaps through the solver and the sampler.

    Args:
      limb_logits: [B, h, w, L] at stride `stride`.
      points: [B, P, K, 2] persons' keypoints (keys.Map.MATCH_POINTS); labelled: [B, P, K] bool.
      stride: s of the limb maps.
      limbs: the L (k, l) keypoint pairs of the limb maps' channels (Skeleton.limbs).
      settings: matching.SolverSettings.
    """
    first, second = limb_ends(limbs)
    starts = tf.transpose(tf.gather(points, first, axis=2), [0, 2, 1, 3])       # [B, L, P, 2]
    ends = tf.transpose(tf.gather(points, second, axis=2), [0, 2, 1, 3])
    rows = tf.transpose(tf.gather(labelled, first, axis=2), [0, 2, 1])         # [B, L, P]
    columns = tf.transpose(tf.gather(labelled, second, axis=2), [0, 2, 1])
    valid = rows[..., :, tf.newaxis] & columns[..., tf.newaxis, :]             # [B, L, P, P]
    scores = connection_scores(tf.sigmoid(tf.cast(limb_logits, tf.float32)), starts, ends, stride)
    assignment = tf.clip_by_value(matching.solve_assignment(scores, valid, settings), _EPSILON, 1.0 - _EPSILON)
    persons = tf.shape(points)[1]
    truth = tf.eye(persons, dtype=tf.float32)
    errors = -(truth * tf.math.log(assignment) + (1.0 - truth) * tf.math.log(1.0 - assignment))
    return replica_weighted_mean(errors, tf.cast(valid, tf.float32), averaging)


def part_parsing_losses(predictions: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor], radius: float,
                        limbs: Sequence[Edge], with_matching: bool = False, averaging: str = AVERAGE_IMAGES,
                        part_balance: float = 0.0) -> Dict[str, tf.Tensor]:
    """Every loss term (this replica's share): the table's rows, the projection and the matching loss.

    Args:
      predictions: model outputs (tasks/parts/model.py PREDICTION_KEYS).
      targets: batched targets (targets.make_part_targets).
      radius: disk radius R of the short-range offset loss.
      limbs: the L (k, l) keypoint pairs of the limb maps (Skeleton.limbs; the matching loss's).
      with_matching: add keys.Loss.MATCHING.
      averaging: personlab_tf/losses.py AVERAGE_IMAGES (per-image means) or AVERAGE_POOLED.
      part_balance: class-balance exponent of the part loss (`class_balanced_weights`).

    Returns:
      dict loss_keys(with_matching, with_projection) -> [] float32, the projection term only when the
      predictions hold a field (not for PartsNetwork.projection_field "none").
    """
    terms = table_losses(loss_table(radius, averaging, part_balance), predictions, targets)
    if keys.Prediction.projection(PYRAMID_STRIDES[0]) in predictions:
        terms[keys.Loss.PROJECTION] = projection_loss(predictions, targets, averaging)
    if with_matching:
        terms[keys.Loss.MATCHING] = matching_loss(predictions[keys.Prediction.LIMB_LOGITS],
                                                  targets[keys.Map.MATCH_POINTS], targets[keys.Map.MATCH_LABELLED],
                                                  PYRAMID_STRIDES[0], limbs, averaging=averaging)
    return terms


def uncertainty_total(terms: Sequence[tf.Tensor], log_variances: tf.Tensor) -> tf.Tensor:
    """sum_i exp(-s_i) L_i / 2 + s_i / 2 (Kendall et al.; §3.4), the regulariser split over replicas.

    Args:
      terms: list of [] this replica's loss shares L_i; log_variances: [n] the s_i = log sigma_i^2.

    Returns:
      [] this replica's share of the total (its sum over replicas is the global total).
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    values = tf.stack(terms)
    return tf.reduce_sum(0.5 * tf.exp(-log_variances) * values + 0.5 * log_variances / replicas)


@keras.saving.register_keras_serializable(package="personlab_tf")
class UncertaintyWeights(keras.layers.Layer):
    """The learnable s_i = log sigma_i^2 of every loss term (initially 0: weight 1/2).

    call(terms dict) -> `uncertainty_total` over the terms present: one s_i per key of loss_keys(True),
    the matching term's included, so a first-stage checkpoint (without the matching loss) restores into
    the second-stage model.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.term_keys = loss_keys(with_matching=True)
        self.log_variances = self.add_weight(shape=(len(self.term_keys),), initializer="zeros", name="log_variances")

    def values(self) -> Dict[str, float]:
        """{loss key: s_i} as floats, every term's (keys of loss_keys(True))."""
        return dict(zip(self.term_keys, (float(value) for value in self.log_variances.numpy())))

    def call(self, terms: Dict[str, tf.Tensor]) -> tf.Tensor:
        present = [index for index, key in enumerate(self.term_keys) if key in terms]
        return uncertainty_total([terms[self.term_keys[index]] for index in present],
                                 tf.gather(self.log_variances, present))
