"""Instance masks (Eq. 6): embedding distances, non-exclusive assignment, orphans and background."""

import numpy as np
import tensorflow as tf

from personlab_tf.skeleton import COCO17
from personlab_tf.tasks.personlab.masks import embedding_distances, instance_masks
from personlab_tf.tasks.personlab.scoring import person_areas

STRIDE = 8


def box_person(x, y, size=64.0):
    """[K, 2] keypoints spread over a size x size box with corner (x, y) (lambda = size)."""
    k = np.arange(COCO17.num_keypoints)
    return np.stack([x + size * (k % 5) / 4, y + size * (k // 5) / 3], -1).astype(np.float32)


def test_distances_equal_eq6():
    rng = np.random.default_rng(1)
    embeddings = rng.uniform(0, 200, [9, COCO17.num_keypoints, 2]).astype(np.float32)
    keypoints = np.stack([box_person(10, 20), box_person(90, 40, 100)])
    weights = rng.uniform(0, 1, [2, COCO17.num_keypoints]).astype(np.float32)
    areas = person_areas(keypoints).numpy()
    expected = np.array([[np.sum(weights[j] * np.linalg.norm(embeddings[i] - keypoints[j], axis=-1))
                          / (np.sqrt(areas[j]) * weights[j].sum()) for i in range(9)] for j in range(2)])
    np.testing.assert_allclose(embedding_distances(embeddings, keypoints, weights, areas).numpy(), expected,
                               rtol=1e-5)
    absent = embedding_distances(embeddings, keypoints, np.zeros_like(weights), areas).numpy()
    assert np.isposinf(absent).all()


def test_assignment_is_non_exclusive_and_needs_person_pixels():
    # Two persons 24 px apart with lambda = 64: pixels embedded at one person are at D = 24 / 64 = 0.375 > 0.25
    # from the other; a pixel embedded halfway is at D = 0.1875 <= 0.25 from both.
    a, b = box_person(40, 40), box_person(64, 40)
    height, width = 3, 4
    positions = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32) * STRIDE
    targets = np.zeros([height, width, COCO17.num_keypoints, 2], np.float32)
    targets[:, :2] = a                 # left half embeds at A
    targets[:, 2:] = b                 # right half at B
    targets[1, 1] = (a + b) / 2        # halfway: joins both
    targets[2, 3] = a + (0, 200)       # far from both: orphan
    long_offsets = targets - positions[:, :, np.newaxis, :]
    segmentation = np.ones([height, width, 1], np.float32)
    segmentation[0, 0] = 0.49          # not a person pixel
    keypoints = np.stack([a, b])
    weights = np.ones([2, COCO17.num_keypoints], np.float32)
    masks = instance_masks(segmentation, long_offsets, keypoints, weights, person_areas(keypoints), STRIDE).numpy()
    expected_a = np.array([[0, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]], bool)
    expected_b = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 0]], bool)
    np.testing.assert_array_equal(masks[0], expected_a)
    np.testing.assert_array_equal(masks[1], expected_b)


def test_no_person_and_no_pixel():
    long_offsets = np.zeros([4, 5, COCO17.num_keypoints, 2], np.float32)
    keypoints = box_person(0, 0)[np.newaxis]
    no_weights = np.ones([0, COCO17.num_keypoints], np.float32)
    masks = instance_masks(np.ones([4, 5, 1], np.float32), long_offsets, keypoints[:0], no_weights, tf.zeros([0]),
                           STRIDE)
    assert masks.shape == (0, 4, 5)
    weights = np.ones([1, COCO17.num_keypoints], np.float32)
    masks = instance_masks(np.zeros([4, 5, 1], np.float32), long_offsets, keypoints, weights,
                           person_areas(keypoints), STRIDE)
    assert masks.shape == (1, 4, 5) and not masks.numpy().any()
