"""The shared loss functions (personlab_tf/losses.py) and PersonLab's loss table (tasks/personlab/losses.py)
against values computed by hand from the formulas."""

import dataclasses

import gin
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.losses import (
    AVERAGE_POOLED,
    LossTerm,
    logistic_loss,
    offset_l1_loss,
    replica_weighted_mean,
    softmax_loss,
    table_losses,
)
from personlab_tf.tasks.personlab.model import PersonLabNetwork
from personlab_tf.tasks.personlab.losses import (LOSS_KEYS, PersonLabLossWeights, loss_table, loss_weights_of,
                                               personlab_losses)

K, E = COCO17.num_keypoints, COCO17.num_edges


def _logistic(z, t):
    return np.log1p(np.exp(-z)) if t else np.log1p(np.exp(z))


def test_logistic_loss_hand_values():
    logits = tf.constant([[[[0.0], [2.0]], [[-1.0], [3.0]]]])       # [1, 2, 2, 1]
    labels = tf.constant([[[[1.0], [1.0]], [[0.0], [0.0]]]])
    weights = tf.constant([[[[1.0], [1.0]], [[1.0], [0.0]]]])       # last position excluded
    expected = (_logistic(0, 1) + _logistic(2, 1) + _logistic(-1, 0)) / 3
    np.testing.assert_allclose(logistic_loss(logits, labels, weights), expected, rtol=1e-6)


def test_offset_loss_hand_values():
    # Three positions: errors (3, -4) and (0, -1), the third (huge) has weight 0.
    offsets = tf.constant([[[[[3.0, -4.0]], [[1.0, 1.0]], [[500.0, 0.0]]]]])   # [1, 1, 3, 1, 2]
    targets = tf.constant([[[[[0.0, 0.0]], [[1.0, 2.0]], [[0.0, 0.0]]]]])
    weights = tf.constant([[[[1.0], [1.0], [0.0]]]])                          # [1, 1, 3, 1]
    np.testing.assert_allclose(offset_l1_loss(offsets, targets, weights), ((3 + 4) + (0 + 1)) / 2 / 32, rtol=1e-6)
    np.testing.assert_allclose(offset_l1_loss(offsets, targets, weights, radius=8.0), 8 / 2 / 8, rtol=1e-6)


def test_softmax_loss_hand_values():
    logits = tf.constant([[[[0.0, 0.0], [2.0, 0.0]]]])               # [1, 1, 2, 2]: two positions, two classes
    labels = tf.constant([[[0, 1]]])
    weights = tf.constant([[[1.0, 3.0]]])
    expected = (np.log(2.0) + 3 * np.log1p(np.exp(2.0))) / 4          # -log softmax of the labelled class
    np.testing.assert_allclose(softmax_loss(logits, labels, weights), expected, rtol=1e-6)


def test_weights_are_not_just_masks():
    logits = tf.constant([[[[0.0], [2.0]]]])
    labels = tf.constant([[[[1.0], [1.0]]]])
    weights = tf.constant([[[[3.0], [1.0]]]])
    expected = (3 * _logistic(0, 1) + _logistic(2, 1)) / 4
    np.testing.assert_allclose(logistic_loss(logits, labels, weights), expected, rtol=1e-6)


def test_per_image_means_weigh_every_image_the_same():
    """Image 0: one valid position with error 1; image 1: three valid positions with error 0; image 2: none."""
    errors = tf.constant([[1.0, 5.0, 5.0], [0.0, 0.0, 0.0], [7.0, 7.0, 7.0]])
    weights = tf.constant([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(replica_weighted_mean(errors, weights), (1.0 + 0.0 + 0.0) / 3, rtol=1e-6)
    np.testing.assert_allclose(replica_weighted_mean(errors, weights, AVERAGE_POOLED), 1.0 / 4, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown loss averaging"):
        replica_weighted_mean(errors, weights, "per_person")


def test_a_table_row_reads_its_keys_and_resizes_the_prediction_to_the_target_grid():
    row = LossTerm("term", "prediction", "target", "weight", logistic_loss, 2.0)
    predictions = {"prediction": tf.constant([[[[0.0], [4.0]]]])}                # [1, 1, 2, 1] -> [1, 1, 3, 1]: 0, 2, 4
    targets = {"target": tf.ones([1, 1, 3, 1]), "weight": tf.constant([[[[0.0], [1.0], [0.0]]]])}
    np.testing.assert_allclose(table_losses([row], predictions, targets)["term"], _logistic(2, 1), rtol=1e-6)


def test_personlab_table_matches_the_paper():
    table = loss_table()
    assert [row.name for row in table] == list(LOSS_KEYS)
    assert [row.loss_weight for row in table] == [4.0, 2.0, 1.0, 0.25, 0.125]
    assert [row.target for row in table] == [keys.Map.HEATMAPS, keys.Map.SEGMENTATION, keys.Map.SHORT_OFFSETS,
                                             keys.Map.MID_OFFSETS, keys.Map.LONG_OFFSETS]


def test_loss_weights_are_keyed_by_loss_name():
    """The weights' fields are the loss keys; a named term takes its weight, the others keep the paper's
    (§4.1); an unknown name is refused; the five positional weights recorded by runs before the weights were
    keyed read in LOSS_KEYS order; the operative config records every weight (so a resumed run compares them)."""
    assert [field.name for field in dataclasses.fields(PersonLabLossWeights)] == list(LOSS_KEYS)
    table = loss_table(loss_weights_of({keys.Loss.MID: 0.5, keys.Loss.HEATMAP: 1.0}))
    assert [row.loss_weight for row in table] == [1.0, 2.0, 1.0, 0.5, 0.125]
    assert loss_weights_of((1, 2, 3, 4, 5)) == PersonLabLossWeights(1.0, 2.0, 3.0, 4.0, 5.0)
    with pytest.raises(ValueError, match="mid_loss: not PersonLab loss terms"):
        loss_weights_of({"mid_loss": 1.0})
    with pytest.raises(ValueError, match="expected"):
        loss_weights_of((1.0, 2.0))
    gin.clear_config()
    try:
        gin.parse_config("PersonLabLossWeights.mid_offset_loss = 0.5")
        PersonLabNetwork()
        recorded = gin.operative_config_str()
    finally:
        gin.clear_config()
    assert "PersonLabLossWeights.mid_offset_loss = 0.5" in recorded
    assert "PersonLabLossWeights.long_offset_loss = 0.125" in recorded


def _targets(h, w, batch=1):
    zeros = np.zeros
    return {
        keys.Map.HEATMAPS: zeros([batch, h, w, K]), keys.Map.HEATMAP_WEIGHTS: zeros([batch, h, w, K]),
        keys.Map.SHORT_OFFSETS: zeros([batch, h, w, K, 2]), keys.Map.SHORT_WEIGHTS: zeros([batch, h, w, K]),
        keys.Map.MID_OFFSETS: zeros([batch, h, w, E, 2]), keys.Map.MID_WEIGHTS: zeros([batch, h, w, E]),
        keys.Map.SEGMENTATION: zeros([batch, h, w, 1]), keys.Map.SEGMENTATION_WEIGHTS: zeros([batch, h, w, 1]),
        keys.Map.LONG_OFFSETS: zeros([batch, h, w, K, 2]), keys.Map.LONG_WEIGHTS: zeros([batch, h, w, K]),
    }


def _predictions(h, w, prefix="", batch=1):
    zeros = np.zeros
    return {prefix + keys.Prediction.HEATMAP_LOGITS: zeros([batch, h, w, K]),
            prefix + keys.Prediction.SEGMENTATION_LOGITS: zeros([batch, h, w, 1]),
            prefix + keys.Prediction.SHORT_OFFSETS: zeros([batch, h, w, K, 2]),
            prefix + keys.Prediction.MID_OFFSETS: zeros([batch, h, w, E, 2]),
            prefix + keys.Prediction.LONG_OFFSETS: zeros([batch, h, w, K, 2])}


def _as_tensors(d):
    return {k: tf.constant(v, tf.float32) for k, v in d.items()}


def test_personlab_losses_upsample_and_weight_by_hand():
    # Predictions at output stride 16 on a 2x2 grid, targets at stride 8 on 3x3 (input 17 x 17 pixels).
    predictions = _predictions(2, 2)
    predictions[keys.Prediction.HEATMAP_LOGITS][0, :, :, 4] = [[0.0, 2.0], [4.0, 6.0]]   # centre upsampled: 3
    predictions[keys.Prediction.SEGMENTATION_LOGITS][0, 0, :, 0] = [-2.0, 2.0]           # (0, 1) upsampled: 0
    predictions[keys.Prediction.SHORT_OFFSETS][0, :, 0, 2] = [[8.0, 0.0], [0.0, 8.0]]     # (1, 0) upsampled: (4, 4)
    predictions[keys.Prediction.MID_OFFSETS][0, 0, 0, 7] = [32.0, 64.0]                    # (0, 0): no interpolation
    predictions[keys.Prediction.LONG_OFFSETS][0, 1, 1, 16] = [-16.0, 0.0]                  # (2, 1) upsampled: (-8, 0)
    targets = _targets(3, 3)
    targets[keys.Map.HEATMAPS][0, 1, 1, 4] = 1.0
    targets[keys.Map.HEATMAP_WEIGHTS][0, 1, 1, 4] = 1.0
    targets[keys.Map.HEATMAP_WEIGHTS][0, 0, 0, 4] = 1.0                            # logit 0, label 0
    targets[keys.Map.SEGMENTATION_WEIGHTS][0, 0, 1, 0] = 1.0                       # logit 0, label 0
    targets[keys.Map.SHORT_OFFSETS][0, 1, 0, 2] = [4.0, 0.0]
    targets[keys.Map.SHORT_WEIGHTS][0, 1, 0, 2] = 1.0                              # error (0, 4)
    targets[keys.Map.MID_WEIGHTS][0, 0, 0, 7] = 1.0                                # error (32, 64)
    targets[keys.Map.LONG_WEIGHTS][0, 2, 1, 16] = 1.0                              # error (-8, 0)
    losses = personlab_losses(_as_tensors(predictions), _as_tensors(targets))
    expected = {keys.Loss.HEATMAP: (_logistic(3, 1) + _logistic(0, 0)) / 2,
                keys.Loss.SEGMENTATION: _logistic(0, 0),
                keys.Loss.SHORT: 4 / 32, keys.Loss.MID: 96 / 32, keys.Loss.LONG: 8 / 32}
    expected[keys.Loss.TOTAL] = sum(w * expected[k] for w, k in zip((4, 2, 1, 0.25, 0.125), LOSS_KEYS))
    assert set(losses) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(losses[key], value, rtol=1e-5, err_msg=key)


def test_auxiliary_terms_and_weighting():
    predictions = {**_predictions(3, 3), **_predictions(3, 3, keys.Prediction.AUXILIARY_PREFIX)}
    predictions[keys.Prediction.AUXILIARY_PREFIX + keys.Prediction.SHORT_OFFSETS][..., 0] = 16.0   # error 16 px in x everywhere
    targets = _targets(3, 3)
    targets[keys.Map.SHORT_WEIGHTS][:] = 1.0
    targets[keys.Map.HEATMAP_WEIGHTS][:] = 1.0                                     # log 2 for main and auxiliary
    losses = personlab_losses(_as_tensors(predictions), _as_tensors(targets), loss_weights=PersonLabLossWeights(),
                              auxiliary_weight=0.5)
    np.testing.assert_allclose(losses[keys.Loss.SHORT], 0.0)
    np.testing.assert_allclose(losses[keys.Prediction.AUXILIARY_PREFIX + keys.Loss.SHORT], 0.5)
    np.testing.assert_allclose(losses[keys.Prediction.AUXILIARY_PREFIX + keys.Loss.HEATMAP], np.log(2), rtol=1e-6)
    np.testing.assert_allclose(losses[keys.Loss.TOTAL], 4 * np.log(2) + 0.5 * (4 * np.log(2) + 0.5), rtol=1e-6)


def test_empty_valid_set_gives_zero_and_finite_gradients():
    predictions = {k: tf.Variable(v, dtype=tf.float32) for k, v in _predictions(2, 2).items()}
    targets = _as_tensors(_targets(3, 3))                                        # all weights 0
    with tf.GradientTape() as tape:
        losses = personlab_losses(predictions, targets)
    for key, value in losses.items():
        assert value.numpy() == 0.0, key
    for grad in tape.gradient(losses[keys.Loss.TOTAL], list(predictions.values())):
        assert grad is not None and np.all(np.isfinite(grad.numpy()))
