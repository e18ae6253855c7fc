"""Inference geometry: the original image -> the network input ("frame") and back.

The image is resized so that its larger side spans `max_side` pixels, corner aligned: with L the
larger side of the original image, the scale is

    f = (max_side - 1) / (L - 1),    frame pixel u = f x,    original pixel x = u / f,

so the first and last pixel centres of the larger side land on frame pixels 0 and max_side - 1 (pixel
centres at integer coordinates in both images, x right, y down, (x, y) order). The same f applies to
both axes (no aspect change). The frame is then padded at the bottom and right with zeros to
n os + 1 pixels per side, so that the output grid of stride os is corner aligned too: grid cell (i, j)
is frame pixel (os j, os i) and the last cell sits on the last frame pixel. With max_side = 1401 and
os = 8 the larger side needs no padding (1400 = 175 x 8); at os = 16 it is padded to 1409.

The warp is TensorFlow's ImageProjectiveTransformV3 (the op of the training augmentation, same pixel
convention, tested in tests/test_data_augment.py) with the map x = u / f, so image and points share one
linear map exactly. `crop_to_image` gives that map in the layout of keys.Sample.CROP_TO_IMAGE, so the training
target code can run on the inference frame (scripts/oracle_eval.py).
"""

from typing import Union

import tensorflow as tf

# The larger side of the single-scale inference frame (PersonLab §4.1), both tasks' default.
MAX_SIDE = 1401


def resize_scale(image_size: tf.Tensor, max_side: int) -> tf.Tensor:
    """f = (max_side - 1) / (L - 1), L = the larger side of `image_size` [2] int (height, width).

    A 1-pixel image gets f = max_side - 1 (any f maps its only pixel to 0).
    """
    larger = tf.cast(tf.reduce_max(image_size), tf.float32)
    return tf.cast(max_side - 1, tf.float32) / tf.maximum(larger - 1.0, 1.0)


def padded_side(side: Union[int, tf.Tensor], multiple: int) -> Union[int, tf.Tensor]:
    """The smallest n multiple + 1 >= side (side >= 1): int tensor or python int."""
    return (side - 1 + multiple - 1) // multiple * multiple + 1


def content_size(image_size: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """[2] int32 (height, width) of an image of `image_size` [2] resized by f = `scale`, corner aligned:
    floor((S - 1) f) + 1 pixels per side."""
    return tf.cast(tf.floor(tf.cast(tf.convert_to_tensor(image_size) - 1, tf.float32) * scale + 1e-3), tf.int32) + 1


def frame_size(image_size: tf.Tensor, scale: tf.Tensor, output_stride: int) -> tf.Tensor:
    """[2] int32 (height, width) of the padded frame of an image of `image_size` [2] (height, width).

    The resized content spans `content_size` pixels per side (the larger side exactly max_side); each side
    is padded to n os + 1.
    """
    return padded_side(content_size(image_size, scale), output_stride)


def grid_size(frame: tf.Tensor, stride: int) -> tf.Tensor:
    """[2] int32 cells (rows, columns) of the stride-s grid over a frame of size `frame` [2]."""
    return (frame - 1) // stride + 1


def resize_image(image: tf.Tensor, scale: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Warps `image` [H, W, C] (any numeric dtype) to the frame: [size[0], size[1], C] float32.

    Frame pixel (u, v) takes the bilinear value of the original at (u / f, v / f); outside the original
    image (the padding) it is 0, as outside the training crops.
    """
    inverse = 1.0 / scale
    transform = tf.stack([inverse, 0.0, 0.0, 0.0, inverse, 0.0, 0.0, 0.0])[tf.newaxis]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[tf.newaxis], transforms=transform, output_shape=tf.cast(size, tf.int32),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return warped[0]


def to_original(points: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Frame points [..., 2] (x, y) -> original-image pixels: x = u / f."""
    return points / scale


def to_frame(points: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Original-image points [..., 2] (x, y) -> frame pixels: u = f x."""
    return points * scale


def crop_to_image(scale: tf.Tensor) -> tf.Tensor:
    """[6] float32 (1 / scale, 0, 0, 0, 1 / scale, 0), keys.Sample.CROP_TO_IMAGE of the frame: original pixel
    (x, y) = (u, v) / scale."""
    inverse = 1.0 / tf.cast(scale, tf.float32)
    return tf.stack([inverse, 0.0, 0.0, 0.0, inverse, 0.0])
