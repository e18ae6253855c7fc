"""Losses of instance-aware part parsing (second paper §3.4), correct under any number of replicas.

Terms, each a weighted mean over its valid positions (losses.replica_weighted_mean: this replica's share
of the global mean, 0 when nothing is valid):
- part: softmax cross-entropy of the part logits (Eq. 1) against the part classes;
- projection: L1 of the DSPF f_l (Eqs. 2-3) in cells of its level, averaged over the four levels;
- heatmap and short offsets: PersonLab's (losses.heatmap_loss, losses.short_offset_loss, L1 / R);
- limb: logistic loss of the limb logits against the elliptical Gaussians (soft labels);
- matching (second stage): cross-entropy of the relaxed assignment (Eqs. 13-15, training settings)
  computed from the predicted limb heatmaps between the ground-truth keypoints of the crop's persons,
  against "same person" (`matching_loss`).
Predictions at stride 4 are resized (corner aligned) to the target grid when it differs; the matching
loss reads the limb heatmaps at their own stride 4.

The total weighs the terms by homoscedastic uncertainty (Kendall et al.):
  sum_i L_i / (2 sigma_i^2) + log sigma_i  =  sum_i exp(-s_i) L_i / 2 + s_i / 2,   s_i = log sigma_i^2
with one learnable s_i per term (`UncertaintyWeights`).
"""

import keras
import tensorflow as tf

from personlab_tf import keys, losses
from personlab_tf.ops.bilinear import resize_aligned
from personlab_tf.parts import matching
from personlab_tf.parts.limb_scores import connection_scores
from personlab_tf.parts.part_sets import LIMBS
from personlab_tf.parts.targets import PYRAMID_STRIDES

BASE_LOSS_KEYS = (keys.PART_LOSS, keys.PROJECTION_LOSS, keys.HEATMAP_LOSS, keys.SHORT_LOSS, keys.LIMB_LOSS)
_EPSILON = 1e-4


def loss_keys(with_matching):
    """The loss terms of a model with or without the matching loss."""
    return BASE_LOSS_KEYS + ((keys.MATCHING_LOSS,) if with_matching else ())


def part_loss(logits, labels, weights):
    """Part segmentation loss (Eq. 1, §3.4): softmax cross-entropy averaged over valid pixels.

    Args:
      logits: [B, h, w, C]; labels: [B, h, w] int32 classes; weights: [B, h, w].
    """
    errors = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return losses.replica_weighted_mean(errors, weights)


def projection_loss(predictions, targets):
    """DSPF loss (§3.2, §3.4): L1 (|dx| + |dy|) of each level's field in its cells, mean over valid cells,
    averaged over the pyramid levels (deep supervision of the coarse-to-fine estimates).

    Args:
      predictions, targets: dicts with keys.projection_key(s) [B, h, w, 2] (and targets'
        keys.projection_weights_key(s) [B, h, w]) for s in PYRAMID_STRIDES.
    """
    terms = []
    for stride in PYRAMID_STRIDES:
        error = tf.reduce_sum(tf.abs(predictions[keys.projection_key(stride)] - targets[keys.projection_key(stride)]),
                              axis=-1)
        terms.append(losses.replica_weighted_mean(error, targets[keys.projection_weights_key(stride)]))
    return tf.add_n(terms) / len(terms)


def limb_loss(logits, heatmaps, weights):
    """Limb heatmap loss (§3.3-3.4): logistic loss against the elliptical Gaussians, over valid positions.

    Args:
      logits, heatmaps, weights: [B, h, w, L].
    """
    errors = tf.nn.sigmoid_cross_entropy_with_logits(labels=heatmaps, logits=logits)
    return losses.replica_weighted_mean(errors, weights)


def matching_loss(limb_logits, points, labelled, stride, settings=matching.TRAINING):
    """Differentiable matching loss (§3.3): cross-entropy of the LP assignment against the true one.

    For each limb (k, l), the crop's persons are the candidates on both sides (person i's keypoint k
    against person j's keypoint l, where both are labelled); their connection scores are read from the
    predicted limb heatmaps (limb_scores.connection_scores), the relaxed assignment x is solved with the
    training settings (matching.solve_assignment, 10 PGD steps x 5 Dykstra sweeps), and
    -[y log x + (1 - y) log(1 - x)] with y_ij = [i = j] is averaged over the valid pairs. Gradients reach
    the limb heatmaps through the solver and the sampler.

    Args:
      limb_logits: [B, h, w, L] at stride `stride`.
      points: [B, P, K, 2] persons' keypoints (targets' MATCH_POINTS); labelled: [B, P, K] bool.
      stride: s of the limb maps.
      settings: matching.SolverSettings.
    """
    first, second = [k for k, _ in LIMBS], [l for _, l in LIMBS]
    starts = tf.transpose(tf.gather(points, first, axis=2), [0, 2, 1, 3])       # [B, L, P, 2]
    ends = tf.transpose(tf.gather(points, second, axis=2), [0, 2, 1, 3])
    rows = tf.transpose(tf.gather(labelled, first, axis=2), [0, 2, 1])         # [B, L, P]
    columns = tf.transpose(tf.gather(labelled, second, axis=2), [0, 2, 1])
    valid = rows[..., :, tf.newaxis] & columns[..., tf.newaxis, :]             # [B, L, P, P]
    scores = connection_scores(tf.sigmoid(limb_logits), starts, ends, stride)
    assignment = tf.clip_by_value(matching.solve_assignment(scores, valid, settings), _EPSILON, 1.0 - _EPSILON)
    persons = tf.shape(points)[1]
    truth = tf.eye(persons, dtype=tf.float32)
    errors = -(truth * tf.math.log(assignment) + (1.0 - truth) * tf.math.log(1.0 - assignment))
    return losses.replica_weighted_mean(errors, tf.cast(valid, tf.float32))


def part_parsing_losses(predictions, targets, radius, with_matching=False):
    """Every loss term (this replica's share), predictions resized to the targets' pose grid.

    Args:
      predictions: model outputs (parts.model.PREDICTION_KEYS).
      targets: batched targets (parts.targets.make_part_targets).
      radius: disk radius R of the short-range offset loss.
      with_matching: add keys.MATCHING_LOSS.

    Returns:
      dict loss_keys(with_matching) -> [] float32.
    """
    size = tf.shape(targets[keys.PART_LABELS])[1:3]

    def resized(key):
        return resize_aligned(predictions[key], size)

    terms = {
        keys.PART_LOSS: part_loss(resized(keys.PART_LOGITS), targets[keys.PART_LABELS], targets[keys.PART_WEIGHTS]),
        keys.PROJECTION_LOSS: projection_loss(predictions, targets),
        keys.HEATMAP_LOSS: losses.heatmap_loss(resized(keys.HEATMAP_LOGITS), targets[keys.HEATMAPS],
                                               targets[keys.HEATMAP_WEIGHTS]),
        keys.SHORT_LOSS: losses.short_offset_loss(resized(keys.SHORT_OFFSETS), targets[keys.SHORT_OFFSETS],
                                                  targets[keys.SHORT_WEIGHTS], radius),
        keys.LIMB_LOSS: limb_loss(resized(keys.LIMB_LOGITS), targets[keys.LIMB_HEATMAPS], targets[keys.LIMB_WEIGHTS]),
    }
    if with_matching:
        terms[keys.MATCHING_LOSS] = matching_loss(predictions[keys.LIMB_LOGITS], targets[keys.MATCH_POINTS],
                                                  targets[keys.MATCH_LABELLED], PYRAMID_STRIDES[0])
    return terms


def uncertainty_total(terms, log_variances):
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

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.term_keys = loss_keys(with_matching=True)
        self.log_variances = self.add_weight(shape=(len(self.term_keys),), initializer="zeros", name="log_variances")

    def call(self, terms):
        present = [index for index, key in enumerate(self.term_keys) if key in terms]
        return uncertainty_total([terms[self.term_keys[index]] for index in present],
                                 tf.gather(self.log_variances, present))
