"""Augmentation: the image and the keypoints move together; flips swap left and right (paper §4.1)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.data import augment, grids

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
        scale, shift, flip, angle = augment.sample_box(tf.constant([i, 1]), augment.BoxOptions(max_translation=0.2))
        assert float(angle) == 0.0
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
    a, b, c, d, e, f = out[keys.Sample.CROP_TO_IMAGE].numpy()
    assert b == d == 0
    assert a == e == pytest.approx(100 / 201)
    # The crop centre sees the image centre; the image's left column edge (x = -0.5) sits at u = -0.5.
    assert a * 100 + c == pytest.approx((width - 1) / 2)
    assert e * 100 + f == pytest.approx((height - 1) / 2)
    assert (-0.5 - c) / a == pytest.approx(-0.5, abs=1e-4)
    np.testing.assert_allclose(out[keys.Sample.KEYPOINTS][0, 0, :2], [-c / a, -f / e], rtol=1e-5)


def test_rotation_by_a_quarter_turn_moves_image_keypoints_and_masks_together():
    """Hand-made: a 101 x 101 image, crop = image, box turned by 90 degrees: crop pixel (u, v) sees image
    pixel (x, y) = (100 - v, u), so the dot at image (70, 20) lands on crop (20, 30)."""
    sample = dot_sample(70, 20, height=101, width=101)
    crop_map = augment.crop_to_image_map(tf.constant([101, 101]), 101, tf.constant(101 / 101), tf.zeros([2]),
                                         tf.constant(False), tf.constant(np.pi / 2, tf.float32))
    np.testing.assert_allclose(crop_map.numpy(), [0, -1, 100, 1, 0, 0], atol=1e-5)
    np.testing.assert_allclose(augment.image_to_crop_points(tf.constant([[70.0, 20.0]]), crop_map).numpy(),
                               [[20, 30]], atol=1e-4)
    crop = augment.warp_image(sample[keys.Sample.IMAGE], crop_map, 101).numpy()[..., 0]
    assert crop[30, 20] == 255 and crop.sum() == 9 * 255
    mask = np.zeros([101, 101, 1], np.uint8)
    mask[10:31, 60:81] = 1        # rows 10-30, columns 60-80 of the image
    on_grid = grids.sample_on_grid(tf.constant(mask), tf.constant([101, 101]), crop_map, 101, 1).numpy()[..., 0]
    # image row y = u, column x = 100 - v: crop rows v = 20..40, columns u = 10..30
    expected = np.zeros([101, 101], np.uint8)
    expected[20:41, 10:31] = 1
    np.testing.assert_array_equal(on_grid, expected)


@pytest.mark.parametrize("flip", [False, True])
def test_flip_is_read_from_the_maps_determinant_at_any_angle(flip):
    for angle in (-0.17, 0.0, 0.17, 2.0):
        crop_map = augment.crop_to_image_map(tf.constant([50, 80]), 65, tf.constant(0.8), tf.constant([0.1, -0.05]),
                                             tf.constant(flip), tf.constant(angle))
        assert bool(augment.is_flipped(crop_map)) == flip
        points = tf.constant([[3.0, 7.0], [40.0, 20.0]])
        a, b, c, d, e, f = crop_map.numpy()
        u, v = augment.image_to_crop_points(points, crop_map).numpy().T
        np.testing.assert_allclose(np.stack([a * u + b * v + c, d * u + e * v + f], -1), points.numpy(), atol=1e-3)


def test_rotated_crops_keep_keypoints_masks_and_part_labels_aligned():
    """Random boxes turned by up to the part parser's 10 degrees: the painted part regions of the crop, the
    part labels and the person mask sampled through the same map, and the keypoint all agree."""
    height, width, crop_size = 90, 120, 97
    labels = np.zeros([height, width], np.uint8)
    labels[20:45, 30:70] = 1
    labels[45:75, 30:70] = 2
    image = np.zeros([height, width, 3], np.uint8)
    image[..., 0] = labels * 100
    image[57:60, 49:52] = 255     # a white dot, the keypoint, inside part 2
    sample = decoded_sample(keypoint_array(1, {(0, LEFT_EYE): (50, 58)}), labels[np.newaxis] > 0)
    sample[keys.Sample.IMAGE] = tf.constant(image)
    box = augment.BoxOptions(min_scale=0.9, max_scale=1.1, max_translation=0.05, max_rotation=10.0)
    angles = []
    for seed in range(8):
        out = augment.augment(sample, crop_size, COCO17.flip_permutation, seed=tf.constant([seed, 3]), box=box)
        crop_map = out[keys.Sample.CROP_TO_IMAGE]
        angles.append(np.degrees(np.arctan2(abs(float(crop_map[3])), abs(float(crop_map[4])))))
        crop = out[keys.Sample.IMAGE].numpy()
        part_grid = grids.sample_on_grid(tf.constant(labels[..., np.newaxis]), tf.constant([height, width]), crop_map,
                                         crop_size, 1).numpy()[..., 0]
        mask_grid = grids.masks_on_grid(sample[keys.Sample.PACKED_MASKS], tf.constant(1), tf.constant([height, width]),
                                        crop_map, crop_size, 1).numpy()[..., 0]
        np.testing.assert_array_equal(mask_grid, part_grid > 0)
        # Away from region borders (where bilinear and nearest differ), the crop's colour is its label's.
        red = crop[..., 0].astype(int)
        uniform = np.ones_like(red, bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                uniform &= np.roll(np.roll(part_grid, dy, 0), dx, 1) == part_grid
        uniform &= crop[..., 1] == 0
        assert uniform.sum() > 1500
        np.testing.assert_array_equal(red[uniform], part_grid[uniform] * 100)
        kp = out[keys.Sample.KEYPOINTS].numpy()[0]
        x, y = kp[kp[:, 2] > 0][0, :2]
        white = crop[..., 1].astype(float)
        rows, cols = np.indices(white.shape)
        np.testing.assert_allclose(np.array([(cols * white).sum(), (rows * white).sum()]) / white.sum(), [x, y],
                                   atol=0.3)
    assert max(angles) <= 10.0 + 1e-3 and max(angles) > 5.0


def test_without_rotation_the_box_draws_are_those_of_the_axis_aligned_box():
    """The rotation takes a fourth seed: a seed's scale, shift and flip do not depend on max_rotation, and
    are those of the three streams the box drew from before rotation existed."""
    for seed in range(5):
        seed = tf.constant([seed, 9])
        np.testing.assert_array_equal(tf.random.experimental.stateless_split(seed, 3).numpy(),
                                      tf.random.experimental.stateless_split(seed, augment.SEED_STREAMS + 1)[:3].numpy())
    for seed in range(5):
        plain = augment.sample_box(tf.constant([seed, 9]), augment.BoxOptions())
        turned = augment.sample_box(tf.constant([seed, 9]), augment.BoxOptions(max_rotation=10.0))
        for p, t in zip(plain[:3], turned[:3]):
            np.testing.assert_array_equal(p.numpy(), t.numpy())
        assert float(plain[3]) == 0.0 and 0 < abs(float(turned[3])) <= np.radians(10.0)


def test_colour_jitter_changes_colours_only():
    sample = dot_sample(84, 56)
    rng = np.random.default_rng(0)
    sample[keys.Sample.IMAGE] = tf.constant(rng.integers(40, 200, [120, 160, 3]).astype(np.uint8))
    seed = tf.constant([4, 2])
    plain = augment.augment(sample, 161, COCO17.flip_permutation, seed=seed)
    jitter = augment.ColorJitter(brightness=0.2)
    bright = augment.augment(sample, 161, COCO17.flip_permutation, seed=seed, color=jitter)
    for key in (keys.Sample.KEYPOINTS, keys.Sample.CROP_TO_IMAGE):
        np.testing.assert_array_equal(bright[key].numpy(), plain[key].numpy())
    # Brightness multiplies every value by one factor in [0.8, 1.2] (torchvision's definition; no value
    # saturates here: at most 200 x 1.2 = 240).
    before = plain[keys.Sample.IMAGE].numpy().astype(float)
    after = bright[keys.Sample.IMAGE].numpy().astype(float)
    inside = before > 20
    factor = np.sum(after[inside] * before[inside]) / np.sum(before[inside] ** 2)
    assert 0.8 <= factor <= 1.2 and abs(factor - 1) > 0.01
    np.testing.assert_allclose(after[inside], before[inside] * factor, atol=1.0)   # uint8 quantisation
    evaluation = augment.augment(sample, 161, COCO17.flip_permutation, training=False, color=jitter)
    np.testing.assert_array_equal(evaluation[keys.Sample.IMAGE].numpy(),
                                  augment.augment(sample, 161, COCO17.flip_permutation, training=False)[
                                      keys.Sample.IMAGE].numpy())
    with pytest.raises(ValueError, match="contrast"):
        augment.ColorJitter(contrast=1.5)


def test_saturation_and_contrast_blend_as_torchvision():
    """Saturation blends each pixel with its own grey value (PIL's luma), contrast with the crop's mean grey:
    a grey pixel keeps its value under saturation, and every pixel moves on the line to its grey by one factor."""
    rng = np.random.default_rng(1)
    crop = rng.integers(30, 220, [33, 33, 3]).astype(np.uint8)
    crop[0, 0] = (90, 90, 90)
    pixels = crop.astype(float) / 255
    grey = pixels @ [0.2989, 0.5870, 0.1140]
    seed = tf.constant([5, 5])
    for options, other in ((augment.ColorJitter(saturation=0.4), grey[..., np.newaxis]),
                           (augment.ColorJitter(contrast=0.4), grey.mean())):
        out = augment.jitter_colors(tf.constant(crop), seed, options).numpy().astype(float) / 255
        moved, towards = (out - other).ravel(), (pixels - other).ravel()
        factor = np.sum(moved * towards) / np.sum(towards ** 2)
        assert 0.6 <= factor <= 1.4 and abs(factor - 1) > 0.01
        np.testing.assert_allclose(out, np.clip(other + factor * (pixels - other), 0, 1), atol=1.01 / 255)
    saturated = augment.jitter_colors(tf.constant(crop), seed, augment.ColorJitter(saturation=0.4)).numpy()
    np.testing.assert_array_equal(saturated[0, 0], [90, 90, 90])
