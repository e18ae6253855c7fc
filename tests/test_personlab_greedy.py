"""Greedy grouping: static traversal orders, poses grown from every seed, and the exact seed rejection."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.ops.suppression import greedy_keep
from personlab_tf.tasks.personlab.greedy import accept_seeds, follow_tree, round_tables, traversal_orders

from decode_cases import STRIDE, perfect_maps, two_persons


def test_every_root_reaches_every_keypoint_from_decoded_sources():
    for root, order in enumerate(traversal_orders(COCO17.directed_edges)):
        decoded = {root}
        for depth, edge in order:
            source, target = COCO17.directed_edges[edge]
            assert source in decoded and target not in decoded
            decoded.add(target)
        assert decoded == set(range(COCO17.num_keypoints)) and len(order) == COCO17.num_keypoints - 1


def test_rounds_follow_edges_only_after_their_sources():
    edges, sources, targets = round_tables(COCO17.directed_edges)
    for root in range(COCO17.num_keypoints):
        decoded = {root}
        for step in range(edges.shape[1]):
            real = targets[root, step] < COCO17.num_keypoints
            assert set(sources[root, step][real]) <= decoded
            for e, k, l in zip(edges[root, step][real], sources[root, step][real], targets[root, step][real]):
                assert COCO17.directed_edges[e] == (k, l)
            decoded |= set(targets[root, step][real])
        assert decoded == set(range(COCO17.num_keypoints))


def test_two_persons_are_recovered_exactly_from_every_seed_type():
    persons = two_persons()
    maps = perfect_maps(persons)
    seeds = persons.reshape(-1, 2)                                  # person j, keypoint k at row j K + k
    types = np.tile(np.arange(COCO17.num_keypoints, dtype=np.int32), 2)
    poses = follow_tree(tf.constant(seeds), tf.constant(types), maps[keys.Map.MID_OFFSETS], STRIDE, COCO17.directed_edges).numpy()
    expected = np.repeat(persons, COCO17.num_keypoints, axis=0)
    np.testing.assert_allclose(poses, expected, atol=1e-4)


def test_off_grid_keypoints_are_followed_exactly_by_bilinear_sampling():
    persons = two_persons() + np.float32(2.7)   # keypoints between cells; mid offsets are linear there
    maps = perfect_maps(persons)
    poses = follow_tree(tf.constant(persons[:, 0]), tf.constant([0, 0]), maps[keys.Map.MID_OFFSETS], STRIDE, COCO17.directed_edges).numpy()
    np.testing.assert_allclose(poses, persons, atol=1e-3)


def _pose_at(x, y):
    return np.tile(np.array([[x, y]], np.float32), [COCO17.num_keypoints, 1])


def test_seed_within_r_of_an_accepted_persons_keypoint_is_rejected_11_px_is_not():
    poses = np.stack([_pose_at(100, 100), _pose_at(100, 110), _pose_at(111, 100), _pose_at(100, 300)])
    poses[1, 3] = (300, 300)  # only keypoint 0 (the seed type) matters for seeds of type 0
    positions = poses[:, 0]
    types = np.zeros(4, np.int32)
    accepted = accept_seeds(tf.constant(poses), tf.constant(positions), tf.constant(types)).numpy()
    assert accepted.tolist() == [True, False, True, True]   # 10 px: rejected (boundary included); 11 px: kept


def test_rejection_compares_with_the_same_keypoint_type_only():
    poses = np.stack([_pose_at(100, 100), _pose_at(200, 200)])
    poses[0, 5] = (200, 205)                  # person 0's keypoint 5 is 5 px from seed 1
    for seed_type, expected in ((5, False), (6, True)):
        accepted = accept_seeds(tf.constant(poses), tf.constant([[100.0, 100.0], [200.0, 200.0]]),
                                tf.constant([0, seed_type]))
        assert accepted.numpy().tolist() == [True, expected]


def test_a_seed_rejected_only_by_a_rejected_seed_starts_a_person():
    # seed 1 is rejected by seed 0; seed 2 is near seed 1's pose only, so it is accepted.
    poses = np.stack([_pose_at(0, 0), _pose_at(5, 0), _pose_at(5, 0)])
    poses[2] = _pose_at(12, 0)
    positions = np.array([[0, 0], [5, 0], [12, 0]], np.float32)
    accepted = accept_seeds(tf.constant(poses), tf.constant(positions), tf.constant([0, 0, 0])).numpy()
    assert accepted.tolist() == [True, False, True]


@pytest.mark.parametrize("seed", range(5))
def test_greedy_keep_equals_the_sequential_loop(seed):
    rng = np.random.default_rng(seed)
    n = 60
    conflicts = rng.random([n, n]) < 0.08
    keep = []
    for i in range(n):
        keep.append(not any(conflicts[i, j] and keep[j] for j in range(i)))
    assert greedy_keep(tf.constant(conflicts)).numpy().tolist() == keep


def test_empty_inputs():
    poses = follow_tree(tf.zeros([0, 2]), tf.zeros([0], tf.int32), tf.zeros([5, 5, 32, 2]), STRIDE, COCO17.directed_edges)
    assert poses.shape == (0, COCO17.num_keypoints, 2)
    assert accept_seeds(poses, tf.zeros([0, 2]), tf.zeros([0], tf.int32)).shape == (0,)
