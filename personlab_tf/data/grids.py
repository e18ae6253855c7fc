"""Target grids over a training crop, and the person masks sampled on them (TF ops, one sample).

A grid of stride s covers the S x S crop with cell (i, j) at the crop pixel (x, y) = (s j, s i), so it
has (S - 1) / s + 1 cells per side (S - 1 must be a multiple of s). Positions and offsets are in crop
pixels, (x, y) order, pixel centres at integer coordinates (docs/conventions.md). Both tasks' targets
(tasks/*/targets.py) are made on such grids.
"""

from typing import NamedTuple

import tensorflow as tf

from personlab_tf.data import record_format


def grid_size(crop_size: int, stride: int) -> int:
    """Cells per side of the target grid; raises if `crop_size - 1` is not a multiple of `stride`."""
    if (crop_size - 1) % stride:
        raise ValueError(f"crop size {crop_size} - 1 must be a multiple of the target stride {stride}")
    return (crop_size - 1) // stride + 1


def grid_points(size: int, stride: int) -> tf.Tensor:
    """[size, size, 2] float32 crop positions (x, y) of the grid cells."""
    coords = tf.range(size, dtype=tf.float32) * stride
    ys, xs = tf.meshgrid(coords, coords, indexing="ij")
    return tf.stack([xs, ys], axis=-1)


def append_none(per_person: tf.Tensor) -> tf.Tensor:
    """Appends a zero row to a [N, ...] tensor, so that person index N ("none") can be gathered."""
    none = tf.zeros(tf.concat([[1], tf.shape(per_person)[1:]], axis=0), per_person.dtype)
    return tf.concat([per_person, none], axis=0)


def sample_on_grid(image_map: tf.Tensor, image_size: tf.Tensor, crop_to_image: tf.Tensor, size: int,
                   stride: int) -> tf.Tensor:
    """Reads an image-resolution map at the grid cells (nearest image pixel); 0 outside the image.

    Args:
      image_map: [H, W, C] map at image resolution (any dtype).
      image_size: [2] int32 (height, width).
      crop_to_image: [6] float32 (a, b, c, d, e, f) affine crop-to-image map (keys.Sample.CROP_TO_IMAGE).
      size, stride: grid cells per side and stride.

    Returns:
      [size, size, C], the dtype of `image_map`.
    """
    a, b, c, d, e, f = tf.unstack(crop_to_image)
    points = grid_points(size, stride)
    u, v = points[..., 0], points[..., 1]
    cols = tf.cast(tf.round(a * u + b * v + c), tf.int32)
    rows = tf.cast(tf.round(d * u + e * v + f), tf.int32)
    inside = (cols >= 0) & (cols < image_size[1]) & (rows >= 0) & (rows < image_size[0])
    indices = tf.stack([tf.clip_by_value(rows, 0, image_size[0] - 1), tf.clip_by_value(cols, 0, image_size[1] - 1)],
                       axis=-1)
    sampled = tf.gather_nd(image_map, indices)
    return tf.where(inside[..., tf.newaxis], sampled, tf.zeros_like(sampled))


def masks_on_grid(packed_masks: tf.Tensor, num_persons: tf.Tensor, image_size: tf.Tensor,
                  crop_to_image: tf.Tensor, size: int, stride: int) -> tf.Tensor:
    """Samples the person masks at the grid cells (nearest image pixel), outside the image = 0.

    Args:
      packed_masks: [H, W, ceil(N/8)] uint8 packed masks (data/record_format.py).
      num_persons: [] int32 N.
      image_size, crop_to_image, size, stride: see `sample_on_grid`.

    Returns:
      [size, size, N] bool.
    """
    sampled = sample_on_grid(packed_masks, image_size, crop_to_image, size, stride)
    return record_format.unpack_bits(sampled, num_persons)


class Ownership(NamedTuple):
    """Which person each grid cell belongs to, from the person masks on the grid (`person_ownership`).

    Attributes:
      owner: [h, w] int32, the lowest-index non-crowd person whose mask covers the cell; N where none.
      single: [h, w] bool, the cell lies in exactly one non-crowd person's mask and in no crowd region.
      any_person: [h, w] bool, the cell lies in at least one non-crowd person's mask.
      crowd: [h, w] bool, the cell lies in a crowd region.
    """

    owner: tf.Tensor
    single: tf.Tensor
    any_person: tf.Tensor
    crowd: tf.Tensor


def person_ownership(masks: tf.Tensor, is_crowd: tf.Tensor) -> Ownership:
    """The owner of every cell (see `Ownership`): masks [h, w, N] bool on the grid, is_crowd [N] bool.

    Both tasks define their per-person dense targets (PersonLab's long-range offsets, the part parser's
    projection field) only on cells of exactly one person, so they share this.
    """
    person_masks = masks & ~is_crowd
    crowd = tf.reduce_any(masks & is_crowd, axis=-1)
    count = tf.reduce_sum(tf.cast(person_masks, tf.int32), axis=-1)
    with_none = tf.pad(tf.cast(person_masks, tf.int8), [[0, 0], [0, 0], [0, 1]])
    owner = tf.argmax(with_none, axis=-1, output_type=tf.int32)
    return Ownership(owner=owner, single=(count == 1) & ~crowd, any_person=count > 0, crowd=crowd)
