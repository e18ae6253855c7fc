"""Tests of the recurrent offset refinement (Eq. 2 and Eq. 5) on hand-made fields."""

import numpy as np
import tensorflow as tf

from personlab_tf.skeleton import COCO17
from personlab_tf.tasks.personlab.refine import (LongRangeRefinement, MidRangeRefinement, cell_positions, gated_step,
                                                 refine_long_offsets, refine_mid_offsets)

OS = 8
EDGE_TARGETS = [target for _, target in COCO17.directed_edges]
SIZE = 5  # 5x5 cells = input pixels 0..32
# A known position y_k (x, y) of every keypoint, inside the grid and off the cell centres.
KEYPOINTS = np.stack([3.0 + 1.5 * np.arange(COCO17.num_keypoints), 29.0 - 1.25 * np.arange(COCO17.num_keypoints)], axis=-1)


def _positions():
    return cell_positions(tf.zeros([1, SIZE, SIZE, 1, 2]), OS)  # [h, w, 1, 2]


def _short_to_keypoints():
    """The ideal short-range field S_k(x) = y_k - x everywhere, [1, h, w, K, 2]."""
    return (tf.constant(KEYPOINTS, tf.float32) - _positions())[tf.newaxis]


def test_cell_positions():
    positions = _positions().numpy()
    assert positions.shape == (SIZE, SIZE, 1, 2)
    np.testing.assert_array_equal(positions[2, 3, 0], [24, 16])  # cell (i, j) = (2, 3) is (x, y) = (3 os, 2 os)


def test_mid_refinement_lands_on_target_keypoint():
    rng = np.random.default_rng(0)
    # Raw mid offsets: anything that stays inside the grid, x + M in [0, 32].
    positions = _positions().numpy()
    reach = rng.uniform(0, 32, size=(1, SIZE, SIZE, COCO17.num_edges, 2))
    mid = tf.constant(reach - positions, tf.float32)
    refined = refine_mid_offsets(mid, _short_to_keypoints(), EDGE_TARGETS, OS, steps=2)
    targets = KEYPOINTS[[target for _, target in COCO17.directed_edges]]  # [E, 2]
    np.testing.assert_allclose((refined + _positions())[0].numpy(), np.broadcast_to(targets, refined.shape[1:]),
                               atol=1e-4)


def test_mid_one_step_by_hand():
    # Constant short field S_l = (1, -2) for all l: one step adds it to every mid offset.
    mid = tf.random.uniform([1, SIZE, SIZE, COCO17.num_edges, 2], -40, 40)
    short = tf.broadcast_to(tf.constant([1.0, -2.0]), [1, SIZE, SIZE, COCO17.num_keypoints, 2])
    np.testing.assert_allclose(refine_mid_offsets(mid, short, EDGE_TARGETS, OS, steps=1), mid + [1.0, -2.0], atol=1e-5)


def test_zero_steps_are_identity():
    mid = tf.random.normal([1, SIZE, SIZE, COCO17.num_edges, 2])
    long = tf.random.normal([1, SIZE, SIZE, COCO17.num_keypoints, 2])
    short = tf.random.normal([1, SIZE, SIZE, COCO17.num_keypoints, 2])
    np.testing.assert_array_equal(refine_mid_offsets(mid, short, EDGE_TARGETS, OS, steps=0), mid)
    np.testing.assert_array_equal(refine_long_offsets(long, short, OS, 0, 0), long)


def test_long_self_refinement_samples_the_refined_field():
    # Constant field c: after step 1 it is 2c everywhere, after step 2 4c (3c if the raw field were sampled).
    c = tf.constant([0.75, -0.5])
    long = tf.broadcast_to(c, [1, SIZE, SIZE, COCO17.num_keypoints, 2])
    short = tf.zeros_like(long)
    np.testing.assert_allclose(refine_long_offsets(long, short, OS, 1, 0), 2 * long, atol=1e-6)
    np.testing.assert_allclose(refine_long_offsets(long, short, OS, 2, 0), 4 * long, atol=1e-6)


def test_long_refinement_lands_on_keypoint():
    # Long field c = (0.75, -0.5): after the two self steps x + 4c = x + (3, -2). With the ideal short field
    # S_k = y_k - x the first short step lands on y_k where x + (3, -2) is inside the grid, and next to y_k
    # (off by the clamping) on the border; the second short step lands on y_k everywhere.
    long = tf.broadcast_to(tf.constant([0.75, -0.5]), [1, SIZE, SIZE, COCO17.num_keypoints, 2])
    expected = np.broadcast_to(KEYPOINTS, (SIZE, SIZE, COCO17.num_keypoints, 2))
    one_step = (refine_long_offsets(long, _short_to_keypoints(), OS, 2, 1) + _positions())[0].numpy()
    np.testing.assert_allclose(one_step[1:, :-1], expected[1:, :-1], atol=1e-4)  # rows y - 2 >= 0, cols x + 3 <= 32
    assert np.abs(one_step[0] - expected[0]).max() > 1
    two_steps = (refine_long_offsets(long, _short_to_keypoints(), OS, 2, 2) + _positions())[0].numpy()
    np.testing.assert_allclose(two_steps, expected, atol=1e-4)


def test_a_gated_self_step_is_taken_only_when_it_is_short_against_the_offset():
    offsets = tf.constant([[10.0, 0.0], [10.0, 0.0], [0.0, 0.0]])
    steps = tf.constant([[3.0, 4.0], [0.0, 5.5], [1.0, 0.0]])          # |step| 5, 5.5, 1
    np.testing.assert_allclose(gated_step(steps, offsets, 0.5), [[3.0, 4.0], [0.0, 0.0], [0.0, 0.0]])


def test_a_gated_self_step_skips_a_landing_on_another_persons_field():
    """Cells of column 0 point 16 px right (to a keypoint at x = 16); the field around x = 16 belongs to
    another person and points 24 px further right. The literal step reads it and throws the offset to 40 px;
    the gated step (gate 0.5: the step is longer than half the offset) keeps 16."""
    long = np.zeros([1, SIZE, SIZE, COCO17.num_keypoints, 2], np.float32)
    long[:, :, 0, :, 0] = 16.0
    long[:, :, 2, :, 0] = 24.0
    long = tf.constant(long)
    short = tf.zeros_like(long)
    literal = refine_long_offsets(long, short, OS, 1, 0)[0, :, 0, :, 0].numpy()
    gated = refine_long_offsets(long, short, OS, 1, 0, self_gate=0.5)[0, :, 0, :, 0].numpy()
    np.testing.assert_allclose(literal, 40.0)
    np.testing.assert_allclose(gated, 16.0)


def _compiled_calls(function):
    """How many calls the graph of `function` makes to functions XLA must compile."""
    graph = tf.function(function).get_concrete_function().graph.as_graph_def()
    return sum(node.attr["_XlaMustCompile"].b for node in graph.node if "_XlaMustCompile" in node.attr)


def test_the_compiled_refinement_gives_the_plain_values_and_gradients():
    """jit_compile layers in training: the refinement compiled by XLA (a forward and a gradient call per
    layer), with the values
    and the gradients of the plain ops to float rounding; in inference no compiled call (the SavedModel
    runs without XLA). Raw fields that move points across cells and off the grid's border."""
    generator = tf.random.Generator.from_seed(0)
    mid = tf.Variable(generator.normal([2, SIZE, SIZE, COCO17.num_edges, 2]) * 12)
    long = tf.Variable(generator.normal([2, SIZE, SIZE, COCO17.num_keypoints, 2]) * 16)
    short = tf.Variable(generator.normal([2, SIZE, SIZE, COCO17.num_keypoints, 2]) * 4)
    mid_layer, long_layer = MidRangeRefinement(OS, EDGE_TARGETS, 2, jit_compile=True), LongRangeRefinement(OS, 2, 2, jit_compile=True)

    def values_and_gradients(training):
        with tf.GradientTape() as tape:
            refined = [mid_layer(mid, short, training=training), long_layer(long, short, training=training)]
            loss = sum(tf.reduce_sum(tf.abs(field - 1.0)) for field in refined)
        return refined + tape.gradient(loss, [mid, long, short])

    assert _compiled_calls(lambda: values_and_gradients(True)) == 4
    assert _compiled_calls(lambda: values_and_gradients(False)) == 0
    compiled = tf.function(lambda: values_and_gradients(True))()
    plain = values_and_gradients(False)
    for name, a, b in zip(("mid", "long", "d mid", "d long", "d short"), compiled, plain):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3, err_msg=name)
