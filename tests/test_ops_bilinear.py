"""Tests of personlab_tf.ops.bilinear on hand-made 3x3 fields."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf.ops.bilinear import bilinear_sample, bilinear_sample_per_field, resize_aligned, upsample_to_stride

# A 3x3 single-channel field, field[row, col]; not affine, so interpolation errors would show.
FIELD = np.array([[0., 1., 4.],
                  [2., 8., 3.],
                  [5., 7., 6.]])


def _field(dtype=tf.float64):
    return tf.constant(FIELD[np.newaxis, :, :, np.newaxis], dtype)


def test_sample_hand_values():
    # Output stride 2: cell (i, j) is pixel (x, y) = (2 j, 2 i).
    points = tf.constant([[[0.5, 1.0],     # (u, v) = (0.25, 0.5): .5 * (0 * .75 + 1 * .25) + .5 * (2 * .75 + 8 * .25)
                           [2.0, 2.0],     # cell (1, 1) exactly
                           [4.0, 4.0],     # last corner
                           [3.0, 0.0],     # (u, v) = (1.5, 0): between 1 and 4
                           [10.0, -3.0],   # outside: clamped to (u, v) = (2, 0)
                           [-5.0, 3.0]]],  # outside: clamped to (u, v) = (0, 1.5): between 2 and 5
                         tf.float64)
    values = bilinear_sample(_field(), points, output_stride=2)
    assert values.shape == (1, 6, 1)
    np.testing.assert_allclose(values[0, :, 0], [1.875, 8.0, 6.0, 2.5, 4.0, 3.5])


def test_sample_keeps_point_dimensions_and_channels():
    field = tf.concat([_field(), 10 * _field()], axis=-1)          # [1, 3, 3, 2]
    points = tf.fill([1, 2, 3, 4, 2], tf.constant(2.0, tf.float64))  # all at cell (1, 1)
    values = bilinear_sample(field, points, output_stride=2)
    assert values.shape == (1, 2, 3, 4, 2)
    np.testing.assert_allclose(values[..., 0], 8.0)
    np.testing.assert_allclose(values[..., 1], 80.0)


def test_sample_no_points():
    values = bilinear_sample(_field(), tf.zeros([1, 0, 2], tf.float64), output_stride=2)
    assert values.shape == (1, 0, 1)


def test_gradient_wrt_points_hand_and_finite_differences():
    points = tf.Variable([[[0.5, 1.0], [1.3, 2.7], [3.1, 0.6], [2.2, 3.9]]], dtype=tf.float64)
    with tf.GradientTape() as tape:
        values = bilinear_sample(_field(), points, output_stride=2)
    grad = tape.gradient(values, points).numpy()
    # Hand: at (u, v) = (.25, .5), dF/du = .5 (1 - 0) + .5 (8 - 2) = 3.5, dF/dv = .75 (2 - 0) + .25 (8 - 1)
    # = 3.25; per pixel divide by the stride 2.
    np.testing.assert_allclose(grad[0, 0], [1.75, 1.625])
    eps = 1e-6
    for p in range(points.shape[1]):
        for c in range(2):
            delta = np.zeros(points.shape)
            delta[0, p, c] = eps
            plus = bilinear_sample(_field(), points + delta, output_stride=2)[0, p, 0]
            minus = bilinear_sample(_field(), points - delta, output_stride=2)[0, p, 0]
            np.testing.assert_allclose(grad[0, p, c], (plus - minus) / (2 * eps), rtol=1e-6)


def test_gradient_wrt_field():
    field = tf.Variable(_field())
    with tf.GradientTape() as tape:
        value = bilinear_sample(field, tf.constant([[[0.5, 1.0]]], tf.float64), output_stride=2)
    grad = tape.gradient(value, field).numpy()[0, :, :, 0]
    # (a, b) = (.25, .5): corner weights (1-a)(1-b), a(1-b), (1-a)b, ab.
    np.testing.assert_allclose(grad, [[0.375, 0.125, 0.], [0.375, 0.125, 0.], [0., 0., 0.]])


def test_sample_per_field():
    fields = tf.stack([_field(), 10 * _field()], axis=3)            # [1, 3, 3, 2, 1]
    points = tf.constant([[[[0.5, 1.0], [4.0, 4.0]],
                           [[2.0, 2.0], [3.0, 0.0]]]], tf.float64)   # [1, 2, N=2, 2]
    values = bilinear_sample_per_field(fields, points, output_stride=2)
    assert values.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(values[0, :, :, 0], [[1.875, 60.0], [8.0, 25.0]])


def test_resize_aligned_hand_values():
    maps = tf.constant([[[[0.], [1.]], [[2.], [3.]]]])              # [1, 2, 2, 1]
    expected = [[0., .5, 1.], [1., 1.5, 2.], [2., 2.5, 3.]]
    np.testing.assert_allclose(resize_aligned(maps, (3, 3))[0, :, :, 0], expected)
    np.testing.assert_allclose(upsample_to_stride(maps, 16, 8)[0, :, :, 0], expected)
    np.testing.assert_allclose(upsample_to_stride(maps, 8, 8), maps)


def test_resize_offsets_and_gradient():
    offsets = tf.Variable(tf.random.normal([2, 3, 4, 5, 2]))
    with tf.GradientTape() as tape:
        resized = upsample_to_stride(offsets, 32, 8)               # (3 - 1) * 4 + 1, (4 - 1) * 4 + 1
        total = tf.reduce_sum(resized)
    assert resized.shape == (2, 9, 13, 5, 2)
    np.testing.assert_allclose(resized[:, ::4, ::4], offsets, atol=1e-6)  # shared grid points keep values
    assert np.all(tape.gradient(total, offsets).numpy() > 0)


def test_upsample_requires_divisor():
    with pytest.raises(ValueError):
        upsample_to_stride(tf.zeros([1, 2, 2, 1]), 16, 6)


def test_nan_points_read_a_valid_cell_instead_of_failing():
    field = tf.reshape(tf.range(9, dtype=tf.float32), [1, 3, 3, 1])
    points = tf.constant([[[float("nan"), 1.0], [1.0, float("nan")]]])
    values = bilinear_sample(field, points).numpy()
    assert values.shape == (1, 2, 1)
    np.testing.assert_allclose(values[0, :, 0], [3.0, 1.0])
