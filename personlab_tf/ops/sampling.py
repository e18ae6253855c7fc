"""Grid positions and bilinear lookups shared by the decoding modules.

A map of stride s has cell (i, j) at the input pixel (x, y) = (s j, s i): pixel centres at integer
coordinates, x right, y down, points in (x, y) order and in input pixels. Lookups interpolate bilinearly
and clamp points outside the grid to its border, as the sampler of `personlab_tf.ops.bilinear`.
"""

import tensorflow as tf

from personlab_tf.ops.bilinear import bilinear_sample_per_field


def static_keypoints(tensor: tf.Tensor, axis: int = -1) -> int:
    """K: the static size of `tensor`'s keypoint axis (the skeleton's, fixed by the network's heads); ValueError
    when the graph does not know it."""
    size = tensor.shape[axis]
    if size is None:
        raise ValueError(f"the keypoint axis of a {tensor.shape} tensor must have a static size")
    return int(size)


def map_extent(field: tf.Tensor, stride: float) -> tf.Tensor:
    """[2] float32 largest input-pixel coordinates (x, y) = (s (w - 1), s (h - 1)) of `field` [h, w, ...]."""
    size = tf.shape(field)
    return tf.cast(tf.stack([size[1] - 1, size[0] - 1]), tf.float32) * stride


def clip_to_map(points: tf.Tensor, extent: tf.Tensor) -> tf.Tensor:
    """Clips points [..., 2] (x, y) to the map rectangle [0, extent_x] x [0, extent_y]."""
    return tf.clip_by_value(points, tf.zeros_like(extent), extent)


def sample_each(field: tf.Tensor, points: tf.Tensor, stride: float) -> tf.Tensor:
    """Channel c of `field` [h, w, C] at its own points: points [..., C, 2] (x, y) -> values [..., C].

    Uses `ops.bilinear.bilinear_sample_per_field`.
    """
    values = bilinear_sample_per_field(field[tf.newaxis, ..., tf.newaxis], points[tf.newaxis], stride)
    return values[0, ..., 0]


def sample_channel(field: tf.Tensor, points: tf.Tensor, channels: tf.Tensor, stride: float) -> tf.Tensor:
    """Bilinear value of one channel per point: channel channels[...] of `field` at points[...].

    Same interpolation and border clamping as `ops.bilinear.bilinear_sample`, but it gathers only the
    channel each point needs (4 gathers of D values per point instead of 4 x C x D).

    Args:
      field: [h, w, C, D] float32 (e.g. C offset fields of D = 2 components).
      points: [..., 2] (x, y) in input pixels.
      channels: [...] int32 channel index of each point.
      stride: s of the field.

    Returns:
      [..., D] float32.
    """
    height, width = tf.shape(field)[0], tf.shape(field)[1]
    num_channels, depth = field.shape[2], field.shape[3]
    flat = tf.reshape(field, [-1, depth])

    def corners(coord, size):
        """Fraction [..., 1], lower and upper cell of a coordinate in cells, clamped to [0, size - 1]."""
        coord = tf.clip_by_value(coord, 0.0, tf.cast(size - 1, tf.float32))
        lower = tf.minimum(tf.cast(tf.floor(coord), tf.int32), tf.maximum(size - 2, 0))
        return (coord - tf.cast(lower, tf.float32))[..., tf.newaxis], lower, tf.minimum(lower + 1, size - 1)

    a, u0, u1 = corners(points[..., 0] / stride, width)
    b, v0, v1 = corners(points[..., 1] / stride, height)

    def at(row, column):
        return tf.gather(flat, (row * width + column) * num_channels + channels)

    return (1.0 - b) * ((1.0 - a) * at(v0, u0) + a * at(v0, u1)) + b * ((1.0 - a) * at(v1, u0) + a * at(v1, u1))
