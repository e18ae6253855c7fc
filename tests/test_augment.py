"""Augmentation: the image and the keypoints move together; flips swap left and right (paper §4.1)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.data import augment

from sample_factory import decoded_sample, keypoint_array

LEFT_EYE, RIGHT_EYE = 1, 2


def dot_sample(x, y, height=120, width=160):
    """A black image with one white 3x3 dot centred on (x, y), marked as the left eye of person 0."""
    sample = decoded_sample(keypoint_array(1, {(0, LEFT_EYE): (x, y)}), np.zeros([1, height, width], bool))
    image = np.zeros([height, width, 3], np.uint8)
    image[y - 1:y + 2, x - 1:x + 2] = 255
    sample[keys.Sample.IMAGE] = tf.constant(image)
    return sample


@pytest.mark.parametrize("seed", range(6))
def test_warped_dot_lands_on_the_transformed_keypoint(seed):
    sample = dot_sample(84, 56)
    out = augment.augment(sample, 161, COCO17.flip_permutation, seed=tf.constant([seed, 7]))
    kp = out[keys.Sample.KEYPOINTS].numpy()[0]
    visible = kp[:, 2] > 0
    assert visible.sum() == 1
    x, y = kp[visible][0, :2]
    image = out[keys.Sample.IMAGE].numpy()[..., 0].astype(float)
    assert 5 <= x <= 155 and 5 <= y <= 155
    rows, cols = np.mgrid[:161, :161]
    centroid = np.array([(cols * image).sum(), (rows * image).sum()]) / image.sum()
    np.testing.assert_allclose(centroid, [x, y], atol=0.25)


def test_flip_mirrors_x_and_swaps_left_and_right():
    sample = dot_sample(100, 40, height=101, width=101)
    box = augment.BoxOptions(min_scale=1.0, max_scale=1.0, max_translation=0.0, flip_probability=0.0)
    plain = augment.augment(sample, 101, COCO17.flip_permutation, seed=tf.constant([0, 0]), box=box)
    flipped = augment.augment(sample, 101, COCO17.flip_permutation, seed=tf.constant([0, 0]), box=dataclasses.replace(box, flip_probability=1.0))
    np.testing.assert_allclose(plain[keys.Sample.KEYPOINTS][0, LEFT_EYE], [100, 40, 2], atol=1e-4)
    assert flipped[keys.Sample.KEYPOINTS][0, LEFT_EYE, 2] == 0
    np.testing.assert_allclose(flipped[keys.Sample.KEYPOINTS][0, RIGHT_EYE], [0, 40, 2], atol=1e-4)
    np.testing.assert_array_equal(flipped[keys.Sample.IMAGE].numpy(), plain[keys.Sample.IMAGE].numpy()[:, ::-1])


def test_flip_permutation_is_an_involution_that_swaps_names():
    perm = COCO17.flip_permutation
    assert all(perm[perm[k]] == k for k in range(COCO17.num_keypoints))
    names = COCO17.keypoints
    assert names[perm[names.index("left_wrist")]] == "right_wrist"
    assert perm[0] == 0


def test_box_parameters_stay_in_their_ranges():
    scales, shifts, flips = [], [], []
    for i in range(300):
        scale, shift, flip = augment.sample_box(tf.constant([i, 1]), augment.BoxOptions(max_translation=0.2))
        scales.append(float(scale))
        shifts.append(np.abs(shift.numpy()).max() - max(abs(1 - float(scale)) / 2, 0.2 * float(scale)))
        flips.append(bool(flip))
    assert 0.5 <= min(scales) < 0.6 and 1.4 < max(scales) <= 1.5
    assert max(shifts) <= 1e-6
    assert 0.4 < np.mean(flips) < 0.6


def test_evaluation_mode_resizes_the_centred_square_box():
    height, width, crop = 60, 100, 201
    sample = decoded_sample(keypoint_array(1, {(0, 0): (0, 0)}), np.zeros([1, height, width], bool))
    out = augment.augment(sample, crop, COCO17.flip_permutation, training=False)
    ax, bx, ay, by = out[keys.Sample.CROP_TO_IMAGE].numpy()
    assert ax == ay == pytest.approx(100 / 201)
    # The crop centre sees the image centre; the image's left column edge (x = -0.5) sits at u = -0.5.
    assert ax * 100 + bx == pytest.approx((width - 1) / 2)
    assert ay * 100 + by == pytest.approx((height - 1) / 2)
    assert (-0.5 - bx) / ax == pytest.approx(-0.5, abs=1e-4)
    np.testing.assert_allclose(out[keys.Sample.KEYPOINTS][0, 0, :2], [-bx / ax, -by / ay], rtol=1e-5)
