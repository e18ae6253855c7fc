"""Training targets of instance-aware part parsing (second paper §3; docs/parts.md), TF ops, one sample.

All on corner-aligned grids over the S x S crop: a grid of stride s has cell (i, j) at crop pixel
(x, y) = (s j, s i) (data/grids.py). Points are (x, y), pixel centres at integer
coordinates. Which persons count where:
- part labels: every pixel's class (0 = background) from the image's part label map; pixels of crowd
  regions and of persons whose parts are not annotated get weight 0;
- the dense-to-sparse projection field (DSPF) f(x): on cells covered by exactly one non-crowd person
  mask (and no crowd region) of a person with labelled keypoints, the offset from x to that person's
  nearest labelled keypoint, in cells of the level (the paper's f_l, Eqs. 2-3), at every pyramid level;
- keypoint heatmaps and short-range offsets: PersonLab's (data/keypoint_targets.py), disk radius R;
- limb heatmaps: for every limb (k, l) of the skeleton's limbs (`Skeleton.limbs`, personlab_tf/skeleton.py)
  whose two keypoints a person has labelled, an
  unnormalised elliptical Gaussian between them (`limb_heatmaps`), the maximum over persons; where the
  heatmap of either keypoint ignores negatives (`limb_ignore`) only the limbs' support (values of at least
  LIMB_SUPPORT, 3 sigma of the ellipse) is trained;
- the matching supervision: each person's keypoints, padded to a fixed number of persons.
The number of keypoints K is the sample's (its keypoints [N, K, 3], static); `limbs` are (k, l) index pairs
into them, L = len(limbs).
"""

import dataclasses
import math
from typing import Dict, List, Sequence, Tuple

import gin
import tensorflow as tf

from personlab_tf import constants, keys
from personlab_tf.data import augment, grids, keypoint_targets
from personlab_tf.skeleton import Edge
from personlab_tf.tasks.parts import part_sets

PYRAMID_STRIDES = (4, 8, 16, 32)    # feature pyramid levels 2..5
# Strides of the part head: the paper's part decoder ends at level 2 (stride 4); stride 2 adds one decoder
# stage over the backbone's stem (model.py part_decoder).
PART_STRIDES = (PYRAMID_STRIDES[0], 2)
LIMB_SIGMA = 8.0                    # sigma of the limb Gaussians across the limb, crop pixels
MAX_PERSONS = 32                    # persons kept for the matching loss
LIMB_SUPPORT = math.exp(-4.5)       # a limb Gaussian's support: within 3 sigma of its ellipse
_EPSILON = 1e-6


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PartsData:
    """The part-parsing crops and targets (gin: `PartsData.part_set = 'mhp_v2'`, ...).

    Attributes:
      part_set: name of the records' part set (part_sets.PART_SETS).
      crop_size: S; S - 1 must be a multiple of 32 (the coarsest pyramid level).
      pose_stride: stride of the keypoint and limb targets (4, the pose branch's resolution).
      disk_radius: R of the keypoint heatmaps and short-range offsets; decoding uses the same R.
      limb_sigma: across-limb sigma of the limb heatmaps, crop pixels.
      part_stride: stride of the part targets and of the part head (PART_STRIDES): 4, the paper's part
        decoder; 2, one more decoder stage over the backbone's stride-2 stem, for parts a few pixels wide
        (docs/parts.md, the demo).
      max_persons: persons of a crop the matching loss compares (`matching_persons`); its cost grows with
        the square of it. The synthetic parts scenes hold at most 8 persons (gin/parts_demo.gin).
    """

    part_set: str = "synthetic"
    crop_size: int = 801
    pose_stride: int = 4
    disk_radius: float = constants.DISK_RADIUS
    limb_sigma: float = LIMB_SIGMA
    part_stride: int = PART_STRIDES[0]
    max_persons: int = MAX_PERSONS

    def __post_init__(self):
        part_sets.part_set(self.part_set)
        if (self.crop_size - 1) % PYRAMID_STRIDES[-1]:
            raise ValueError(f"crop size {self.crop_size} - 1 must be a multiple of {PYRAMID_STRIDES[-1]}")
        if self.part_stride not in PART_STRIDES:
            raise ValueError(f"part stride {self.part_stride} must be one of {PART_STRIDES}")
        if self.max_persons < 1:
            raise ValueError(f"max_persons {self.max_persons} must be at least 1")


def part_labels_on_grid(sample: Dict[str, tf.Tensor], size: int, stride: int,
                        flip_permutation: Sequence[int]) -> tf.Tensor:
    """Part classes [size, size] int32 at the grid cells, with left/right classes swapped in a flipped crop.

    Args:
      sample: augmented sample with keys.Sample.PART_LABELS [H, W] uint8 at image resolution.
      size, stride: grid cells per side and stride.
      flip_permutation: part_sets.PartSet.flip_permutation.
    """
    labels = grids.sample_on_grid(sample[keys.Sample.PART_LABELS][..., tf.newaxis], sample[keys.Sample.ORIGINAL_SIZE],
                                  sample[keys.Sample.CROP_TO_IMAGE], size, stride)[..., 0]
    labels = tf.cast(labels, tf.int32)
    flipped = augment.is_flipped(sample[keys.Sample.CROP_TO_IMAGE])
    return tf.where(flipped, tf.gather(tf.constant(flip_permutation, tf.int32), labels), labels)


def part_weights(masks: tf.Tensor, is_crowd: tf.Tensor, has_parts: tf.Tensor) -> tf.Tensor:
    """[h, w] float32: 0 on cells of crowd regions and of persons without part labels, else 1.

    Args:
      masks: [h, w, N] bool person masks on the grid; is_crowd, has_parts: [N] bool.
    """
    unknown = tf.reduce_any(masks & (is_crowd | ~has_parts), axis=-1)
    return 1.0 - tf.cast(unknown, tf.float32)


def projection_field(keypoints: tf.Tensor, labelled: tf.Tensor, ownership: grids.Ownership, points: tf.Tensor,
                     stride: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """The DSPF target of one pyramid level: f(x) = (y_{j,k*} - x) / s, k* the labelled keypoint of x's
    person j nearest to x (second paper §3.2), in cells of the level.

    Args:
      keypoints: [N, K, 2] crop pixels; labelled: [N, K] bool.
      ownership: grids.person_ownership of the person masks on the level's grid.
      points: [h, w, 2] crop positions of the level's cells; stride: s of the level.

    Returns:
      (field [h, w, 2] float32 in cells, weights [h, w] float32: 1 on cells of exactly one non-crowd
      person with a labelled keypoint and of no crowd region).
    """
    owner_points = tf.gather(grids.append_none(keypoints), ownership.owner)      # [h, w, K, 2]
    owner_labelled = tf.gather(grids.append_none(labelled), ownership.owner)     # [h, w, K]
    offsets = owner_points - points[:, :, tf.newaxis, :]
    distances = tf.where(owner_labelled, tf.reduce_sum(offsets * offsets, axis=-1), float("inf"))
    nearest = tf.argmin(distances, axis=-1, output_type=tf.int32)
    field = tf.gather(offsets, nearest, batch_dims=2) / stride
    valid = ownership.single & tf.reduce_any(owner_labelled, axis=-1)
    return tf.where(valid[..., tf.newaxis], field, 0.0), tf.cast(valid, tf.float32)


def limb_gaussian(points: tf.Tensor, start: tf.Tensor, end: tf.Tensor, sigma: float) -> tf.Tensor:
    """Unnormalised elliptical Gaussian of one limb segment [start, end] at points [..., 2].

    The ellipse is centred on the segment's midpoint with axes along and across the limb:
    exp(-a^2 / (2 (sigma + L/2)^2) - b^2 / (2 sigma^2)), a and b the coordinates of x - midpoint along
    and across the limb, L its length; 1 on the midpoint, exp(-1/2) or more at both keypoints.

    Args:
      points: [..., 2] positions; start, end: [2] or broadcastable (x, y); sigma: spread across the limb.
    """
    delta = end - start
    length = tf.norm(delta, axis=-1)
    valid_length, safe_length = length > _EPSILON, tf.maximum(length, _EPSILON)
    along_x = tf.where(valid_length, delta[..., 0] / safe_length, 1.0)
    along_y = tf.where(valid_length, delta[..., 1] / safe_length, 0.0)
    # Coordinates one at a time: no [..., 2] intermediate of the broadcast shape (the input pipeline's
    # cost, [h, w, N, L] per limb map).
    relative_x = points[..., 0] - (start[..., 0] + end[..., 0]) / 2.0
    relative_y = points[..., 1] - (start[..., 1] + end[..., 1]) / 2.0
    along = relative_x * along_x + relative_y * along_y
    across = relative_y * along_x - relative_x * along_y
    spread = sigma + length / 2.0
    return tf.exp(-along * along / (2.0 * spread * spread) - across * across / (2.0 * sigma * sigma))


def limb_ends(limbs: Sequence[Edge]) -> Tuple[List[int], List[int]]:
    """([L] first keypoints, [L] second keypoints) of the limbs ((k, l) pairs)."""
    return [int(k) for k, _ in limbs], [int(l) for _, l in limbs]


def limb_heatmaps(keypoints: tf.Tensor, labelled: tf.Tensor, points: tf.Tensor, limbs: Sequence[Edge],
                  sigma: float = LIMB_SIGMA) -> tf.Tensor:
    """Limb heatmaps [h, w, L]: the maximum over persons of `limb_gaussian` of each limb both of whose
    keypoints the person has labelled (second paper §3.3, limb scoring).

    Args:
      keypoints: [N, K, 2]; labelled: [N, K] bool; points: [h, w, 2]; limbs: L (k, l) keypoint pairs
        (Skeleton.limbs); sigma: across-limb spread.
    """
    first, second = limb_ends(limbs)
    starts = tf.gather(keypoints, first, axis=1)                                             # [N, L, 2]
    ends = tf.gather(keypoints, second, axis=1)
    valid = tf.gather(labelled, first, axis=1) & tf.gather(labelled, second, axis=1)         # [N, L]
    grid = points[:, :, tf.newaxis, tf.newaxis, :]                                           # [h, w, 1, 1, 2]
    values = limb_gaussian(grid, starts, ends, sigma)                                        # [h, w, N, L]
    values = tf.where(valid, values, 0.0)
    return tf.reduce_max(tf.concat([values, tf.zeros_like(values[:, :, :1])], axis=2), axis=2)


def limb_ignore(ignore: tf.Tensor, limbs: Sequence[Edge]) -> tf.Tensor:
    """[h, w, L] bool: limb negatives are not trained where either keypoint's heatmap negatives are not
    (ignore: [h, w, K], keypoint_targets.heatmap_ignore; limbs: L (k, l) pairs)."""
    first, second = limb_ends(limbs)
    return tf.gather(ignore, first, axis=-1) | tf.gather(ignore, second, axis=-1)


def matching_persons(keypoints: tf.Tensor, labelled: tf.Tensor, crop_size: int,
                     max_persons: int = MAX_PERSONS) -> Tuple[tf.Tensor, tf.Tensor]:
    """Each person's keypoints for the matching loss, padded (or cut) to `max_persons`.

    A keypoint counts when it is labelled and inside the crop; persons with such keypoints come first (in
    their order), so a cut drops persons the loss would ignore before any other.

    Args:
      keypoints: [N, K, 2] with K static; labelled: [N, K] bool.

    Returns:
      (points [P, K, 2] float32, labelled [P, K] bool), P = max_persons.
    """
    num_keypoints = keypoints.shape[1]
    inside = tf.reduce_all((keypoints >= 0.0) & (keypoints <= crop_size - 1.0), axis=-1)
    usable = labelled & inside
    order = tf.argsort(tf.cast(~tf.reduce_any(usable, axis=-1), tf.int32), stable=True)
    keypoints, usable = tf.gather(keypoints, order), tf.gather(usable, order)
    count = tf.minimum(tf.shape(keypoints)[0], max_persons)
    padding = [[0, max_persons - count], [0, 0]]
    points = tf.pad(keypoints[:count], padding + [[0, 0]])
    usable = tf.pad(usable[:count], padding)
    return (tf.ensure_shape(points, [max_persons, num_keypoints, 2]),
            tf.ensure_shape(usable, [max_persons, num_keypoints]))


def make_part_targets(sample: Dict[str, tf.Tensor], crop_size: int, part_set: part_sets.PartSet, limbs: Sequence[Edge],
                      pose_stride: int = 4, radius: float = constants.DISK_RADIUS, limb_sigma: float = LIMB_SIGMA,
                      max_persons: int = MAX_PERSONS, part_stride: int = PART_STRIDES[0]) -> Dict[str, tf.Tensor]:
    """All part-parsing targets and weights of one augmented sample (shapes in keys.Map).

    Args:
      sample: augmented sample (data/augment.py) with the part keys (keys.Sample.PART_LABELS, HAS_PARTS);
        its keypoints [N, K, 3] are those of the skeleton (K static).
      crop_size: S, with S - 1 a multiple of 32 (the coarsest pyramid level).
      part_set: part_sets.PartSet of the labels.
      limbs: the skeleton's limbs (Skeleton.limbs), L (k, l) keypoint pairs: the limb heatmaps' channels.
      pose_stride: stride of the keypoint and limb targets (4, the pose branch's resolution).
      radius: disk radius R of the keypoint heatmaps and short-range offsets.
      limb_sigma: across-limb sigma of the limb heatmaps.
      max_persons: persons kept for the matching loss.
      part_stride: stride of the part classes and weights (PART_STRIDES).
    """
    keypoints = sample[keys.Sample.KEYPOINTS][..., :2]
    labelled = keypoint_targets.labelled_keypoints(sample)
    is_crowd = sample[keys.Sample.IS_CROWD]

    levels = {}
    for stride in sorted(set(PYRAMID_STRIDES) | {pose_stride, part_stride}):  # pose and parts: usually level 2's
        size = grids.grid_size(crop_size, stride)
        masks = grids.masks_on_grid(sample[keys.Sample.PACKED_MASKS], sample[keys.Sample.NUM_PERSONS],
                                    sample[keys.Sample.ORIGINAL_SIZE], sample[keys.Sample.CROP_TO_IMAGE], size, stride)
        levels[stride] = size, masks, grids.grid_points(size, stride)

    size, masks, points = levels[pose_stride]
    ignore = keypoint_targets.heatmap_ignore(masks, sample)
    limb_maps = limb_heatmaps(keypoints, labelled, points, limbs, limb_sigma)
    result = keypoint_targets.heatmap_and_short_range(keypoints, labelled, points, ignore, pose_stride, radius)
    part_size, part_masks, _ = levels[part_stride]
    result.update({
        keys.Map.PART_CLASSES: part_labels_on_grid(sample, part_size, part_stride, part_set.flip_permutation),
        keys.Map.PART_WEIGHTS: part_weights(part_masks, is_crowd, sample[keys.Sample.HAS_PARTS]),
        keys.Map.LIMB_HEATMAPS: limb_maps,
        keys.Map.LIMB_WEIGHTS: tf.cast((limb_maps >= LIMB_SUPPORT) | ~limb_ignore(ignore, limbs), tf.float32),
    })
    for stride in PYRAMID_STRIDES:
        _, level, level_points = levels[stride]
        field, weights = projection_field(keypoints, labelled, grids.person_ownership(level, is_crowd), level_points,
                                          stride)
        result[keys.Map.projection(stride)] = field
        result[keys.Map.projection_weights(stride)] = weights
    result[keys.Map.MATCH_POINTS], result[keys.Map.MATCH_LABELLED] = matching_persons(keypoints, labelled, crop_size,
                                                                                     max_persons)
    return result
