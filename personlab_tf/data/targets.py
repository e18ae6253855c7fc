"""PersonLab training targets (paper §3.1–3.2), made with TF ops for one augmented sample.

Targets live on the target grid of stride s over the S x S crop: cell (i, j) is the crop pixel
(x, y) = (s j, s i), so the grid has (S - 1) / s + 1 cells per side (S - 1 must be a multiple of s).
Positions and offsets are in crop pixels, (x, y) order, pixel centres at integer coordinates.

Which persons count where (DESIGN §2–3):
- a keypoint is *labelled* when v > 0 and its person is not a crowd region;
- heatmap, short- and mid-range disks come from labelled keypoints of any person (persons with
  labelled keypoints are annotated by definition);
- negatives of the heatmap are ignored on pixels of crowd regions and of persons without keypoints;
  positives are always used;
- segmentation is 1 on pixels of any non-crowd person; crowd pixels outside every person are ignored;
- long-range offsets are defined only on pixels covered by exactly one non-crowd person mask and no
  crowd region, for that person's labelled keypoints.

Disks are handled per (person, channel) on a fixed window of cells around the disk centre and
reduced into the grid with segment operations, so the cost grows with the number of disks, not with
grid size times the number of persons.
"""

import math

import tensorflow as tf

from personlab_tf import constants, keys
from personlab_tf.data import record_format


def grid_size(crop_size, stride):
    """Cells per side of the target grid; raises if `crop_size - 1` is not a multiple of `stride`."""
    if (crop_size - 1) % stride:
        raise ValueError(f"crop size {crop_size} - 1 must be a multiple of the target stride {stride}")
    return (crop_size - 1) // stride + 1


def grid_points(size, stride):
    """[size, size, 2] float32 crop positions (x, y) of the grid cells."""
    coords = tf.range(size, dtype=tf.float32) * stride
    ys, xs = tf.meshgrid(coords, coords, indexing="ij")
    return tf.stack([xs, ys], axis=-1)


def nearest_in_disks(centres, valid, size, stride, radius):
    """For every grid cell and channel, the nearest valid disk centre within `radius`.

    This is the membership x in D_R(y_{j,c}) of paper §3.1 with the tie rule "closest person instance".

    Args:
      centres: [N, C, 2] float32 disk centres (x, y) in crop pixels, person n, channel c.
      valid: [N, C] bool, which disks exist.
      size: grid cells per side (python int); stride: grid stride in pixels; radius: R in pixels.

    Returns:
      inside: [size, size, C] bool, the cell lies in at least one disk of channel c.
      owner: [size, size, C] int32, the person whose disk centre is nearest (ties: lowest index);
        N where `inside` is False.
    """
    num_persons = tf.shape(centres)[0]
    channels = centres.shape[1]
    half = math.ceil(radius / stride + 0.5)
    steps = tf.range(-half, half + 1)
    di, dj = tf.meshgrid(steps, steps, indexing="ij")
    window = tf.reshape(tf.stack([di, dj], axis=-1), [-1, 2])                  # [V, 2]
    centre_cells = tf.cast(tf.round(centres / stride), tf.int32)              # [N, C, 2] (j, i)
    cell_i = centre_cells[..., 1:2] + window[:, 0]                             # [N, C, V]
    cell_j = centre_cells[..., 0:1] + window[:, 1]
    dx = tf.cast(cell_j * stride, tf.float32) - centres[..., 0:1]
    dy = tf.cast(cell_i * stride, tf.float32) - centres[..., 1:2]
    dist2 = dx * dx + dy * dy
    in_grid = (cell_i >= 0) & (cell_i < size) & (cell_j >= 0) & (cell_j < size)
    member = valid[..., tf.newaxis] & in_grid & (dist2 <= radius * radius)
    num_cells = size * size * channels
    channel = tf.range(channels)[tf.newaxis, :, tf.newaxis]
    segment = tf.where(member, (cell_i * size + cell_j) * channels + channel, num_cells)
    best = tf.math.unsorted_segment_min(dist2, segment, num_cells + 1)
    person = tf.broadcast_to(tf.range(num_persons)[:, tf.newaxis, tf.newaxis], tf.shape(segment))
    is_best = member & (dist2 <= tf.gather(best, segment))
    owner = tf.math.unsorted_segment_min(tf.where(is_best, person, num_persons), segment,
                                         num_cells + 1)
    inside = tf.reshape(owner[:num_cells] < num_persons, [size, size, channels])
    owner = tf.reshape(tf.minimum(owner[:num_cells], num_persons), [size, size, channels])
    return inside, owner


def append_none(per_person):
    """Appends a zero row to a [N, ...] tensor, so that person index N ("none") can be gathered."""
    none = tf.zeros(tf.concat([[1], tf.shape(per_person)[1:]], axis=0), per_person.dtype)
    return tf.concat([per_person, none], axis=0)


def gather_offsets(destinations, owner, inside, points):
    """Offsets y_{owner, c} - x from each cell to its owner's destination point, zero outside.

    Args:
      destinations: [N, C, 2] float32 destination points per person and channel.
      owner: [h, w, C] int32 person index, N meaning none.
      inside: [h, w, C] bool.
      points: [h, w, 2] cell positions.

    Returns:
      [h, w, C, 2] float32.
    """
    padded = append_none(destinations)
    channel = tf.broadcast_to(tf.range(tf.shape(owner)[-1]), tf.shape(owner))
    target = tf.gather_nd(padded, tf.stack([owner, channel], axis=-1))
    offsets = target - points[:, :, tf.newaxis, :]
    return tf.where(inside[..., tf.newaxis], offsets, 0.0)


def sample_on_grid(image_map, image_size, crop_to_image, size, stride):
    """Reads an image-resolution map at the grid cells (nearest image pixel); 0 outside the image.

    Args:
      image_map: [H, W, C] map at image resolution (any dtype).
      image_size: [2] int32 (height, width).
      crop_to_image: [4] float32 (ax, bx, ay, by) crop-to-image map.
      size, stride: grid cells per side and stride.

    Returns:
      [size, size, C], the dtype of `image_map`.
    """
    ax, bx, ay, by = tf.unstack(crop_to_image)
    coords = tf.range(size, dtype=tf.float32) * stride
    cols = tf.cast(tf.round(ax * coords + bx), tf.int32)
    rows = tf.cast(tf.round(ay * coords + by), tf.int32)
    col_ok = (cols >= 0) & (cols < image_size[1])
    row_ok = (rows >= 0) & (rows < image_size[0])
    rows_grid, cols_grid = tf.meshgrid(tf.clip_by_value(rows, 0, image_size[0] - 1),
                                       tf.clip_by_value(cols, 0, image_size[1] - 1), indexing="ij")
    sampled = tf.gather_nd(image_map, tf.stack([rows_grid, cols_grid], axis=-1))
    inside = row_ok[:, tf.newaxis] & col_ok[tf.newaxis, :]
    return tf.where(inside[..., tf.newaxis], sampled, tf.zeros_like(sampled))


def masks_on_grid(packed_masks, num_persons, image_size, crop_to_image, size, stride):
    """Samples the person masks at the grid cells (nearest image pixel), outside the image = 0.

    Args:
      packed_masks: [H, W, ceil(N/8)] uint8 packed masks (record_format).
      num_persons: [] int32 N.
      image_size, crop_to_image, size, stride: see `sample_on_grid`.

    Returns:
      [size, size, N] bool.
    """
    sampled = sample_on_grid(packed_masks, image_size, crop_to_image, size, stride)
    return record_format.unpack_bits(sampled, num_persons)


def heatmap_and_short_range(keypoints, labelled, points, ignore, stride, radius):
    """Heatmaps p_k, their weights, and short-range offsets S_k(x) = y_{j,k} - x (paper §3.1).

    Args:
      keypoints: [N, K, 2] crop positions; labelled: [N, K] bool.
      points: [h, w, 2] cell positions; ignore: [h, w] bool, negatives not to be trained.
      stride, radius: grid stride and disk radius R.

    Returns:
      (heatmaps [h, w, K], heatmap_weights [h, w, K], short_offsets [h, w, K, 2], short_weights [h, w, K]).
    """
    size = points.shape[0]
    inside, owner = nearest_in_disks(keypoints, labelled, size, stride, radius)
    heatmaps = tf.cast(inside, tf.float32)
    weights = tf.cast(inside | ~ignore[..., tf.newaxis], tf.float32)
    offsets = gather_offsets(keypoints, owner, inside, points)
    return heatmaps, weights, offsets, heatmaps


def mid_range(keypoints, labelled, points, stride, radius):
    """Mid-range offsets M_{k,l}(x) = (y_{j,l} - x)[x in D_R(y_{j,k})] for the directed edges (paper §3.1).

    Defined only for persons with both k and l labelled; among overlapping disks the person whose
    keypoint k is nearest wins.

    Returns:
      (mid_offsets [h, w, E, 2], mid_weights [h, w, E]).
    """
    sources = [k for k, _ in constants.DIRECTED_EDGES]
    targets = [l for _, l in constants.DIRECTED_EDGES]
    valid = tf.gather(labelled, sources, axis=1) & tf.gather(labelled, targets, axis=1)
    inside, owner = nearest_in_disks(tf.gather(keypoints, sources, axis=1), valid, points.shape[0],
                                     stride, radius)
    offsets = gather_offsets(tf.gather(keypoints, targets, axis=1), owner, inside, points)
    return offsets, tf.cast(inside, tf.float32)


def heatmap_ignore(masks, is_crowd, annotated):
    """[h, w] bool: cells of crowd regions or of persons without keypoints, where heatmap negatives are
    not trained (masks [h, w, N] bool on the grid; is_crowd, annotated [N] bool)."""
    return tf.reduce_any(masks & (is_crowd | ~annotated), axis=-1)


def labelled_keypoints(sample):
    """[N, K] bool: keypoints with v > 0 of persons that are not crowd regions."""
    return (sample[keys.KEYPOINTS][..., 2] > 0) & ~sample[keys.IS_CROWD][:, tf.newaxis]


def segmentation_and_long_range(keypoints, labelled, masks, is_crowd, annotated, points):
    """Segmentation, long-range offsets L_k(x) = y_{j,k} - x (paper §3.2) and the ignore region.

    Args:
      keypoints: [N, K, 2]; labelled: [N, K] bool; masks: [h, w, N] bool on the grid;
      is_crowd, annotated: [N] bool; points: [h, w, 2].

    Returns:
      dict of segmentation [h, w, 1], segmentation_weights [h, w, 1], long_offsets [h, w, K, 2],
      long_weights [h, w, K], and "ignore" [h, w] bool: pixels of crowd regions or of persons
      without keypoints (heatmap negatives are not trained there).
    """
    person_masks = masks & ~is_crowd
    crowd = tf.reduce_any(masks & is_crowd, axis=-1)
    ignore = heatmap_ignore(masks, is_crowd, annotated)
    segmentation = tf.reduce_any(person_masks, axis=-1)
    count = tf.reduce_sum(tf.cast(person_masks, tf.int32), axis=-1)
    with_none = tf.pad(tf.cast(person_masks, tf.int8), [[0, 0], [0, 0], [0, 1]])
    owner = tf.argmax(with_none, axis=-1, output_type=tf.int32)   # used only where count == 1
    single = (count == 1) & ~crowd
    long_valid = single[..., tf.newaxis] & tf.gather(append_none(labelled), owner)  # [h, w, K]
    owner_k = tf.broadcast_to(owner[..., tf.newaxis], tf.shape(long_valid))
    long_offsets = gather_offsets(keypoints, owner_k, long_valid, points)
    return {
        keys.SEGMENTATION: tf.cast(segmentation, tf.float32)[..., tf.newaxis],
        keys.SEGMENTATION_WEIGHTS: tf.cast(~crowd | segmentation, tf.float32)[..., tf.newaxis],
        keys.LONG_OFFSETS: long_offsets,
        keys.LONG_WEIGHTS: tf.cast(long_valid, tf.float32),
        "ignore": ignore,
    }


def make_targets(sample, crop_size, stride=8, radius=constants.DISK_RADIUS):
    """All PersonLab targets and weights for one augmented sample (augment.augment).

    Args:
      sample: augmented sample dict (keypoints in crop pixels, packed masks at image resolution).
      crop_size: S; stride: target stride s (S - 1 divisible by s); radius: disk radius R in pixels.

    Returns:
      dict over keys.TARGET_KEYS, shapes as documented in keys.py.
    """
    size = grid_size(crop_size, stride)
    points = grid_points(size, stride)
    keypoints = sample[keys.KEYPOINTS][..., :2]
    is_crowd = sample[keys.IS_CROWD]
    labelled = labelled_keypoints(sample)
    masks = masks_on_grid(sample[keys.PACKED_MASKS], sample[keys.NUM_PERSONS], sample[keys.IMAGE_SIZE],
                          sample[keys.CROP_TO_IMAGE], size, stride)
    dense = segmentation_and_long_range(keypoints, labelled, masks, is_crowd, sample[keys.ANNOTATED],
                                        points)
    heatmaps, heatmap_weights, short, short_weights = heatmap_and_short_range(
        keypoints, labelled, points, dense.pop("ignore"), stride, radius)
    mid, mid_weights = mid_range(keypoints, labelled, points, stride, radius)
    dense.update({
        keys.HEATMAPS: heatmaps,
        keys.HEATMAP_WEIGHTS: heatmap_weights,
        keys.SHORT_OFFSETS: short,
        keys.SHORT_WEIGHTS: short_weights,
        keys.MID_OFFSETS: mid,
        keys.MID_WEIGHTS: mid_weights,
    })
    return dense
