"""Keypoint disks: heatmaps p_k and short-range offsets S_k (PersonLab §3.1), shared by both tasks.

The part parser's keypoint branch (second paper §3.3) trains PersonLab's heatmaps and short-range offsets,
so both tasks' targets (tasks/*/targets.py) make them here, on a grid of data/grids.py. Positions and
offsets in crop pixels, (x, y) order, pixel centres at integer coordinates.

Disks are handled per (person, channel) on a fixed window of cells around the disk centre and reduced
into the grid with segment operations, so the cost grows with the number of disks, not with grid size
times the number of persons.
"""

import math
from typing import Tuple

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import grids


def nearest_in_disks(centres: tf.Tensor, valid: tf.Tensor, size: int, stride: int,
                     radius: float) -> Tuple[tf.Tensor, tf.Tensor]:
    """For every grid cell and channel, the nearest valid disk centre within `radius`.

    This is the membership x in D_R(y_{j,c}) of PersonLab §3.1 with the tie rule "closest person instance".

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


def gather_offsets(destinations: tf.Tensor, owner: tf.Tensor, inside: tf.Tensor, points: tf.Tensor) -> tf.Tensor:
    """Offsets y_{owner, c} - x from each cell to its owner's destination point, zero outside.

    Args:
      destinations: [N, C, 2] float32 destination points per person and channel.
      owner: [h, w, C] int32 person index, N meaning none.
      inside: [h, w, C] bool.
      points: [h, w, 2] cell positions.

    Returns:
      [h, w, C, 2] float32.
    """
    padded = grids.append_none(destinations)
    channel = tf.broadcast_to(tf.range(tf.shape(owner)[-1]), tf.shape(owner))
    target = tf.gather_nd(padded, tf.stack([owner, channel], axis=-1))
    offsets = target - points[:, :, tf.newaxis, :]
    return tf.where(inside[..., tf.newaxis], offsets, 0.0)


def labelled_keypoints(sample: dict) -> tf.Tensor:
    """[N, K] bool: keypoints with v > 0 of persons that are not crowd regions."""
    return (sample[keys.Sample.KEYPOINTS][..., 2] > 0) & ~sample[keys.Sample.IS_CROWD][:, tf.newaxis]


def unknown_keypoints(sample: dict) -> tf.Tensor:
    """[N, K] bool: keypoints whose absence is not known: those an imputation (PersonLab §3.3) did not
    label (v = 0 of an imputed person). They are unknown, not absent: no heatmap negative is trained for
    them over the person (docs/data.md)."""
    return sample[keys.Sample.IMPUTED][:, tf.newaxis] & (sample[keys.Sample.KEYPOINTS][..., 2] <= 0)


def heatmap_ignore(masks: tf.Tensor, sample: dict) -> tf.Tensor:
    """[h, w, K] bool: where heatmap negatives of keypoint k are not trained: cells of crowd regions and of
    persons without keypoints (every k), and cells of an imputed person for its `unknown_keypoints`.

    Args:
      masks: [h, w, N] bool person masks on the grid; sample: the sample of those persons (keys.Sample).
    """
    is_crowd, annotated = sample[keys.Sample.IS_CROWD], sample[keys.Sample.ANNOTATED]
    everything = tf.reduce_any(masks & (is_crowd | ~annotated), axis=-1)[..., tf.newaxis]          # [h, w, 1]
    unknown = tf.reduce_any(masks[..., tf.newaxis] & unknown_keypoints(sample), axis=2)          # [h, w, K]
    return everything | unknown


def heatmap_and_short_range(keypoints: tf.Tensor, labelled: tf.Tensor, points: tf.Tensor, ignore: tf.Tensor,
                            stride: int, radius: float) -> dict:
    """Heatmaps p_k, their weights, and short-range offsets S_k(x) = y_{j,k} - x (PersonLab §3.1).

    Args:
      keypoints: [N, K, 2] crop positions; labelled: [N, K] bool (disks of these keypoints).
      points: [h, w, 2] cell positions; ignore: [h, w, K] bool, negatives not to be trained (`heatmap_ignore`).
      stride, radius: grid stride and disk radius R.

    Returns:
      dict of keys.Map HEATMAPS [h, w, K] in {0, 1}, HEATMAP_WEIGHTS [h, w, K] (1 inside every disk and
      wherever negatives are trained), SHORT_OFFSETS [h, w, K, 2] and SHORT_WEIGHTS [h, w, K] (the disks).
    """
    size = points.shape[0]
    inside, owner = nearest_in_disks(keypoints, labelled, size, stride, radius)
    heatmaps = tf.cast(inside, tf.float32)
    return {
        keys.Map.HEATMAPS: heatmaps,
        keys.Map.HEATMAP_WEIGHTS: tf.cast(inside | ~ignore, tf.float32),
        keys.Map.SHORT_OFFSETS: gather_offsets(keypoints, owner, inside, points),
        keys.Map.SHORT_WEIGHTS: heatmaps,
    }
