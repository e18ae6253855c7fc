"""PersonLab training targets (paper §3.1–3.2), made with TF ops for one augmented sample.

Targets live on the target grid of stride s over the S x S crop (data/grids.py): cell (i, j) is the crop
pixel (x, y) = (s j, s i). Positions and offsets are in crop pixels, (x, y) order, pixel centres at
integer coordinates.

Which persons count where (docs/data.md):
- a keypoint is *labelled* when v > 0 and its person is not a crowd region;
- heatmap, short- and mid-range disks come from labelled keypoints of any person (persons with
  labelled keypoints are annotated by definition);
- negatives of the heatmap are ignored on pixels of crowd regions and of persons without keypoints, and,
  for keypoint k, on pixels of an imputed person whose imputation left k unlabelled (unknown, not absent);
  positives are always used;
- segmentation is 1 on pixels of any non-crowd person; crowd pixels outside every person are ignored;
- long-range offsets are defined only on pixels covered by exactly one non-crowd person mask and no
  crowd region, for that person's labelled keypoints.
"""

import dataclasses
from typing import Sequence, Tuple

import gin
import tensorflow as tf

from personlab_tf import constants, keys
from personlab_tf.data import grids, keypoint_targets


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PersonLabData:
    """The training crops and targets (gin: `PersonLabData.crop_size = 801`, ...).

    Attributes:
      crop_size: S, the side of the training crops (801 in the paper); S - 1 must be a multiple of the
        target stride and of the output stride.
      target_stride: s of the target grid (a divisor of the network's output stride).
      disk_radius: R in pixels (32 in the paper); decoding uses the same R.
      use_imputed_keypoints: train on imputed keypoints (paper §3.3); False for the ablation of Tables 8-9.
    """

    crop_size: int = 801
    target_stride: int = 8
    disk_radius: float = constants.DISK_RADIUS
    use_imputed_keypoints: bool = True

    def __post_init__(self):
        grids.grid_size(self.crop_size, self.target_stride)

# The target keys of `make_targets` (keys.Map).
TARGET_KEYS = (
    keys.Map.HEATMAPS, keys.Map.HEATMAP_WEIGHTS, keys.Map.SHORT_OFFSETS, keys.Map.SHORT_WEIGHTS,
    keys.Map.MID_OFFSETS, keys.Map.MID_WEIGHTS, keys.Map.SEGMENTATION, keys.Map.SEGMENTATION_WEIGHTS,
    keys.Map.LONG_OFFSETS, keys.Map.LONG_WEIGHTS,
)


def mid_range(keypoints: tf.Tensor, labelled: tf.Tensor, points: tf.Tensor, stride: int,
              radius: float, directed_edges: Sequence[Tuple[int, int]]) -> Tuple[tf.Tensor, tf.Tensor]:
    """Mid-range offsets M_{k,l}(x) = (y_{j,l} - x)[x in D_R(y_{j,k})] for the directed edges (paper §3.1).

    Defined only for persons with both k and l labelled; among overlapping disks the person whose
    keypoint k is nearest wins.

    Args:
      keypoints: [N, K, 2] crop positions; labelled: [N, K] bool; points: [h, w, 2] cell positions.
      stride, radius: grid stride s and disk radius R.
      directed_edges: the E (k, l) edges (Skeleton.directed_edges).

    Returns:
      (mid_offsets [h, w, E, 2], mid_weights [h, w, E]).
    """
    sources = [k for k, _ in directed_edges]
    targets = [l for _, l in directed_edges]
    valid = tf.gather(labelled, sources, axis=1) & tf.gather(labelled, targets, axis=1)
    inside, owner = keypoint_targets.nearest_in_disks(tf.gather(keypoints, sources, axis=1), valid, points.shape[0],
                                                      stride, radius)
    offsets = keypoint_targets.gather_offsets(tf.gather(keypoints, targets, axis=1), owner, inside, points)
    return offsets, tf.cast(inside, tf.float32)


def segmentation_and_long_range(keypoints: tf.Tensor, labelled: tf.Tensor, ownership: grids.Ownership,
                                points: tf.Tensor) -> dict:
    """Segmentation and long-range offsets L_k(x) = y_{j,k} - x (paper §3.2).

    Args:
      keypoints: [N, K, 2]; labelled: [N, K] bool; ownership: grids.person_ownership of the masks on the
        grid; points: [h, w, 2].

    Returns:
      dict of keys.Map SEGMENTATION [h, w, 1], SEGMENTATION_WEIGHTS [h, w, 1], LONG_OFFSETS [h, w, K, 2],
      LONG_WEIGHTS [h, w, K].
    """
    long_valid = ownership.single[..., tf.newaxis] & tf.gather(grids.append_none(labelled), ownership.owner)
    owner_k = tf.broadcast_to(ownership.owner[..., tf.newaxis], tf.shape(long_valid))
    return {
        keys.Map.SEGMENTATION: tf.cast(ownership.any_person, tf.float32)[..., tf.newaxis],
        keys.Map.SEGMENTATION_WEIGHTS: tf.cast(~ownership.crowd | ownership.any_person, tf.float32)[..., tf.newaxis],
        keys.Map.LONG_OFFSETS: keypoint_targets.gather_offsets(keypoints, owner_k, long_valid, points),
        keys.Map.LONG_WEIGHTS: tf.cast(long_valid, tf.float32),
    }


def make_targets(sample: dict, crop_size: int, directed_edges: Sequence[Tuple[int, int]], stride: int = 8,
                 radius: float = constants.DISK_RADIUS) -> dict:
    """All PersonLab targets and weights for one augmented sample (data/augment.py).

    Args:
      sample: augmented sample dict (keypoints in crop pixels, packed masks at image resolution).
      crop_size: S; directed_edges: the skeleton's mid-range edges (Skeleton.directed_edges); stride: target
        stride s (S - 1 divisible by s); radius: disk radius R in pixels.

    Returns:
      dict over TARGET_KEYS, shapes as documented in keys.Map.
    """
    size = grids.grid_size(crop_size, stride)
    points = grids.grid_points(size, stride)
    keypoints = sample[keys.Sample.KEYPOINTS][..., :2]
    is_crowd = sample[keys.Sample.IS_CROWD]
    labelled = keypoint_targets.labelled_keypoints(sample)
    masks = grids.masks_on_grid(sample[keys.Sample.PACKED_MASKS], sample[keys.Sample.NUM_PERSONS],
                                sample[keys.Sample.ORIGINAL_SIZE], sample[keys.Sample.CROP_TO_IMAGE], size, stride)
    result = segmentation_and_long_range(keypoints, labelled, grids.person_ownership(masks, is_crowd), points)
    ignore = keypoint_targets.heatmap_ignore(masks, sample)
    result.update(keypoint_targets.heatmap_and_short_range(keypoints, labelled, points, ignore, stride, radius))
    result[keys.Map.MID_OFFSETS], result[keys.Map.MID_WEIGHTS] = mid_range(keypoints, labelled, points, stride,
                                                                           radius, directed_edges)
    return result
