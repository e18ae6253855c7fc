"""The part-parsing network and its losses (personlab_tf/parts/model.py, layers.py, losses.py)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.parts import losses, part_sets
from personlab_tf.parts.layers import warp_to_finer
from personlab_tf.parts.model import PREDICTION_KEYS, build_parts_model

SIZE = 65      # 32 n + 1: grids of 17, 9, 5, 3 cells at strides 4, 8, 16, 32


def tiny_model(**kwargs):
    return build_parts_model(backbone="resnet_tiny", part_set="synthetic", width=16, freeze_batch_norm=False,
                             radius=8.0, **kwargs)


def images(seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, 255, (2, SIZE, SIZE, 3)), tf.uint8)


def test_output_shapes_and_the_pixel_field():
    model = tiny_model()
    outputs = model(images())
    assert set(outputs) == set(PREDICTION_KEYS)
    assert outputs[keys.PART_LOGITS].shape == (2, 17, 17, part_sets.SYNTHETIC.num_classes)
    assert outputs[keys.HEATMAP_LOGITS].shape == (2, 17, 17, 17)
    assert outputs[keys.SHORT_OFFSETS].shape == (2, 17, 17, 17, 2)
    assert outputs[keys.LIMB_LOGITS].shape == (2, 17, 17, part_sets.NUM_LIMBS)
    for stride, cells in ((4, 17), (8, 9), (16, 5), (32, 3)):
        assert outputs[keys.projection_key(stride)].shape == (2, cells, cells, 2)
    np.testing.assert_allclose(outputs[keys.PROJECTION_FIELD], 4.0 * outputs[keys.projection_key(4)], rtol=1e-6)


def test_zero_flow_warp_is_aligned_upsampling_and_the_flow_moves_the_samples():
    coarse = tf.constant(np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1))
    still = warp_to_finer(coarse, tf.zeros([1, 5, 5, 2])).numpy()[0, ..., 0]
    # Fine cell p reads coarse p / 2: even cells are the coarse values, odd ones their means.
    np.testing.assert_allclose(still[::2, ::2], coarse.numpy()[0, ..., 0])
    np.testing.assert_allclose(still[0, 1], 0.5)
    np.testing.assert_allclose(still[1, 1], 2.0)
    moved = warp_to_finer(coarse, tf.fill([1, 5, 5, 2], 2.0)).numpy()[0, ..., 0]   # +2 fine cells = +1 coarse
    np.testing.assert_allclose(moved[0, 0], coarse.numpy()[0, 1, 1, 0])


def test_gradients_reach_the_flow_and_the_coarse_field_through_the_warping():
    model = tiny_model()
    with tf.GradientTape() as tape:
        field = model(images(), training=True)[keys.projection_key(4)]
        loss = tf.reduce_sum(tf.square(field - 1.0))
    variables = {v.path: v for v in model.trainable_variables}
    gradients = dict(zip(variables, tape.gradient(loss, list(variables.values()))))
    for name in ("dspf_flow2/kernel", "dspf_field5/kernel", "dspf_residual3/kernel"):
        (path,) = [p for p in gradients if p.endswith(name)]
        assert gradients[path] is not None and float(tf.reduce_sum(tf.abs(gradients[path]))) > 0, name


def test_uncertainty_total_formula():
    terms = [tf.constant(2.0), tf.constant(0.5)]
    log_variances = tf.constant([0.0, math.log(4.0)])
    expected = 0.5 * 2.0 + 0.0 + 0.5 * 0.5 / 4.0 + 0.5 * math.log(4.0)
    assert float(losses.uncertainty_total(terms, log_variances)) == pytest.approx(expected)


def empty_targets(batch=2):
    """Targets with nothing valid: every term must be 0, not NaN."""
    grid = 17
    out = {keys.PART_LABELS: tf.zeros([batch, grid, grid], tf.int32), keys.PART_WEIGHTS: tf.zeros([batch, grid, grid]),
           keys.HEATMAPS: tf.zeros([batch, grid, grid, 17]), keys.HEATMAP_WEIGHTS: tf.zeros([batch, grid, grid, 17]),
           keys.SHORT_OFFSETS: tf.zeros([batch, grid, grid, 17, 2]), keys.SHORT_WEIGHTS: tf.zeros([batch, grid, grid, 17]),
           keys.LIMB_HEATMAPS: tf.zeros([batch, grid, grid, part_sets.NUM_LIMBS]),
           keys.LIMB_WEIGHTS: tf.zeros([batch, grid, grid, part_sets.NUM_LIMBS]),
           keys.MATCH_POINTS: tf.zeros([batch, 4, 17, 2]), keys.MATCH_LABELLED: tf.zeros([batch, 4, 17], tf.bool)}
    for stride, cells in ((4, 17), (8, 9), (16, 5), (32, 3)):
        out[keys.projection_key(stride)] = tf.zeros([batch, cells, cells, 2])
        out[keys.projection_weights_key(stride)] = tf.zeros([batch, cells, cells])
    return out


def test_empty_valid_sets_give_zero_losses():
    model = tiny_model(matching_loss=True)
    terms = model.compute_losses(model(images()), empty_targets())
    for key in losses.loss_keys(True):
        assert float(terms[key]) == 0.0, key
    assert np.isfinite(float(terms[keys.TOTAL_LOSS]))


def test_matching_loss_trains_the_limb_heatmaps():
    # Two persons' left shoulder -> left elbow limbs; the loss must push the limb logits.
    points = np.zeros([1, 2, 17, 2], np.float32)
    labelled = np.zeros([1, 2, 17], bool)
    points[0, 0, [5, 7]] = [(8, 8), (8, 40)]
    points[0, 1, [5, 7]] = [(40, 8), (40, 40)]
    labelled[0, :, [5, 7]] = True
    logits = tf.Variable(tf.zeros([1, 17, 17, part_sets.NUM_LIMBS]))
    with tf.GradientTape() as tape:
        loss = losses.matching_loss(logits, tf.constant(points), tf.constant(labelled), 4)
    gradient = tape.gradient(loss, logits).numpy()
    assert np.isfinite(float(loss)) and float(loss) > 0
    arm = part_sets.LIMBS.index((5, 7))
    assert np.abs(gradient[..., arm]).sum() > 0
    others = [index for index in range(part_sets.NUM_LIMBS) if index != arm]
    assert np.abs(gradient[..., others]).sum() == 0


def test_fit_lowers_the_loss_on_real_targets(tmp_path):
    from personlab_tf.data import synthetic, writer
    from personlab_tf.parts import pipeline
    import keras
    data = tmp_path / "data"
    synthetic.generate_dataset(str(data), 2, seed=0, min_side=96, max_side=128, scene=synthetic.PARTS_SCENE)
    writer.convert(str(data / synthetic.ANNOTATIONS_FILE), str(data / synthetic.IMAGES_DIR), str(tmp_path / "r"),
                   part_labels_dir=str(data / synthetic.PART_LABELS_DIR), num_part_classes=9)
    dataset = pipeline.build_parts_dataset(writer.shard_paths(str(tmp_path / "r"), 1), 2, True, crop_size=SIZE,
                                           disk_radius=8.0, seed=0, min_scale=1.0, max_scale=1.0, max_translation=0.0,
                                           flip_probability=0.0)
    model = tiny_model(matching_loss=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    first = model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0).history[keys.TOTAL_LOSS][-1]
    last = model.fit(dataset, steps_per_epoch=40, epochs=1, verbose=0).history
    assert set(losses.loss_keys(True)) < set(last)
    assert last[keys.TOTAL_LOSS][-1] < first
    # The uncertainty weights are trained too (they start at 0).
    assert any(v is model.uncertainty.log_variances for v in model.trainable_variables)
    assert np.abs(model.uncertainty.log_variances.numpy()).max() > 0
