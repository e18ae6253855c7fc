"""Sequential greedy suppression computed as a fixed point of a vectorised update.

Both the seed rejection of the greedy decoder and hard OKS-NMS are the same loop: visit items in priority
order; item i is kept unless it conflicts with an item j < i that was kept. Running that loop in a
`tf.while_loop` costs one graph iteration per item. Instead we iterate the whole vector

    keep_{t+1}[i] = not any_{j < i} (conflicts[i, j] and keep_t[j]),   keep_0 = all True,

until it stops changing. Why this equals the loop: only earlier items count (j < i), so keep[i] is a
function of keep[0..i-1] alone. (1) The loop's answer is the unique vector satisfying the update at every i
(by induction on i), hence the unique fixed point; (2) after t iterations the first t entries are final
(induction again: entry t depends only on entries < t), so the iteration reaches the fixed point in at most
n steps. In practice it stops after a few steps (the length of the longest chain "i suppressed by j, j
suppressed by ..."), each a single [n, n] matrix-vector product.
"""

import tensorflow as tf


def greedy_keep(conflicts: tf.Tensor) -> tf.Tensor:
    """Result of the sequential greedy suppression loop.

    Args:
      conflicts: [n, n] bool; conflicts[i, j] means that item j suppresses item i if j is kept. Items are
        in priority order; only entries with j < i are used.

    Returns:
      keep: [n] bool, keep[i] = not any_{j < i} (conflicts[i, j] and keep[j]).
    """
    n = tf.shape(conflicts)[0]
    index = tf.range(n)
    weights = tf.cast(conflicts & (index[:, tf.newaxis] > index[tf.newaxis, :]), tf.float32)

    def step(keep, _):
        new = tf.linalg.matvec(weights, tf.cast(keep, tf.float32)) == 0.0
        return new, tf.reduce_any(new != keep)

    keep, _ = tf.while_loop(lambda keep, changed: changed, step, (tf.ones([n], tf.bool), tf.constant(True)),
                            maximum_iterations=n + 1)
    return keep
