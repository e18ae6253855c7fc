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
from typing import Dict, Optional, Sequence, Tuple

import gin
import tensorflow as tf

from personlab_tf import keys

# The random streams of a training seed that sample_box draws from (scale, shift, flip, rotation).
SEED_STREAMS = 4


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

    The definitions of torchvision's ColorJitter (which the part parser's released code applies), each on
    RGB in [0, 1] with a factor f drawn uniformly in [1 - amount, 1 + amount] and clipped to [0, 1] after
    it, in this order (torchvision draws a random order per image: a fixed one here), each with its own
    stateless seed; the result is rounded to uint8:
      brightness: x f (`blend` with black).
      contrast: `blend` with the mean grey value of the crop (ITU-R 601-2 luma, as PIL's "L").
      saturation: `blend` with the crop's own grey image (the same luma).
      hue: the hue turned by a fraction h of a full turn, h uniform in [-hue, hue] (at most 0.5).
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


def sample_box(seed: tf.Tensor, options: BoxOptions = BoxOptions()
               ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Draws the random box parameters with stateless ops.

    The box centre moves by up to max(|L - L s| / 2, max_translation L s) along each axis, so a box
    smaller than the image can reach every part of it and a larger one can move the image inside it.

    Args:
      seed: [2] int32/int64 stateless seed.
      options: BoxOptions.

    Returns:
      (scale [] float32, shift [2] float32 in units of L (x, y), flip [] bool, angle [] float32 in radians).
      The first three are the draws of the box without rotation: stateless_split's streams do not depend on
    their number, so the rotation's fourth stream (and the colour jitter's fifth) leave them unchanged.
    """
    seeds = tf.random.experimental.stateless_split(seed, SEED_STREAMS)
    scale = tf.random.stateless_uniform([], seeds[0], options.min_scale, options.max_scale)
    half_range = tf.maximum(tf.abs(1.0 - scale) / 2.0, options.max_translation * scale)
    shift = tf.random.stateless_uniform([2], seeds[1], -1.0, 1.0) * half_range
    flip = tf.random.stateless_uniform([], seeds[2]) < options.flip_probability
    limit = math.radians(options.max_rotation)
    angle = tf.random.stateless_uniform([], seeds[3], -limit, limit) if limit else tf.constant(0.0)
    return scale, shift, flip, angle


def crop_to_image_map(image_size: tf.Tensor, crop_size: int, scale: tf.Tensor, shift: tf.Tensor, flip: tf.Tensor,
                      angle: tf.Tensor = 0.0) -> tf.Tensor:
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


def is_flipped(crop_to_image: tf.Tensor) -> tf.Tensor:
    """[] bool: the crop map `crop_to_image` ([6] float32, keys.Sample.CROP_TO_IMAGE) mirrors (its linear
    part has a negative determinant)."""
    a, b, _, d, e, _ = tf.unstack(crop_to_image)
    return a * e - b * d < 0


def warp_image(image: tf.Tensor, crop_to_image: tf.Tensor, crop_size: int) -> tf.Tensor:
    """Bilinearly resamples `image` [H, W, 3] uint8 under the crop map into [S, S, 3] uint8 (zero fill)."""
    transform = tf.concat([crop_to_image, tf.zeros([2])], axis=0)[tf.newaxis]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis], transforms=transform, output_shape=[crop_size, crop_size],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.ensure_shape(warped[0], [crop_size, crop_size, 3])


def image_to_crop_points(points: tf.Tensor, crop_to_image: tf.Tensor) -> tf.Tensor:
    """Maps [..., 2] image points (x, y) to crop pixels with the inverse of the crop map ([6]).

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


def blend(image: tf.Tensor, other: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """other + f (image - other) clipped to [0, 1]: torchvision's (and PIL ImageEnhance's) adjustment by a
    factor f towards (f < 1) or away from (f > 1) `other`; image [S, S, 3] float32 in [0, 1]."""
    return tf.clip_by_value(other + factor * (image - other), 0.0, 1.0)


def jitter_colors(image: tf.Tensor, seed: tf.Tensor, options: ColorJitter) -> tf.Tensor:
    """`options`' random photometric changes of an [S, S, 3] uint8 crop (see ColorJitter), uint8 out."""
    seeds = tf.random.experimental.stateless_split(seed, 4)

    def factor(amount, index):
        return tf.random.stateless_uniform([], seeds[index], 1.0 - amount, 1.0 + amount)

    pixels = tf.cast(image, tf.float32) / 255.0
    if options.brightness:
        pixels = blend(pixels, tf.zeros_like(pixels), factor(options.brightness, 0))
    if options.contrast:
        pixels = blend(pixels, tf.reduce_mean(tf.image.rgb_to_grayscale(pixels)), factor(options.contrast, 1))
    if options.saturation:
        pixels = blend(pixels, tf.image.rgb_to_grayscale(pixels), factor(options.saturation, 2))
    if options.hue:
        turn = tf.random.stateless_uniform([], seeds[3], -options.hue, options.hue)
        pixels = tf.clip_by_value(tf.image.adjust_hue(pixels, turn), 0.0, 1.0)
    return tf.cast(tf.round(pixels * 255.0), tf.uint8)


def transform_keypoints(keypoints: tf.Tensor, crop_to_image: tf.Tensor, flip: tf.Tensor,
                        flip_permutation: Sequence[int]) -> tf.Tensor:
    """Keypoints [N, K, 3] (x, y, v) in image pixels -> crop pixels; a flip swaps left and right
    (`flip_permutation`, Skeleton.flip_permutation)."""
    xy = image_to_crop_points(keypoints[..., :2], crop_to_image)
    moved = tf.concat([xy, keypoints[..., 2:]], axis=-1)
    return tf.cond(flip, lambda: tf.gather(moved, list(flip_permutation), axis=1), lambda: moved)


def augment(sample: Dict[str, tf.Tensor], crop_size: int, flip_permutation: Sequence[int],
            seed: Optional[tf.Tensor] = None, training: bool = True, box: BoxOptions = BoxOptions(),
            color: ColorJitter = ColorJitter()) -> Dict[str, tf.Tensor]:
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
        # The seed's fifth stream (sample_box draws from the first four): a seed's box is the same with and
        # without jitter.
        out[keys.Sample.IMAGE] = jitter_colors(out[keys.Sample.IMAGE],
                                               tf.random.experimental.stateless_split(seed, SEED_STREAMS + 1)[-1],
                                               color)
    out[keys.Sample.KEYPOINTS] = transform_keypoints(sample[keys.Sample.KEYPOINTS], crop_map, flip,
                                                    flip_permutation)
    out[keys.Sample.CROP_TO_IMAGE] = crop_map
    return out
