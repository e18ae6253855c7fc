"""Training augmentation (PersonLab §4.1; the part parser's §4.1 adds rotation and colour jitter) and the
evaluation-mode resize.

A square box tightly containing the image (side L = max(H, W), centred on the image) is resized by a
random factor s in [min_scale, max_scale] (side L s), rotated by a random angle in [-max_rotation,
max_rotation] degrees about its centre, translated at random, flipped left-right with probability 1/2, and
the image under it is resampled to a crop of S x S pixels; the crop's colours are then jittered
(`ColorJitter`, off unless configured). Evaluation mode keeps s = 1, no rotation, no translation, no flip
and no jitter: the crop is the resized square box.

Coordinates: pixel centres at integer coordinates, x right, y down. The crop-to-image map is affine,
[6] float32 (a, b, c, d, e, f) (keys.Sample.CROP_TO_IMAGE): image x = a u + b v + c, image y = d u + e v + f
for crop pixel (u, v). Without rotation it is axis-aligned (b = d = 0); a flipped crop has a e - b d < 0.
"""

import dataclasses
import math

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
      max_rotation: the box turns by an angle drawn uniformly in [-max_rotation, max_rotation] degrees
        about its centre (0: PersonLab's axis-aligned box; the part parser's paper trains with 10).
    """

    min_scale: float = 0.5
    max_scale: float = 1.5
    max_translation: float = 0.2
    flip_probability: float = 0.5
    max_rotation: float = 0.0


@gin.configurable
@dataclasses.dataclass(frozen=True)
class ColorJitter:
    """Random photometric changes of the training crop (gin: `ColorJitter.brightness = 0.4`, ...); 0 turns
    a change off, and all zeros (the default) leaves the crop untouched.

    Applied in this order, each with its own stateless seed, on the crop as float RGB in [0, 1]
    (tf.image), then rounded back to uint8; the part parser's released code uses torchvision's ColorJitter
    with the same definitions of the four factors (in a random order per image: a fixed order here):
      brightness: multiplies every value by a factor drawn uniformly in [1 - brightness, 1 + brightness].
      contrast: scales each channel's deviation from its mean by a factor in [1 - contrast, 1 + contrast].
      saturation: scales the HSV saturation by a factor in [1 - saturation, 1 + saturation].
      hue: turns the hue by a fraction of a full turn in [-hue, hue] (at most 0.5).
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0

    def __post_init__(self):
        if min(self.brightness, self.contrast, self.saturation, self.hue) < 0:
            raise ValueError(f"colour jitter amounts must be >= 0: {self}")
        if self.brightness >= 1 or self.contrast >= 1 or self.saturation >= 1 or self.hue > 0.5:
            raise ValueError(f"colour jitter: brightness, contrast and saturation must be < 1 and hue <= 0.5: {self}")

    @property
    def active(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation, self.hue))


def sample_box(seed, options=BoxOptions()):
    """Draws the random box parameters with stateless ops.

    The box centre moves by up to max(|L - L s| / 2, max_translation L s) along each axis, so a box
    smaller than the image can reach every part of it and a larger one can move the image inside it.

    Args:
      seed: [2] int32/int64 stateless seed.
      options: BoxOptions.

    Returns:
      (scale [] float32, shift [2] float32 in units of L (x, y), flip [] bool, angle [] float32 in radians).
      The first three are the draws of the box without rotation (the rotation has the fourth seed).
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    scale = tf.random.stateless_uniform([], seeds[0], options.min_scale, options.max_scale)
    half_range = tf.maximum(tf.abs(1.0 - scale) / 2.0, options.max_translation * scale)
    shift = tf.random.stateless_uniform([2], seeds[1], -1.0, 1.0) * half_range
    flip = tf.random.stateless_uniform([], seeds[2]) < options.flip_probability
    limit = math.radians(options.max_rotation)
    angle = tf.random.stateless_uniform([], seeds[3], -limit, limit) if limit else tf.constant(0.0)
    return scale, shift, flip, angle


def crop_to_image_map(image_size, crop_size, scale, shift, flip, angle=0.0):
    """The affine map from crop pixels to image pixels.

    Crop pixel (u, v), taken relative to the crop centre (mirrored first when `flip`), is turned by `angle`
    (from x towards y: clockwise on the screen), scaled to image pixels and moved to the box centre.

    Args:
      image_size: [2] int32 (height, width).
      crop_size: S, python int.
      scale: [] float32 box scale s; shift: [2] float32 box-centre shift (x, y) in units of L.
      flip: [] bool, mirror the crop left-right.
      angle: [] float32 rotation of the box in radians.

    Returns:
      [6] float32 (a, b, c, d, e, f): image x = a u + b v + c, image y = d u + e v + f.
    """
    size = tf.cast(image_size, tf.float32)
    side = tf.reduce_max(size)
    pixel = side * scale / crop_size
    centre_x = (size[1] - 1.0) / 2.0 + shift[0] * side
    centre_y = (size[0] - 1.0) / 2.0 + shift[1] * side
    crop_centre = (crop_size - 1.0) / 2.0
    cos, sin = pixel * tf.cos(angle), pixel * tf.sin(angle)
    a = tf.where(flip, -cos, cos)
    d = tf.where(flip, -sin, sin)
    b, e = -sin, cos
    return tf.stack([a, b, centre_x - a * crop_centre - b * crop_centre,
                     d, e, centre_y - d * crop_centre - e * crop_centre])


def is_flipped(crop_to_image):
    """[] bool: the crop map mirrors (its linear part has a negative determinant)."""
    a, b, _, d, e, _ = tf.unstack(crop_to_image)
    return a * e - b * d < 0


def warp_image(image, crop_to_image, crop_size):
    """Bilinearly resamples `image` [H, W, 3] uint8 under the crop map into [S, S, 3] uint8 (zero fill)."""
    transform = tf.concat([crop_to_image, tf.zeros([2])], axis=0)[tf.newaxis]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis], transforms=transform, output_shape=[crop_size, crop_size],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.ensure_shape(warped[0], [crop_size, crop_size, 3])


def image_to_crop_points(points, crop_to_image):
    """Maps [..., 2] image points (x, y) to crop pixels with the inverse of the crop map.

    An axis-aligned map (b = d = 0) is inverted as u = (x - c) / a, v = (y - f) / e, which Cramer's rule
    equals only up to rounding: the points of unrotated crops stay bit for bit what they were before
    rotation existed.
    """
    a, b, c, d, e, f = tf.unstack(crop_to_image)
    dx, dy = points[..., 0] - c, points[..., 1] - f
    determinant = a * e - b * d
    rotated = tf.stack([(e * dx - b * dy) / determinant, (a * dy - d * dx) / determinant], axis=-1)
    aligned = tf.stack([dx / a, dy / e], axis=-1)
    return tf.where((b == 0) & (d == 0), aligned, rotated)


def jitter_colors(image, seed, options: ColorJitter):
    """`options`' random photometric changes of an [S, S, 3] uint8 crop (see ColorJitter), uint8 out."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    pixels = tf.image.convert_image_dtype(image, tf.float32)
    if options.brightness:
        pixels = pixels * tf.random.stateless_uniform([], seeds[0], 1.0 - options.brightness, 1.0 + options.brightness)
    if options.contrast:
        pixels = tf.image.stateless_random_contrast(pixels, 1.0 - options.contrast, 1.0 + options.contrast, seeds[1])
    if options.saturation:
        pixels = tf.image.stateless_random_saturation(pixels, 1.0 - options.saturation, 1.0 + options.saturation,
                                                      seeds[2])
    if options.hue:
        pixels = tf.image.stateless_random_hue(pixels, options.hue, seeds[3])
    return tf.image.convert_image_dtype(tf.clip_by_value(pixels, 0.0, 1.0), tf.uint8, saturate=True)


def transform_keypoints(keypoints, crop_to_image, flip, flip_permutation):
    """Keypoints [N, K, 3] (x, y, v) in image pixels -> crop pixels; a flip swaps left and right
    (`flip_permutation`, Skeleton.flip_permutation)."""
    xy = image_to_crop_points(keypoints[..., :2], crop_to_image)
    moved = tf.concat([xy, keypoints[..., 2:]], axis=-1)
    return tf.cond(flip, lambda: tf.gather(moved, list(flip_permutation), axis=1), lambda: moved)


def augment(sample, crop_size, flip_permutation, seed=None, training=True, box=BoxOptions(), color=ColorJitter()):
    """Crops, rescales, rotates, flips and colour-jitters a decoded sample (decoder.decode_example).

    Args:
      sample: decoded sample dict.
      crop_size: S, the output side in pixels.
      flip_permutation: [K] keypoint k becomes flip_permutation[k] under a flip (Skeleton.flip_permutation).
      seed: [2] stateless seed, required when training.
      training: random box when True; the plain resized square box when False.
      box: BoxOptions of the random box.
      color: ColorJitter of the training crop.

    Returns:
      the sample with keys.Sample.IMAGE as the [S, S, 3] uint8 crop, keys.Sample.KEYPOINTS in crop pixels
      (left/right swapped when flipped) and keys.Sample.CROP_TO_IMAGE [6]; masks stay packed at image
      resolution.
    """
    if training:
        scale, shift, flip, angle = sample_box(seed, box)
    else:
        scale, shift, flip, angle = tf.constant(1.0), tf.zeros([2]), tf.constant(False), tf.constant(0.0)
    crop_map = crop_to_image_map(sample[keys.Sample.ORIGINAL_SIZE], crop_size, scale, shift, flip, angle)
    out = dict(sample)
    out[keys.Sample.IMAGE] = warp_image(sample[keys.Sample.IMAGE], crop_map, crop_size)
    if training and color.active:
        # A seed of its own, so that the box of a seed is the same with and without jitter.
        out[keys.Sample.IMAGE] = jitter_colors(out[keys.Sample.IMAGE],
                                               tf.random.experimental.stateless_fold_in(seed, 1), color)
    out[keys.Sample.KEYPOINTS] = transform_keypoints(sample[keys.Sample.KEYPOINTS], crop_map, flip,
                                                    flip_permutation)
    out[keys.Sample.CROP_TO_IMAGE] = crop_map
    return out
