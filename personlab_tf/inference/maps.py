"""Dense maps between grids: resampling across frames and strides, and masks back to the original image.

A *grid* is a map of stride s over a frame of scale f (geometry.py): cell (i, j) is frame pixel
(s j, s i), i.e. original pixel (s j / f, s i / f); pixel centres at integer coordinates, (x, y) order.
The original image itself is the grid of stride 1 over the frame of scale 1. Offsets are in pixels of
their frame, so moving them to a frame of scale f' multiplies them by f' / f; probabilities are not
rescaled. Resampling is bilinear (`tf.image.crop_and_resize` with the exact linear map between the two
grids, so no corner is shifted); target cells beyond the source grid read 0.

The *lattice* of an image is where the detectors compute their image-sized outputs (masks, part maps): the
grid of stride 1 over the frame of scale g = min(k f, 1), k lattice pixels per frame pixel (the detector's
`fineness`), i.e. the original pixels when the image is not larger than k times the frame (k f >= 1) and
k times the frame's pixels over the image otherwise (lattice pixel (i, j) is original pixel (j / g, i / g)).
So the work and the memory of mask computation never exceed k^2 times the frame's size, however large the
image; `to_image` (and the SavedModel, once per batch) then gives each original pixel the value of its
nearest lattice pixel, which changes nothing when g = 1 and moves a boundary by at most half a lattice pixel
otherwise (docs/operations.md).
"""

from typing import Dict, Sequence

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.inference import geometry


def lattice_scale(scale: tf.Tensor, fineness: float = 1) -> tf.Tensor:
    """g = min(k f, 1) of the image's lattice (module docstring) for a frame of scale f and k = `fineness`."""
    return tf.minimum(tf.cast(scale, tf.float32) * fineness, 1.0)


def lattice_size(image_size: tf.Tensor, lattice: tf.Tensor) -> tf.Tensor:
    """[2] int32 (rows, columns) of the lattice of scale g = `lattice` of an image of `image_size` [2]."""
    return geometry.content_size(image_size, lattice)


def nearest_lattice_index(pixels: tf.Tensor, lattice: tf.Tensor, extent: tf.Tensor) -> tf.Tensor:
    """The nearest lattice index round(g x) of original pixel coordinates `pixels` (int, any shape), at most
    `extent` - 1 (broadcast with `lattice` g and `extent`)."""
    index = tf.cast(tf.floor(tf.cast(pixels, tf.float32) * lattice + 0.5), tf.int32)
    return tf.minimum(index, extent - 1)


def to_image(values: tf.Tensor, lattice: tf.Tensor, image_size: tf.Tensor) -> tf.Tensor:
    """One image's map on its lattice [..., rows, columns] -> at its pixels [..., H, W] (nearest lattice pixel).

    Args:
      values: [..., rows, columns] any dtype, on the lattice of scale g = `lattice`.
      lattice: [] float32 g.
      image_size: [2] int32 (H, W).
    """
    shape = tf.shape(values)
    rows = nearest_lattice_index(tf.range(image_size[0]), lattice, shape[-2])
    columns = nearest_lattice_index(tf.range(image_size[1]), lattice, shape[-1])
    # Columns first, on the small lattice; then whole rows, contiguous copies (25x faster than the other order).
    return tf.gather(tf.gather(values, columns, axis=-1), rows, axis=-2)


def detections_at_image(detections: Dict[str, tf.Tensor], image_size: tf.Tensor,
                        map_keys: Sequence[str]) -> Dict[str, tf.Tensor]:
    """One image's detections with the maps of `map_keys` (those present) taken from its lattice to its
    pixels (`to_image`) and LATTICE_SCALE dropped; other entries unchanged."""
    result = dict(detections)
    lattice = result.pop(keys.Detection.LATTICE_SCALE, None)
    for key in map_keys:
        if key in result:
            result[key] = to_image(result[key], lattice, image_size)
    return result


def _flat_channels(values):
    """[B, h, w, ...] -> ([B, h, w, C], trailing shape): trailing dimensions merged for resizing."""
    shape = tf.shape(values)
    return tf.reshape(values, tf.concat([shape[:3], [-1]], axis=0)), shape[3:]


def resample(values: tf.Tensor, ratio: tf.Tensor, cells: tf.Tensor) -> tf.Tensor:
    """Bilinear values of `values` [1, h, w, ...] at source cell coordinates (ratio j, ratio i).

    Args:
      values: [1, h, w, ...] float32 grid.
      ratio: [] float32, source cells per target cell.
      cells: [2] int32 (rows, columns) of the target grid.

    Returns:
      [1, rows, columns, ...]; target cells that fall beyond the source grid are 0.
    """
    flat, trailing = _flat_channels(values)
    source = tf.cast(tf.shape(flat)[1:3] - 1, tf.float32)
    target = tf.cast(cells - 1, tf.float32)
    # crop_and_resize samples row i at y1 (h - 1) + i (y2 - y1) (h - 1) / (rows - 1); with y1 = 0 and
    # y2 = ratio (rows - 1) / (h - 1) that is ratio i (and 0 for a single row).
    far = ratio * target / tf.maximum(source, 1.0)
    box = tf.stack([0.0, 0.0, far[0], far[1]])[tf.newaxis]
    resized = tf.image.crop_and_resize(flat, box, tf.zeros([1], tf.int32), cells, extrapolation_value=0.0)
    return tf.reshape(resized, tf.concat([[1], cells, trailing], axis=0))


def resample_maps(maps: Dict[str, tf.Tensor], source_scale: tf.Tensor, source_stride: int, target_scale: tf.Tensor,
                  target_stride: int, cells: tf.Tensor, offset_keys: Sequence[str] = ()) -> Dict[str, tf.Tensor]:
    """Moves maps of one image from one grid to another (another frame and/or stride).

    Target cell (i, j) is original pixel (t j, t i) / f' (t = target stride, f' = target scale), i.e.
    source cell (t f / (f' s)) (j, i). Offsets (the maps of `offset_keys`) are multiplied by f' / f
    (pixels of the target frame); other maps (probabilities) keep their values.

    Args:
      maps: dict of [1, h, w, ...] maps on the source grid.
      source_scale, source_stride: f and s of the source grid.
      target_scale, target_stride: f' and t of the target grid.
      cells: [2] int32 size of the target grid.
      offset_keys: the keys of `maps` holding offsets in pixels.

    Returns:
      dict of [1, rows, columns, ...] maps on the target grid, the keys of `maps`.
    """
    ratio = (tf.cast(target_stride, tf.float32) * source_scale) / (target_scale * tf.cast(source_stride, tf.float32))
    out = {}
    for key, value in maps.items():
        values = resample(value, ratio, cells)
        out[key] = values * (target_scale / source_scale) if key in offset_keys else values
    return out


def _pixel_extent(any_cell, ratio, limit):
    """First and last original pixel that a mask whose cells along one axis are `any_cell` [D, n] can
    cover: the pixels whose grid coordinate (pixel x ratio) lies within one cell of a True cell, clipped to
    [0, limit - 1]. Empty masks give first > last."""
    count = tf.shape(any_cell)[1]
    index = tf.range(count)
    low = tf.reduce_min(tf.where(any_cell, index, count), axis=1)
    high = tf.reduce_max(tf.where(any_cell, index, -1), axis=1)
    first = tf.cast(tf.math.ceil(tf.cast(low - 1, tf.float32) / ratio), tf.int32)
    last = tf.cast(tf.floor(tf.cast(high + 1, tf.float32) / ratio), tf.int32)
    return tf.clip_by_value(first, 0, limit - 1), tf.clip_by_value(last, 0, limit - 1)


def masks_to_original(masks: tf.Tensor, scale: tf.Tensor, stride: int, image_size: tf.Tensor) -> tf.Tensor:
    """Instance masks on the stride-s grid of the frame -> the pixels of an image of scale f relative to the
    frame: the original image, or with f / g its lattice.

    Each mask is interpolated bilinearly at the image pixel (x, y), i.e. at grid coordinates
    f (x, y) / s, and thresholded at 0.5. Only the pixels within one cell of a mask's True cells are
    interpolated (`tf.image.crop_and_resize` of that box, then padded with False): for 20 masks of an
    801 x 529 image this takes ~10 ms instead of ~100 ms for interpolating every pixel of every mask.

    Args:
      masks: [D, h, w] bool on the grid.
      scale: f of the frame; stride: s of the grid.
      image_size: [2] int32 (height, width) of the original image.

    Returns:
      [D, height, width] bool.
    """
    ratio = scale / tf.cast(stride, tf.float32)                               # grid cells per original pixel
    size = tf.cast(image_size, tf.int32)
    rows_any, columns_any = tf.reduce_any(masks, axis=2), tf.reduce_any(masks, axis=1)
    top, bottom = _pixel_extent(rows_any, ratio, size[0])
    left, right = _pixel_extent(columns_any, ratio, size[1])
    grid = tf.cast(masks, tf.float32)[..., tf.newaxis]                        # [D, h, w, 1]
    # crop_and_resize samples row k of a box at y1 (h - 1) + k (y2 - y1) (h - 1) / (rows - 1): with
    # y1 = top ratio / (h - 1) and y2 = bottom ratio / (h - 1) that is (top + k) ratio.
    span = tf.cast(tf.maximum(tf.shape(masks)[1:3] - 1, 1), tf.float32)
    boxes = tf.stack([tf.cast(top, tf.float32) * ratio / span[0], tf.cast(left, tf.float32) * ratio / span[1],
                      tf.cast(bottom, tf.float32) * ratio / span[0], tf.cast(right, tf.float32) * ratio / span[1]],
                     axis=1)

    def one_mask(slot):
        def interpolate():
            part = tf.image.crop_and_resize(grid[slot:slot + 1], boxes[slot:slot + 1], tf.zeros([1], tf.int32),
                                            tf.stack([bottom[slot] - top[slot] + 1, right[slot] - left[slot] + 1]))
            return tf.pad(part[0, ..., 0] >= 0.5, [[top[slot], size[0] - 1 - bottom[slot]],
                                                  [left[slot], size[1] - 1 - right[slot]]])

        return tf.cond(tf.reduce_any(rows_any[slot]), interpolate, lambda: tf.zeros(size, tf.bool))

    out = tf.map_fn(one_mask, tf.range(tf.shape(masks)[0]), fn_output_signature=tf.TensorSpec([None, None], tf.bool))
    return tf.ensure_shape(out, masks.shape[:1] + [None, None])
