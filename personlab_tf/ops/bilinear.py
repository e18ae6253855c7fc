"""Differentiable bilinear sampling of dense fields, and resizing between corner-aligned grids.

Grid convention: a field of output stride `os` has cell (i, j) at the input pixel (x, y) = (os j, os i)
(pixel centres at integer coordinates, x right, y down). Points are (x, y) in input pixels. An input of
size S = n os + 1 gives (S - 1) / os + 1 cells, so grids of different strides share their corners.
"""

from typing import Sequence, Union

import tensorflow as tf


def bilinear_sample(field: tf.Tensor, points: tf.Tensor, output_stride: int = 1) -> tf.Tensor:
    """Samples `field` at `points` with bilinear interpolation (4 corners gathered from the flat field).

    Differentiable w.r.t. `field` and `points`. Points outside the grid are clamped to its border (their
    gradient w.r.t. the points is then zero).

    Args:
      field: [B, h, w, C] float tensor, cell (i, j) at input pixel (os j, os i).
      points: [B, ..., 2] float tensor, (x, y) in input pixels; any number of middle dimensions.
      output_stride: os, input pixels per field cell.

    Returns:
      [B, ..., C]: field values at the points.
    """
    field = tf.convert_to_tensor(field)
    points = tf.convert_to_tensor(points, dtype=field.dtype)
    shape = tf.shape(field)
    batch = tf.reshape(tf.range(shape[0]), tf.concat([[-1], tf.ones([points.shape.rank - 2], tf.int32)], 0))
    values = _interpolate(tf.reshape(field, [-1, shape[3]]), points / output_stride, shape[1], shape[2],
                          lambda rows, cols: (batch * shape[1] + rows) * shape[2] + cols)
    return tf.ensure_shape(values, points.shape[:-1] + field.shape[-1:])


def bilinear_sample_per_field(fields: tf.Tensor, points: tf.Tensor, output_stride: int = 1) -> tf.Tensor:
    """Samples each of N fields at its own points: out[b, ..., n] = fields[b, :, :, n] at points[b, ..., n].

    Args:
      fields: [B, h, w, N, D] float tensor (e.g. N offset fields of D = 2 components).
      points: [B, ..., N, 2] float tensor, (x, y) in input pixels.
      output_stride: os, input pixels per field cell.

    Returns:
      [B, ..., N, D].
    """
    fields = tf.convert_to_tensor(fields)
    points = tf.convert_to_tensor(points, dtype=fields.dtype)
    shape = tf.shape(fields)
    rank = points.shape.rank
    batch = tf.reshape(tf.range(shape[0]), tf.concat([[-1], tf.ones([rank - 2], tf.int32)], 0))
    field_index = tf.range(shape[3])

    def flat_index(rows, cols):
        return ((batch * shape[1] + rows) * shape[2] + cols) * shape[3] + field_index

    values = _interpolate(tf.reshape(fields, [-1, shape[4]]), points / output_stride, shape[1], shape[2],
                          flat_index)
    return tf.ensure_shape(values, points.shape[:-1] + fields.shape[-1:])


def _interpolate(flat_field, grid_points, height, width, flat_index):
    """Bilinear interpolation of a field flattened to [cells, C] at grid coordinates [..., 2] (x, y).

    `flat_index(rows, cols)` maps integer corner coordinates (shaped like the points) to rows of
    `flat_field`. Returns [..., C].
    """
    u, u0, u1 = _corners(grid_points[..., 0], width)
    v, v0, v1 = _corners(grid_points[..., 1], height)
    a = (u - tf.cast(u0, u.dtype))[..., tf.newaxis]
    b = (v - tf.cast(v0, v.dtype))[..., tf.newaxis]

    def gather(rows, cols):
        return tf.gather(flat_field, flat_index(rows, cols))

    return ((1 - b) * ((1 - a) * gather(v0, u0) + a * gather(v0, u1))
            + b * ((1 - a) * gather(v1, u0) + a * gather(v1, u1)))


def _corners(coord, size):
    """Clamps grid coordinates to [0, size - 1] and returns (coord, lower corner, upper corner).

    The lower corner is at most size - 2, so a point on the last row/column interpolates within the last
    cell (weight 1 on the upper corner) and keeps a meaningful gradient. A NaN coordinate (a diverged
    network) reads cell 0 instead of an invalid index.
    """
    last = tf.cast(size - 1, coord.dtype)
    coord = tf.where(tf.math.is_nan(coord), tf.zeros_like(coord), coord)
    coord = tf.clip_by_value(coord, tf.zeros_like(last), last)
    lower = tf.minimum(tf.cast(tf.floor(coord), tf.int32), tf.maximum(size - 2, 0))
    return coord, lower, tf.minimum(lower + 1, size - 1)


def resize_aligned(maps: tf.Tensor, size: Union[tf.Tensor, Sequence[int]]) -> tf.Tensor:
    """Bilinear resize between corner-aligned grids (align_corners semantics); values are not rescaled.

    Args:
      maps: [B, h, w, ...] float tensor; trailing dimensions are resized independently.
      size: (h', w'), the new grid size.

    Returns:
      [B, h', w', ...]; the corner cells of both grids coincide.
    """
    maps = tf.convert_to_tensor(maps)
    shape = tf.shape(maps)
    flat = tf.reshape(maps, tf.concat([shape[:3], [tf.reduce_prod(shape[3:])]], axis=0))
    resized = tf.raw_ops.ResizeBilinear(images=flat, size=tf.cast(size, tf.int32), align_corners=True,
                                        half_pixel_centers=False)
    resized = tf.cast(resized, maps.dtype)
    out = tf.reshape(resized, tf.concat([shape[:1], tf.shape(resized)[1:3], shape[3:]], axis=0))
    return tf.ensure_shape(out, maps.shape[:1] + [None, None] + maps.shape[3:])


def upsample_to_stride(maps: tf.Tensor, output_stride: int, target_stride: int) -> tf.Tensor:
    """Resizes maps from output stride os to target stride s (s divides os): h cells -> (h - 1) os / s + 1.

    Args:
      maps: [B, h, w, ...] float tensor at stride `output_stride`; offsets stay in input pixels.
      output_stride: os.
      target_stride: s, a divisor of os.

    Returns:
      [B, (h - 1) os / s + 1, (w - 1) os / s + 1, ...].
    """
    if output_stride % target_stride:
        raise ValueError(f"target stride {target_stride} must divide output stride {output_stride}")
    factor = output_stride // target_stride
    spatial = tf.shape(maps)[1:3]
    return resize_aligned(maps, (spatial - 1) * factor + 1)
