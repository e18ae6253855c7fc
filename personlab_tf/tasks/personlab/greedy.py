"""Greedy grouping of keypoints into persons along the kinematic tree (PersonLab §3.1, "Fast greedy
decoding"), computed for all seeds in parallel.

The paper pops seeds in descending score order; a seed of type k within r of the type-k keypoint of an
already detected person is rejected, otherwise a new person starts there and the mid-range offsets are
followed from the seed outwards, y_l = y_k + M_{k,l}(y_k). The pose grown from a seed depends only on the
seed, never on earlier persons, so we (1) grow a pose from every seed at once (`follow_tree`, a few
vectorised rounds over all seeds, each seed following the static traversal order of its own root type) and
(2) compute which seeds the paper's loop would accept (`accept_seeds`, an exact vectorised form of the
sequential test). The result equals the paper's loop; the cost does not depend on how many persons are
accepted.

Positions in input pixels, (x, y) order, pixel centres at integer coordinates.
"""

from typing import List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from personlab_tf.ops.sampling import clip_to_map, map_extent, sample_channel
from personlab_tf.ops.suppression import greedy_keep
from personlab_tf.skeleton import Edge


def traversal_orders(directed_edges: Sequence[Edge]) -> List[List[Tuple[int, int]]]:
    """Static order of the directed edges followed outwards from each root keypoint type.

    Breadth-first over the undirected tree from the root, so the source of every edge is decoded before it
    is followed.

    Args:
      directed_edges: the E = 2 (K - 1) edges (k, l) of the skeleton (Skeleton.directed_edges).

    Returns:
      list of K lists: entry r holds (depth, edge index e into directed_edges) in the order followed from a
      seed of type r; depth d >= 1 is the number of edges between the root and the edge's target.
    """
    orders = []
    for root in range(len(directed_edges) // 2 + 1):
        order, frontier, depth = [], [root], {root: 0}
        while frontier:
            source = frontier.pop(0)
            for edge, (k, l) in enumerate(directed_edges):
                if k == source and l not in depth:
                    depth[l] = depth[k] + 1
                    order.append((depth[l], edge))
                    frontier.append(l)
        orders.append(order)
    return orders


def round_tables(directed_edges: Sequence[Edge]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The traversal orders grouped into rounds of edges whose targets have the same depth (directed_edges
    as in `traversal_orders`).

    Edges of one round have sources decoded in earlier rounds, so they can be followed together. Slots past
    a round's edges are padding: source = the root, target = K (a scratch keypoint), edge 0.

    Returns:
      (edges, sources, targets): [K, rounds, width] int32 numpy arrays.
    """
    orders = traversal_orders(directed_edges)
    num_keypoints = len(orders)
    rounds = max(d for order in orders for d, _ in order)
    width = max(sum(d == r for d, _ in order) for order in orders for r in range(1, rounds + 1))
    edges = np.zeros([num_keypoints, rounds, width], np.int32)
    sources = np.tile(np.arange(num_keypoints, dtype=np.int32)[:, None, None], [1, rounds, width])
    targets = np.full([num_keypoints, rounds, width], num_keypoints, np.int32)
    for root, order in enumerate(orders):
        slots = [0] * rounds
        for depth, edge in order:
            slot = slots[depth - 1]
            edges[root, depth - 1, slot] = edge
            sources[root, depth - 1, slot], targets[root, depth - 1, slot] = directed_edges[edge]
            slots[depth - 1] += 1
    return edges, sources, targets


def follow_tree(seed_positions: tf.Tensor, seed_types: tf.Tensor, mid_offsets: tf.Tensor, stride: int,
                directed_edges: Sequence[Edge]) -> tf.Tensor:
    """The pose grown from every seed by following the mid-range offsets (the paper's y_l = y_k + M_{k,l}(y_k)).

    Every seed follows the edges of its root's traversal order, round by round (`round_tables`): it samples
    M_{k,l} bilinearly at its type-k keypoint and sets its type-l keypoint. Keypoints are clipped to the map
    rectangle [0, s (w - 1)] x [0, s (h - 1)] (the sampler clamps there anyway; the clip also keeps outputs
    in the image).

    Args:
      seed_positions: [S, 2] float32 seed positions (x, y) in input pixels.
      seed_types: [S] int32 keypoint type of each seed.
      mid_offsets: [h, w, E, 2] float32 mid-range offsets (refined), edge e = directed_edges[e].
      stride: s of the map.
      directed_edges: the skeleton's E edges (k, l) (Skeleton.directed_edges).

    Returns:
      [S, K, 2] float32 keypoints y_k (x, y) of the pose grown from each seed; keypoint seed_types[s] of pose
      s is the seed position itself.
    """
    edges, sources, targets = (tf.gather(tf.constant(table), seed_types) for table in round_tables(directed_edges))
    num_keypoints = len(directed_edges) // 2 + 1
    extent = map_extent(mid_offsets, stride)
    is_seed = tf.one_hot(seed_types, num_keypoints + 1, on_value=True, off_value=False)
    poses = tf.where(is_seed[..., tf.newaxis], seed_positions[:, tf.newaxis, :], 0.0)  # [S, K + 1, 2]
    seed_index = tf.broadcast_to(tf.range(tf.shape(seed_types)[0])[:, tf.newaxis], tf.shape(targets[:, 0]))
    for step in range(edges.shape[1]):
        source = tf.gather(poses, sources[:, step], batch_dims=1)                       # [S, width, 2]
        target = clip_to_map(source + sample_channel(mid_offsets, source, edges[:, step], stride), extent)
        poses = tf.tensor_scatter_nd_update(poses, tf.stack([seed_index, targets[:, step]], axis=-1), target)
    return poses[:, :num_keypoints]


def accept_seeds(poses: tf.Tensor, seed_positions: tf.Tensor, seed_types: tf.Tensor, radius: float = 10.0) -> tf.Tensor:
    """Which seeds the paper's greedy loop turns into persons.

    Seed i (in queue order) is rejected when its position is within `radius` (the disk D_r, boundary
    included) of the type-k_i keypoint of an earlier accepted seed's pose; the sequential test is evaluated
    exactly by `suppression.greedy_keep`.

    Args:
      poses: [S, K, 2] poses grown from the seeds (follow_tree), in queue order.
      seed_positions: [S, 2] (x, y) input pixels; seed_types: [S] int32.
      radius: r, the rejection radius in input pixels (10 in the paper).

    Returns:
      [S] bool, True for seeds that start a person.
    """
    def to_seed(axis):
        """[S_i, S_j]: coordinate `axis` of seed i's position minus that of pose j's type-k_i keypoint."""
        return seed_positions[:, axis, tf.newaxis] - tf.gather(tf.transpose(poses[..., axis]), seed_types)

    distance2 = tf.square(to_seed(0)) + tf.square(to_seed(1))
    return greedy_keep(distance2 <= radius * radius)
