"""Matching (personlab_tf/tasks/parts/matching.py): projections, the LP solver, the Hungarian and greedy matchings."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from personlab_tf.tasks.parts import matching
from personlab_tf.tasks.parts.assignment_check import agreement, exact_matching, random_score_matrices


rounded_lp = tf.function(matching.rounded_lp_assignment)   # the EVALUATION settings: traced, not eager


def ones(shape):
    return tf.ones(shape, tf.float32)


def test_row_projection_is_the_half_space_projection():
    # Row 0 sums to 1.6: each of its 2 valid entries loses 0.3; row 1 (sum 0.5) is feasible and unchanged;
    # the padded third column stays 0.
    x = tf.constant([[0.9, 0.7, 0.0], [0.2, 0.3, 0.0]])
    valid = tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    counts = tf.constant([[2.0], [2.0]])
    np.testing.assert_allclose(matching.project_rows(x, valid, counts), [[0.6, 0.4, 0.0], [0.2, 0.3, 0.0]], atol=1e-6)


def test_column_projection_and_box():
    x = tf.constant([[0.9, -0.2], [0.6, 1.4]])
    valid = ones([2, 2])
    np.testing.assert_allclose(matching.project_columns(x, valid, tf.constant([[2.0, 2.0]])),
                               [[0.65, -0.3], [0.35, 1.3]], atol=1e-6)
    np.testing.assert_allclose(matching.project_box(x, valid), [[0.9, 0.0], [0.6, 1.0]])


def test_dykstra_finds_the_projection_onto_the_intersection():
    # The projection of (1, 1) onto {x1 + x2 <= 1 (row), 0 <= x <= 1} is (0.5, 0.5); of (2, -1) it is (1, 0).
    valid = ones([1, 1, 2])
    for point, expected in (([1.0, 1.0], [0.5, 0.5]), ([2.0, -1.0], [1.0, 0.0])):
        projected = matching.dykstra_projection(tf.constant([[point]]), valid, sweeps=50)
        np.testing.assert_allclose(projected[0, 0], expected, atol=1e-4)


def test_solver_on_a_hand_made_matrix():
    # Greedy would take 0.9 (row 0 - column 0) and be left with 0.1; the optimum is 0.8 + 0.8.
    scores = tf.constant([[[0.9, 0.8], [0.8, 0.1]]])
    np.testing.assert_array_equal(rounded_lp(scores, tf.ones([1, 2, 2], tf.bool))[0], [[False, True], [True, False]])
    np.testing.assert_array_equal(matching.hungarian_assignment(scores, tf.ones([1, 2, 2], tf.bool))[0],
                                  [[False, True], [True, False]])
    np.testing.assert_array_equal(matching.greedy_assignment(scores, tf.ones([1, 2, 2], tf.bool))[0],
                                  [[True, False], [False, True]])


def test_hungarian_respects_the_valid_pairs_and_never_matches_non_positive_scores():
    # With every pair allowed the optimum is 0.95 (2, 1) + 0.6 (1, 0)
    # = 1.55; without (2, 1) it is 0.9 (0, 1) + 0.6 (1, 0) = 1.5.
    scores = tf.constant([[0.5, 0.9], [0.6, 0.0], [0.4, 0.95]])
    every = tf.ones([3, 2], tf.bool)
    np.testing.assert_array_equal(matching.hungarian_assignment(scores, every), [[0, 0], [1, 0], [0, 1]])
    without = tf.constant([[True, True], [True, True], [True, False]])
    np.testing.assert_array_equal(matching.hungarian_assignment(scores, without), [[0, 1], [1, 0], [0, 0]])
    # Zero, negative and NaN scores are no connection (the LP leaves them at 0 too); padding is never matched.
    np.testing.assert_array_equal(
        matching.hungarian_assignment(tf.constant([[0.0, -1.0, 0.7], [-0.5, float("nan"), 0.2]]), tf.constant(
            [[True, True, False], [True, True, True]])), [[0, 0, 0], [0, 0, 1]])


def test_padding_stays_zero_and_rectangular_matrices_match_every_row():
    scores = tf.constant([[[0.2, 0.9, 0.5, 7.0], [0.6, 0.8, 0.1, 7.0], [7.0, 7.0, 7.0, 7.0]]])
    valid = tf.constant([[[True, True, True, False], [True, True, True, False], [False] * 4]])
    x = tf.function(matching.solve_assignment)(scores, valid)
    assert np.all(x.numpy()[~valid.numpy()] == 0.0)
    np.testing.assert_array_equal(matching.round_assignment(x)[0, :2, :3], [[False, True, False], [True, False, False]])


def test_exact_matching_of_a_rectangular_matrix():
    scores = np.zeros((3, 3), np.float32)
    valid = np.zeros((3, 3), bool)
    scores[:2, :3] = [[0.2, 0.9, 0.5], [0.6, 0.8, 0.1]]
    valid[:2, :3] = True
    np.testing.assert_array_equal(exact_matching(scores, valid, linear_sum_assignment),
                                  [[False, True, False], [True, False, False], [False, False, False]])


def test_hungarian_matcher_is_the_exact_assignment_of_1000_random_score_matrices():
    scores, valid = random_score_matrices(1000, 20, seed=0)
    matchings = tf.function(matching.hungarian_assignment)(scores, valid).numpy()
    assert agreement(matchings, scores, valid, linear_sum_assignment) == 1.0


def test_hungarian_matcher_reaches_the_optimum_weight_with_missing_pairs_and_negative_scores():
    # Sparse valid pairs and scores of both signs: the optimum is scipy's on w = s where valid and s > 0, else 0
    # (equal-weight optima may differ, so the weights are compared), and the result is a matching of such pairs.
    rng = np.random.default_rng(3)
    scores = rng.normal(0.3, 0.5, (200, 12, 9)).astype(np.float32)
    valid = rng.random((200, 12, 9)) < 0.4
    chosen = matching.hungarian_assignment(scores, valid).numpy()
    for index in range(200):
        weights = np.where(valid[index] & (scores[index] > 0), scores[index], 0.0)
        rows, columns = linear_sum_assignment(weights, maximize=True)
        assert weights[chosen[index]].sum() == pytest.approx(weights[rows, columns].sum(), abs=1e-5)
        assert (weights[chosen[index]] > 0).all()
        assert chosen[index].sum(axis=0).max() <= 1 and chosen[index].sum(axis=1).max() <= 1
    # Leading dimensions are independent matrices.
    batched = matching.hungarian_assignment(scores[:6].reshape(2, 3, 12, 9), valid[:6].reshape(2, 3, 12, 9))
    np.testing.assert_array_equal(batched.numpy().reshape(6, 12, 9), chosen[:6])


def test_hungarian_matcher_runs_in_a_reloaded_saved_model(tmp_path):
    module = tf.Module()
    module.match = tf.function(matching.hungarian_assignment, input_signature=[
        tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None, None, None], tf.bool)])
    tf.saved_model.save(module, str(tmp_path))
    scores, valid = random_score_matrices(20, 8, seed=4)
    np.testing.assert_array_equal(tf.saved_model.load(str(tmp_path)).match(scores, valid),
                                  matching.hungarian_assignment(scores, valid))


@pytest.mark.slow
def test_rounded_lp_solution_equals_the_hungarian_assignment_on_random_score_matrices():
    scores, valid = random_score_matrices(200, 20, seed=0)
    matchings = rounded_lp(scores, valid).numpy()
    assert agreement(matchings, scores, valid, linear_sum_assignment) >= 0.99


def test_greedy_matching_is_a_matching_that_takes_the_best_pair_first():
    scores, valid = random_score_matrices(50, 8, seed=1)
    chosen = matching.greedy_assignment(scores, valid).numpy()
    for index in range(50):
        assert not chosen[index][~valid[index]].any()
        assert chosen[index].sum(axis=0).max() <= 1 and chosen[index].sum(axis=1).max() <= 1
        best = np.unravel_index(np.argmax(np.where(valid[index], scores[index], -1)), scores[index].shape)
        assert chosen[index][best]
        # Maximal: no valid pair has both its row and its column free.
        free = ~chosen[index].any(axis=1)[:, None] & ~chosen[index].any(axis=0)[None, :]
        assert not (free & valid[index]).any()


def test_gradients_are_finite_and_reach_the_scores():
    scores, valid = random_score_matrices(8, 6, seed=2)
    scores = tf.Variable(scores)
    target = tf.constant(np.stack([np.eye(6, dtype=np.float32)] * 8))
    # The training settings (unrolled) and a PGD loop long enough to run in a tf.while_loop.
    for settings in (matching.TRAINING, matching.SolverSettings(matching.UNROLLED_STEPS + 5, 2)):
        with tf.GradientTape() as tape:
            x = matching.solve_assignment(scores, valid, settings)
            loss = tf.reduce_sum(tf.square(x - target) * tf.cast(valid, tf.float32))
        gradient = tape.gradient(loss, scores).numpy()
        assert np.all(np.isfinite(gradient))
        assert np.abs(gradient[valid]).sum() > 0
        assert np.all(gradient[~valid] == 0)
