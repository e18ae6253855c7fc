"""Tests of the atrous ResNet backbones: parameter counts, grids, frozen batch norm, weight loading."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf.model.layers import FusedBatchNormalization
from personlab_tf.model.resnet import BN_EPSILON, OUTPUT_STRIDES, build_resnet, load_backbone_weights
from personlab_tf.train.trainer import precision_policy

from model_fixtures import write_applications_h5

# Published parameter counts of keras.applications ResNet-101/152 with include_top=False.
PUBLISHED_PARAMS = {"resnet101": 42_658_176, "resnet152": 58_370_944}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
def test_parameter_count(name, output_stride):
    assert build_resnet(name, output_stride).count_params() == PUBLISHED_PARAMS[name]


@pytest.mark.slow
def test_same_layers_as_keras_applications():
    """Same weighted layers, names, order and shapes as keras.applications.ResNet101: its .h5 loads."""
    def weighted(model):
        return [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers if layer.weights]

    reference = keras.applications.ResNet101(weights=None, include_top=False)
    assert weighted(build_resnet("resnet101", 8)) == weighted(reference)


@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
@pytest.mark.parametrize("size", [(129, 65), (100, 37)])
def test_output_sizes(output_stride, size):
    features, middle = build_resnet("resnet_tiny", output_stride)(tf.zeros((1,) + size + (3,)))
    cells = [(s - 1) // output_stride + 1 for s in size]
    assert features.shape == (1, *cells, 256)
    middle_stride = min(16, output_stride)
    assert middle.shape == (1, *[(s - 1) // middle_stride + 1 for s in size], 128)


def _symmetrise(model):
    """Makes every conv kernel left-right symmetric (the network then commutes with a horizontal flip)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.numpy()
            layer.kernel.assign((kernel + kernel[:, ::-1]) / 2)


@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
def test_grids_are_corner_aligned(output_stride):
    """Cell (i, j) is input pixel (os j, os i): on an input of n os + 1 pixels a horizontal flip of the
    input flips the features exactly (cell j <-> n - j), which fails for any other alignment."""
    model = build_resnet("resnet_tiny", output_stride)
    _symmetrise(model)
    images = tf.random.uniform([1, 65, 129, 3], 0, 255, seed=1)
    features, middle = model(images)
    flipped_features, flipped_middle = model(images[:, :, ::-1])
    np.testing.assert_allclose(flipped_features[:, :, ::-1], features, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(flipped_middle[:, :, ::-1], middle, rtol=1e-4, atol=1e-4)


def test_batch_norm_is_frozen():
    model = build_resnet("resnet_tiny", 16)
    batch_norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert batch_norms and all(not layer.trainable and not layer.trainable_weights for layer in batch_norms)
    rng = np.random.default_rng(0)
    for layer in batch_norms:  # statistics far from the batch ones
        layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape))
        layer.moving_variance.assign(rng.uniform(0.5, 2, size=layer.moving_variance.shape))
    images = tf.random.uniform([2, 65, 65, 3], 0, 255, seed=2)
    for train, infer in zip(model(images, training=True), model(images, training=False)):
        np.testing.assert_allclose(train, infer, rtol=1e-5, atol=1e-5)


def test_preprocessing_accepts_uint8():
    model = build_resnet("resnet_tiny", 32)
    images = np.random.default_rng(0).integers(0, 256, (1, 65, 65, 3)).astype(np.uint8)
    np.testing.assert_allclose(model(images)[0], model(images.astype(np.float32))[0], rtol=1e-5, atol=1e-5)


def test_load_applications_weights_by_name(tmp_path):
    source = build_resnet("resnet_tiny", 32)
    for weight in source.weights:
        weight.assign(np.random.default_rng(len(weight.path)).normal(size=weight.shape))
    path = str(tmp_path / "resnet_tiny_notop.h5")
    top = ("predictions", [("kernel", np.zeros([256, 10])), ("bias", np.zeros([10]))])  # ignored
    write_applications_h5(source, path, extra_layer=top)
    target = build_resnet("resnet_tiny", 8)  # another stride, same weights
    load_backbone_weights(target, path)
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(a, b)


def test_load_rejects_a_file_of_another_network(tmp_path):
    path = str(tmp_path / "other.h5")
    write_applications_h5(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")]), path)
    with pytest.raises(ValueError, match="lacks weights"):
        load_backbone_weights(build_resnet("resnet_tiny", 16), path)


@pytest.mark.parametrize("policy, tolerance", [(None, 1e-5), ("mixed_bfloat16", 1e-2)])
def test_fused_batch_norm_is_keras_batch_norm(policy, tolerance):
    """FusedBatchNormalization (the backbones' batch norm) gives Keras's outputs, gradients (inputs, gamma,
    beta) and moving statistics in training, and Keras's outputs at inference, float32 and bfloat16."""
    images = tf.random.stateless_normal([4, 9, 11, 6], [0, 1]) * 3.0 + 1.0
    cotangent = tf.random.stateless_normal(images.shape, [2, 3])
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, 6).astype(np.float32) for _ in range(4)]
    with precision_policy(policy):
        layers = [FusedBatchNormalization(momentum=0.5, epsilon=BN_EPSILON),
                  keras.layers.BatchNormalization(momentum=0.5, epsilon=BN_EPSILON)]
        results = []
        for layer in layers:
            layer.build(images.shape)
            layer.set_weights(weights)
            inputs = tf.cast(images, layer.compute_dtype)
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = tf.cast(layer(inputs, training=True), tf.float32)
                loss = tf.reduce_sum(outputs * cotangent)
            gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
            moving = [variable.numpy() for variable in (layer.moving_mean, layer.moving_variance)]
            inference = tf.cast(layer(inputs, training=False), tf.float32)
            results.append([outputs] + [tf.cast(g, tf.float32) for g in gradients] + moving + [inference])
    assert layers[0].compute_dtype == layers[1].compute_dtype
    for fused, reference in zip(*results):
        scale = np.abs(np.asarray(reference)).max()
        np.testing.assert_allclose(np.asarray(fused), np.asarray(reference), atol=tolerance * scale)
    assert not np.allclose(results[1][5], weights[2])  # the moving mean did move
