"""PersonLab training augmentation (paper §4.1) and the evaluation-mode resize.

A square box tightly containing the image (side L = max(H, W), centred on the image) is resized by a
random factor s in [min_scale, max_scale] (side L s), translated at random, flipped left-right with
probability 1/2, and the image under it is resampled to a crop of S x S pixels. Evaluation mode keeps
s = 1, no translation and no flip: the crop is the resized square box.

Coordinates: pixel centres at integer coordinates, x right, y down. The crop-to-image map is
axis-aligned: image x = ax u + bx, image y = ay v + by for crop pixel (u, v); ax < 0 when flipped.
"""

import dataclasses

import gin
import tensorflow as tf

from personlab_tf import keys


@gin.configurable
@dataclasses.dataclass(frozen=True)
class BoxOptions:
    """The random box of the training augmentation (PersonLab §4.1; gin: `BoxOptions.min_scale = 0.5`, ...).

    Attributes:
      min_scale, max_scale: range of the box scale s (the box side is L s).
      max_translation: the box centre moves by up to max(|L - L s| / 2, max_translation L s) per axis.
      flip_probability: probability of a left-right flip.
    """

    min_scale: float = 0.5
    max_scale: float = 1.5
    max_translation: float = 0.2
    flip_probability: float = 0.5


def sample_box(seed, options=BoxOptions()):
    """Draws the random box parameters with stateless ops.

    The box centre moves by up to max(|L - L s| / 2, max_translation L s) along each axis, so a box
    smaller than the image can reach every part of it and a larger one can move the image inside it.

    Args:
      seed: [2] int32/int64 stateless seed.
      options: BoxOptions.

    Returns:
      (scale [] float32, shift [2] float32 in units of L (x, y), flip [] bool).
    """
    seeds = tf.random.experimental.stateless_split(seed, 3)
    scale = tf.random.stateless_uniform([], seeds[0], options.min_scale, options.max_scale)
    half_range = tf.maximum(tf.abs(1.0 - scale) / 2.0, options.max_translation * scale)
    shift = tf.random.stateless_uniform([2], seeds[1], -1.0, 1.0) * half_range
    flip = tf.random.stateless_uniform([], seeds[2]) < options.flip_probability
    return scale, shift, flip


def crop_to_image_map(image_size, crop_size, scale, shift, flip):
    """The axis-aligned map from crop pixels to image pixels.

    Args:
      image_size: [2] int32 (height, width).
      crop_size: S, python int.
      scale: [] float32 box scale s; shift: [2] float32 box-centre shift (x, y) in units of L.
      flip: [] bool, mirror the crop left-right.

    Returns:
      [4] float32 (ax, bx, ay, by): image x = ax u + bx, image y = ay v + by.
    """
    size = tf.cast(image_size, tf.float32)
    side = tf.reduce_max(size)
    pixel = side * scale / crop_size
    centre_x = (size[1] - 1.0) / 2.0 + shift[0] * side
    centre_y = (size[0] - 1.0) / 2.0 + shift[1] * side
    crop_centre = (crop_size - 1.0) / 2.0
    ax = tf.where(flip, -pixel, pixel)
    return tf.stack([ax, centre_x - ax * crop_centre, pixel, centre_y - pixel * crop_centre])


def warp_image(image, crop_to_image, crop_size):
    """Bilinearly resamples `image` [H, W, 3] uint8 under the crop map into [S, S, 3] uint8 (zero fill)."""
    ax, bx, ay, by = tf.unstack(crop_to_image)
    transform = tf.stack([ax, 0.0, bx, 0.0, ay, by, 0.0, 0.0])[tf.newaxis]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis], transforms=transform, output_shape=[crop_size, crop_size],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.ensure_shape(warped[0], [crop_size, crop_size, 3])


def image_to_crop_points(points, crop_to_image):
    """Maps [..., 2] image points (x, y) to crop pixels with the inverse of the crop map."""
    ax, bx, ay, by = tf.unstack(crop_to_image)
    return tf.stack([(points[..., 0] - bx) / ax, (points[..., 1] - by) / ay], axis=-1)


def transform_keypoints(keypoints, crop_to_image, flip, flip_permutation):
    """Keypoints [N, K, 3] (x, y, v) in image pixels -> crop pixels; a flip swaps left and right
    (`flip_permutation`, Skeleton.flip_permutation)."""
    xy = image_to_crop_points(keypoints[..., :2], crop_to_image)
    moved = tf.concat([xy, keypoints[..., 2:]], axis=-1)
    return tf.cond(flip, lambda: tf.gather(moved, list(flip_permutation), axis=1), lambda: moved)


def augment(sample, crop_size, flip_permutation, seed=None, training=True, box=BoxOptions()):
    """Crops, rescales and flips a decoded sample (decoder.decode_example).

    Args:
      sample: decoded sample dict.
      crop_size: S, the output side in pixels.
      flip_permutation: [K] keypoint k becomes flip_permutation[k] under a flip (Skeleton.flip_permutation).
      seed: [2] stateless seed, required when training.
      training: random box when True; the plain resized square box when False.
      box: BoxOptions of the random box.

    Returns:
      the sample with keys.Sample.IMAGE as the [S, S, 3] uint8 crop, keys.Sample.KEYPOINTS in crop pixels
      (left/right swapped when flipped) and keys.Sample.CROP_TO_IMAGE [4]; masks stay packed at image
      resolution.
    """
    if training:
        scale, shift, flip = sample_box(seed, box)
    else:
        scale, shift, flip = tf.constant(1.0), tf.zeros([2]), tf.constant(False)
    crop_map = crop_to_image_map(sample[keys.Sample.ORIGINAL_SIZE], crop_size, scale, shift, flip)
    out = dict(sample)
    out[keys.Sample.IMAGE] = warp_image(sample[keys.Sample.IMAGE], crop_map, crop_size)
    out[keys.Sample.KEYPOINTS] = transform_keypoints(sample[keys.Sample.KEYPOINTS], crop_map, flip,
                                                    flip_permutation)
    out[keys.Sample.CROP_TO_IMAGE] = crop_map
    return out
