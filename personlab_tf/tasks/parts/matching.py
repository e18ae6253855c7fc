"""Bipartite matching of limb candidates (second paper §3.3, Eqs. 9-16; docs/parts.md).

For one limb with m candidates of its first keypoint type and n of its second, and connection scores
s [m, n], the maximum-weight bipartite matching (Eqs. 9-12) is relaxed to the linear programme

    min_x  -s^T x    s.t.  sum_j x_ij <= 1,  sum_i x_ij <= 1,  0 <= x_ij <= 1          (Eqs. 13-14)

and solved by projected gradient descent, x <- P_C(x + alpha s) (Eq. 15), where the projection onto
the feasible set C (Eq. 16) is computed by Dykstra's cyclic projections onto its three convex parts:
the row constraints, the column constraints and the box. Everything is TF ops on batches of padded
matrices, differentiable with respect to the scores, so a loss on the assignment trains the network
that produced them (the matching loss of `parts.losses`).

Decoding needs no gradient, only the matching: `MATCHERS` names the three ways to get it, "hungarian"
(the exact maximum-weight matching, `hungarian_assignment`: the optimum of the same LP, whose feasible set
has only integral vertices), "lp" (the relaxation above at the EVALUATION settings, rounded) and "greedy"
(the paper's Table 5 ablation); `match` applies one.

Shapes: scores [..., m, n] with a `valid` mask of the same shape (False for padding rows/columns);
padded entries stay exactly 0 (LP) or False (matchings).
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class SolverSettings:
    """Iteration counts and step of the solver (docs/parts.md: training 10 x 5, evaluation 400 x 50, step 0.1).

    Attributes:
      pgd_steps: projected gradient steps (Eq. 15).
      dykstra_sweeps: Dykstra cycles per projection (Eq. 16).
      step_size: alpha.
      accelerated: Nesterov's extrapolation (FISTA, Beck & Teboulle 2009): the gradient step starts from
        y_t = x_t + t / (t + 3) (x_t - x_{t-1}) instead of x_t; the iteration is otherwise Eq. 15. Plain
        PGD (False) is the paper's literal form; docs/parts.md has how often each agrees with the exact
        assignment.
    """

    pgd_steps: int
    dykstra_sweeps: int
    step_size: float = 0.1
    accelerated: bool = True


TRAINING = SolverSettings(pgd_steps=10, dykstra_sweeps=5)
UNROLLED_STEPS = 20
EVALUATION = SolverSettings(pgd_steps=400, dykstra_sweeps=50)


def project_rows(x: tf.Tensor, valid: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """Projection onto {sum_j x_ij <= 1 for every row i} (the rows are independent half-spaces).

    Row i loses max(0, sum_j x_ij - 1) / n_i on each of its n_i valid entries, the Euclidean
    projection onto the half-space a^T x <= 1 with a the row's indicator (|a|^2 = n_i).

    Args:
      x: [..., m, n] float (0 on padding); valid: [..., m, n] float in {0, 1};
      count: [..., m, 1] max(n_i, 1), the valid entries of each row.
    """
    return x - valid * tf.nn.relu(tf.reduce_sum(x, axis=-1, keepdims=True) - 1.0) / count


def project_columns(x: tf.Tensor, valid: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """Projection onto {sum_i x_ij <= 1 for every column j}; count: [..., 1, n]; see `project_rows`."""
    return x - valid * tf.nn.relu(tf.reduce_sum(x, axis=-2, keepdims=True) - 1.0) / count


def project_box(x: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Projection onto {0 <= x_ij <= 1}, with padded entries held at 0."""
    return tf.clip_by_value(x, 0.0, 1.0) * valid


def dykstra_projection(x: tf.Tensor, valid: tf.Tensor, sweeps: int) -> tf.Tensor:
    """P_C(x) of Eq. 16 by Dykstra's cyclic projection onto rows, columns and box, `sweeps` cycles.

    Dykstra keeps one correction p_i per set: y = P_i(x + p_i), p_i <- x + p_i - y, x <- y. Unlike
    plain alternating projections it converges to the projection onto the intersection, not just to
    some point in it. Unrolled (a Python loop), so it is differentiable by ordinary backpropagation.

    Args:
      x: [..., m, n] float, 0 on padding; valid: [..., m, n] float in {0, 1}; sweeps: number of cycles.

    Returns:
      [..., m, n], the (approximate) projection.
    """
    row_count = tf.maximum(tf.reduce_sum(valid, axis=-1, keepdims=True), 1.0)
    column_count = tf.maximum(tf.reduce_sum(valid, axis=-2, keepdims=True), 1.0)
    projections = (lambda y: project_rows(y, valid, row_count), lambda y: project_columns(y, valid, column_count),
                   lambda y: project_box(y, valid))
    corrections = [tf.zeros_like(x) for _ in projections]
    for _ in range(sweeps):
        for index, project in enumerate(projections):
            shifted = x + corrections[index]
            x = project(shifted)
            corrections[index] = shifted - x
    return x


def solve_assignment(scores: tf.Tensor, valid: tf.Tensor, settings: SolverSettings = EVALUATION) -> tf.Tensor:
    """Relaxed assignment of Eqs. 13-14 by projected gradient descent, x <- P_C(x + alpha s) (Eq. 15).

    Starts from x = 0 (with `settings.accelerated`, the step starts from the extrapolated point). The
    Dykstra sweeps are unrolled; so are the PGD steps when there are at most UNROLLED_STEPS of them (the
    training settings: a `tf.while_loop` around a backpropagated loop body trips a Grappler rewrite of
    TensorFlow 2.21, "AlreadyExistsError ... AddOpsRewrite ... tmp_var"), otherwise they run in a
    `tf.while_loop` so that the graph stays small at the evaluation settings. Gradients flow through both.

    Args:
      scores: [..., m, n] float connection scores s (padding: any value).
      valid: [..., m, n] bool, real (row, column) pairs.
      settings: `SolverSettings` (TRAINING or EVALUATION).

    Returns:
      [..., m, n] float32 in [0, 1], exactly 0 on padding.
    """
    mask = tf.cast(valid, tf.float32)
    step = settings.step_size * tf.cast(scores, tf.float32) * mask

    def body(index, x, previous):
        start = x
        if settings.accelerated:
            t = tf.cast(index, tf.float32)
            start = x + t / (t + 3.0) * (x - previous)
        return index + 1, dykstra_projection(start + step, mask, settings.dykstra_sweeps), x

    zeros = tf.zeros_like(mask)
    if settings.pgd_steps <= UNROLLED_STEPS:
        state = (0, zeros, zeros)
        for _ in range(settings.pgd_steps):
            state = body(*state)
        return state[1]
    _, x, _ = tf.while_loop(lambda index, *_: index < settings.pgd_steps, body, (tf.constant(0), zeros, zeros))
    return x


def round_assignment(x: tf.Tensor, threshold: float = 0.5) -> tf.Tensor:
    """The boolean matching of a relaxed solution: x_ij > threshold (at most one per row and column
    when x is feasible and threshold >= 0.5)."""
    return x > threshold


def greedy_assignment(scores: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """The greedy alternative (the ablation of the paper's Table 5): connections taken by descending
    score, each kept when neither of its candidates is taken yet.

    Args:
      scores: [..., m, n] float; valid: [..., m, n] bool.

    Returns:
      [..., m, n] bool matching.
    """
    scores = tf.convert_to_tensor(scores, tf.float32)
    shape = tf.shape(scores)
    m, n = shape[-2], shape[-1]
    flat_scores = tf.reshape(tf.where(valid, scores, -float("inf")), [-1, m * n])
    order = tf.argsort(flat_scores, axis=-1, direction="DESCENDING")
    batch = tf.shape(flat_scores)[0]

    def body(index, rows_used, columns_used, chosen):
        cell = order[:, index]
        row, column = cell // n, cell % n
        score = tf.gather(flat_scores, cell, batch_dims=1)
        free = (~tf.gather(rows_used, row, batch_dims=1)) & (~tf.gather(columns_used, column, batch_dims=1))
        take = free & (score > -float("inf"))
        rows_used |= tf.one_hot(row, m, on_value=True, off_value=False) & take[:, tf.newaxis]
        columns_used |= tf.one_hot(column, n, on_value=True, off_value=False) & take[:, tf.newaxis]
        chosen |= tf.one_hot(cell, m * n, on_value=True, off_value=False) & take[:, tf.newaxis]
        return index + 1, rows_used, columns_used, chosen

    initial = (tf.constant(0), tf.zeros([batch, m], tf.bool), tf.zeros([batch, n], tf.bool),
               tf.zeros([batch, m * n], tf.bool))
    _, _, _, chosen = tf.while_loop(lambda index, *_: index < m * n, body, initial)
    return tf.reshape(chosen, shape)


def hungarian_assignment(scores: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """The exact maximum-weight bipartite matching of Eqs. 9-12, graph ops only (for decoding).

    The LP of Eqs. 13-14 has an integral optimum (its constraint matrix is totally unimodular), so this is
    also the exact solution of the relaxation that `solve_assignment` approximates. Solved as a minimum-cost
    assignment on the square N x N matrix c = -w, N = max(m, n), w_ij = s_ij on valid pairs with s_ij > 0
    and 0 elsewhere: any matching extends to a full assignment by zero pairs, so the optimal assignment
    restricted to w > 0 is a maximum-weight matching.

    Hungarian algorithm with shortest augmenting paths (Kuhn-Munkres in its O(N^3) form with potentials;
    Jonker & Volgenant 1987). Row reduction first: costs c'_ij = max_j w_ij - w_ij >= 0, each row taking a
    column of cost 0 unless an earlier row took it; rows without a positive weight are left out. Every
    other free row is inserted by a Dijkstra search over the reduced costs c'_ij - u_i - v_j >= 0 (0 on
    assigned pairs) from that row to a free column, then the path is flipped; column potentials v are
    kept, a row's u_i is read off its assigned pair. A Dijkstra step advances every matrix of the batch at
    once (a matrix whose search reached a free column moves on to its next free row; a finished matrix
    idles); each `tf.while_loop` iteration makes two steps, which halves the loop's own per-iteration cost.
    At most N (N + 1) steps; 75 for 18 random 20 x 20 matrices of U(0, 1) scores (docs/parts.md).

    Args:
      scores: [..., m, n] float connection scores s.
      valid: [..., m, n] bool, the pairs that may be matched.

    Returns:
      [..., m, n] bool, at most one True per row and per column, only on valid pairs with s_ij > 0
      (non-finite scores are never matched). Between equal optima: the first found.
    """
    scores = tf.convert_to_tensor(scores, tf.float32)
    valid = tf.convert_to_tensor(valid, tf.bool)
    shape = tf.shape(scores)
    m, n = shape[-2], shape[-1]
    usable = valid & (scores > 0.0) & tf.math.is_finite(scores)
    weight = tf.reshape(tf.where(usable, scores, 0.0), [-1, m, n])
    batch = tf.shape(weight)[0]
    size = tf.maximum(m, n)
    weight = tf.pad(weight, [[0, 0], [0, size - m], [0, size - n]])                # [B, N, N]
    rows, columns = tf.range(size), tf.range(size + 1)
    has_edge = tf.reduce_any(weight > 0.0, axis=-1)                                 # [B, N]
    best = tf.argmax(weight, axis=-1, output_type=tf.int32)
    earlier = (best[:, :, tf.newaxis] == best[:, tf.newaxis]) & (rows[:, tf.newaxis] > rows) & has_edge[:, tf.newaxis]
    first = has_edge & ~tf.reduce_any(earlier, axis=-1)
    # Rows 1..N of `cost` are the matrix's rows (row N + 1, all 0, is the padding of `order`); column 0
    # is the search's source, owner[:, 0] the row being inserted. owner[:, j] = row of column j, 0 = free.
    cost = tf.pad(tf.reduce_max(weight, axis=-1, keepdims=True) - weight, [[0, 0], [1, 1], [1, 0]])
    owner = tf.reduce_max(tf.where(first[..., tf.newaxis] & (best[..., tf.newaxis] + 1 == columns),
                                   rows[:, tf.newaxis] + 1, 0), axis=1)              # [B, N + 1]
    free = has_edge & ~first
    count = tf.reduce_sum(tf.cast(free, tf.int32), axis=-1, keepdims=True)           # [B, 1] rows to insert
    order = tf.argsort(tf.cast(~free, tf.int32), axis=-1, stable=True) + 1            # free rows first
    order = tf.pad(order, [[0, 0], [0, 1]], constant_values=size + 1)
    source = tf.equal(columns, 0)
    same = tf.equal(columns[:, tf.newaxis], columns)                                 # [N + 1, N + 1] identity
    infinity = tf.constant(float("inf"))

    def step(inserted, v, owner, predecessor, distance, open_columns, path, column):
        """One Dijkstra step from `column` ([B, 1]) of the row being inserted (the `inserted`-th free row).

        distance: tentative reduced distance of each open column; predecessor: the row it was reached from;
        path[:, j]: the columns on the path from the source to j (j included).
        """
        open_columns &= tf.not_equal(columns, column)
        reached = tf.gather(owner, column, batch_dims=1)                            # [B, 1] row at `column`
        reduced = tf.gather(cost, reached[:, 0], batch_dims=1) - v
        reduced -= tf.gather(reduced, column, batch_dims=1)                         # - u of the reached row
        better = (reduced < distance) & open_columns
        distance = tf.where(better, reduced, distance)
        predecessor = tf.where(better, reached, predecessor)
        path = tf.where(better[..., tf.newaxis], tf.gather(path, column, batch_dims=1) | same, path)
        open_distance = tf.where(open_columns, distance, infinity)
        delta = tf.reduce_min(open_distance, axis=-1, keepdims=True)
        nearest = tf.argmin(open_distance, axis=-1, output_type=tf.int32)[:, tf.newaxis]
        v -= tf.where(open_columns, 0.0, delta)
        distance -= tf.where(open_columns, delta, 0.0)
        # A free column ends the search: every column on its path takes the row it was reached from.
        done = (inserted < count) & tf.equal(tf.gather(owner, nearest, batch_dims=1), 0)
        owner = tf.where(tf.gather(path, nearest[:, 0], batch_dims=1) & done, predecessor, owner)
        inserted += tf.cast(done, tf.int32)
        restart = source & done
        owner = tf.where(restart, tf.gather(order, inserted, batch_dims=1), owner)
        v = tf.where(restart, 0.0, v)
        distance = tf.where(done, infinity, distance)
        open_columns |= done
        path &= ~done[..., tf.newaxis]
        return inserted, v, owner, predecessor, distance, open_columns, path, tf.where(done, 0, nearest)

    state = (tf.zeros([batch, 1], tf.int32), tf.zeros([batch, size + 1]), tf.where(source, order[:, :1], owner),
             tf.zeros([batch, size + 1], tf.int32), tf.fill([batch, size + 1], infinity),
             tf.ones([batch, size + 1], tf.bool), tf.zeros([batch, size + 1, size + 1], tf.bool),
             tf.zeros([batch, 1], tf.int32))
    owner = tf.while_loop(lambda inserted, *_: tf.reduce_any(inserted < count), lambda *state: step(*step(*state)),
                          state, maximum_iterations=size * (size + 1))[2]
    chosen = owner[:, tf.newaxis, 1:] == rows[:, tf.newaxis] + 1                      # [B, N, N]
    return tf.reshape(chosen[:, :m, :n], shape) & usable


def rounded_lp_assignment(scores: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """The matching of the LP relaxation (Eqs. 13-16) at the EVALUATION settings, rounded (`round_assignment`)."""
    return round_assignment(solve_assignment(scores, valid, EVALUATION))


MATCHERS = {"hungarian": hungarian_assignment, "lp": rounded_lp_assignment, "greedy": greedy_assignment}


def match(scores: tf.Tensor, valid: tf.Tensor, matcher: str) -> tf.Tensor:
    """The boolean matching [..., m, n] of scores [..., m, n] (valid pairs only) by a matcher of MATCHERS."""
    return MATCHERS[matcher](scores, valid) & valid
