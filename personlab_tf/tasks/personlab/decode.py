"""PersonLab decoding of one image or a batch: Hough maps -> seeds -> poses -> scores -> NMS -> masks.

Pure TF graph ops (no py_function, no numpy in the graph): runs in a tf.function with unknown map size and
in a SavedModel, and returns empty (num_detections 0) results when there is no seed. See docs/decoding.md.

Input maps (dict, keys.Map), all already refined by the model (Eq. 2, Eq. 5), probabilities (not logits),
on one grid of stride s where cell (i, j) is the input pixel (x, y) = (s j, s i):
  HEATMAPS [h, w, K] p_k, SHORT_OFFSETS [h, w, K, 2], MID_OFFSETS [h, w, E, 2],
  SEGMENTATION [h, w, 1] p_S and LONG_OFFSETS [h, w, K, 2] (only for masks); offsets (x, y) in input pixels.
The stride is the caller's choice: maps at the output stride, or upsampled (ops.bilinear.upsample_to_stride).
"""

import dataclasses
from typing import Dict, Optional, Tuple

import gin
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import MAX_DETECTIONS
from personlab_tf.skeleton import Skeleton
from personlab_tf.inference.detections import best, pad_to
from personlab_tf.ops.hough import hough_voting
from personlab_tf.ops.peaks import find_peaks, refine_peaks
from personlab_tf.ops.sampling import sample_each
from personlab_tf.tasks.personlab.greedy import accept_seeds, follow_tree
from personlab_tf.tasks.personlab.masks import instance_masks
from personlab_tf.tasks.personlab.nms import hard_oks_nms, soft_nms
from personlab_tf.tasks.personlab.scoring import expected_oks_scores, hough_scores, instance_scores, person_areas

SCORINGS = ("expected_oks", "hough")
OKS_CELLS = ("centre", "integrated")
NMS_KINDS = ("soft", "hard")
POSE_KEYS = (keys.Map.HEATMAPS, keys.Map.SHORT_OFFSETS, keys.Map.MID_OFFSETS)
MASK_KEYS = (keys.Map.SEGMENTATION, keys.Map.LONG_OFFSETS)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PersonLabDecoding:
    """Settings of PersonLab decoding, the paper's values as defaults (docs/decoding.md).

    The disk radius R of Hough voting and Eq. 3 is not among them: it is always the training targets'
    (the task passes it).

    Attributes:
      seed_threshold, seed_window, max_seeds: ops/peaks.find_peaks (0.01, 3 x 3, 512).
      refine_seeds: seeds at the centroid of their 3 x 3 Hough neighbourhood (ops/peaks.refine_peaks)
        instead of their cell centre (the paper's x_i).
      rejection_radius: r of the greedy seed rejection (10 px).
      scoring: "expected_oks" (Eq. 3) or "hough" (s_{j,k} = h_k(y_{j,k})).
      nms: "soft" (Eq. 4, radius `nms_radius` = 10 px) or "hard" (OKS-NMS above `oks_threshold` = 0.5).
      kappas: [K] OKS constants of Eq. 3 and OKS-NMS; None: the skeleton's (Skeleton.kappas, 2 x its sigmas).
      oks_cells: Eq. 3's Gaussian at each cell of the disk: "centre" (its value at the cell centre, the
        paper's sum) or "integrated" (its mean over the cell, scoring.expected_oks_scores).
      max_detections: D, the detections kept, best first (constants.MAX_DETECTIONS).
      segmentation_threshold, mask_threshold: p_S >= 0.5 and D <= 0.25 of the masks (Eq. 6).
    """

    seed_threshold: float = 0.01
    seed_window: int = 3
    max_seeds: int = 512
    refine_seeds: bool = False
    rejection_radius: float = 10.0
    scoring: str = "expected_oks"
    nms: str = "soft"
    nms_radius: float = 10.0
    oks_threshold: float = 0.5
    kappas: Optional[Tuple[float, ...]] = None
    oks_cells: str = "centre"
    max_detections: int = MAX_DETECTIONS
    segmentation_threshold: float = 0.5
    mask_threshold: float = 0.25

    def __post_init__(self):
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if self.nms not in NMS_KINDS:
            raise ValueError(f"nms must be one of {NMS_KINDS}, got {self.nms!r}")
        if self.oks_cells not in OKS_CELLS:
            raise ValueError(f"oks_cells must be one of {OKS_CELLS}, got {self.oks_cells!r}")


@tf.autograph.experimental.do_not_convert  # graph ops only: AutoGraph would just slow tracing down
def decode(maps: Dict[str, tf.Tensor], stride: float, radius: float, skeleton: Skeleton,
           options: PersonLabDecoding = PersonLabDecoding(), with_masks: bool = True) -> Dict[str, tf.Tensor]:
    """Persons (and their masks) in one image.

    Args:
      maps: dict of [h, w, ...] maps as in the module docstring (h, w may be unknown statically).
      stride: s, input pixels per cell of the maps (python number).
      radius: disk radius R of the Hough normalisation and of Eq. 3, the training targets' (32 px).
      skeleton: the keypoint set of the maps (its tree and, unless options.kappas, its OKS constants).
      options: PersonLabDecoding.
      with_masks: also compute the instance masks (needs SEGMENTATION and LONG_OFFSETS).

    Returns:
      dict (keys.Detection): KEYPOINTS [D, K, 2] (x, y) input pixels, KEYPOINT_SCORES [D, K],
      INSTANCE_SCORES [D] descending, NUM_DETECTIONS [] int32 and, with masks, MASKS [D, h, w] bool;
      slots past NUM_DETECTIONS are zero / False.
    """
    heatmaps = maps[keys.Map.HEATMAPS]
    hough = hough_voting(heatmaps, maps[keys.Map.SHORT_OFFSETS], stride, radius)
    positions, types, _ = find_peaks(hough, stride, options.seed_threshold, options.seed_window, options.max_seeds)
    if options.refine_seeds:
        positions = refine_peaks(hough, positions, types, stride)
    poses = follow_tree(positions, types, maps[keys.Map.MID_OFFSETS], stride, skeleton.directed_edges)
    persons = tf.boolean_mask(poses, accept_seeds(poses, positions, types, options.rejection_radius))
    kappas = skeleton.kappas if options.kappas is None else options.kappas

    if options.scoring == "expected_oks":
        keypoint_scores = expected_oks_scores(heatmaps, hough, persons, stride, kappas, radius,
                                              integrate=options.oks_cells == "integrated")
    else:
        keypoint_scores = hough_scores(hough, persons, stride)
    if options.nms == "soft":
        scores = soft_nms(persons, keypoint_scores, options.nms_radius)
        keep = tf.ones_like(scores, tf.bool)
    else:
        scores = instance_scores(keypoint_scores)
        keep = hard_oks_nms(persons, scores, kappas, options.oks_threshold)
    slots = options.max_detections
    chosen, count = best(scores, keep, slots)
    keypoints = tf.gather(persons, chosen)
    result = {
        keys.Detection.KEYPOINTS: pad_to(keypoints, slots),
        keys.Detection.KEYPOINT_SCORES: pad_to(tf.gather(keypoint_scores, chosen), slots),
        keys.Detection.INSTANCE_SCORES: pad_to(tf.gather(scores, chosen), slots),
        keys.Detection.NUM_DETECTIONS: count,
    }
    if with_masks:
        weights = sample_each(heatmaps, keypoints, stride)
        masks = person_masks(maps[keys.Map.SEGMENTATION], maps[keys.Map.LONG_OFFSETS], keypoints, weights, stride,
                             options)
        result[keys.Detection.MASKS] = pad_to(masks, slots)
    return result


def person_masks(segmentation: tf.Tensor, long_offsets: tf.Tensor, keypoints: tf.Tensor, weights: tf.Tensor,
                 stride: float, options: PersonLabDecoding) -> tf.Tensor:
    """The decoded persons' Eq. 6 masks (masks.instance_masks) with the decoding's thresholds.

    Args:
      segmentation: [h, w, 1] p_S; long_offsets: [h, w, K, 2] (x, y) pixels of the keypoints' frame.
      keypoints: [P, K, 2] (x, y) pixels of the same frame; weights: [P, K] their heatmap probabilities.
      stride: pixels per cell of the two maps; options: PersonLabDecoding (segmentation and mask thresholds).

    Returns:
      [P, h, w] bool masks.
    """
    return instance_masks(segmentation, long_offsets, keypoints, weights, person_areas(keypoints), stride,
                          options.segmentation_threshold, options.mask_threshold)


@tf.autograph.experimental.do_not_convert
def decode_batch(maps: Dict[str, tf.Tensor], stride: float, radius: float, skeleton: Skeleton,
                 options: PersonLabDecoding = PersonLabDecoding(), with_masks: bool = True) -> Dict[str, tf.Tensor]:
    """`decode` of every image of a batch: maps [B, h, w, ...] -> results with a leading B (tf.map_fn).

    Returns:
      dict of the `decode` results stacked over the batch: e.g. KEYPOINTS [B, D, K, 2], NUM_DETECTIONS [B],
      MASKS [B, D, h, w].
    """
    slots = options.max_detections
    signature = {
        keys.Detection.KEYPOINTS: tf.TensorSpec([slots, skeleton.num_keypoints, 2], tf.float32),
        keys.Detection.KEYPOINT_SCORES: tf.TensorSpec([slots, skeleton.num_keypoints], tf.float32),
        keys.Detection.INSTANCE_SCORES: tf.TensorSpec([slots], tf.float32),
        keys.Detection.NUM_DETECTIONS: tf.TensorSpec([], tf.int32),
    }
    used = POSE_KEYS
    if with_masks:
        signature[keys.Detection.MASKS] = tf.TensorSpec([slots, None, None], tf.bool)
        used += MASK_KEYS
    return tf.map_fn(lambda image_maps: decode(image_maps, stride, radius, skeleton, options, with_masks),
                     {key: maps[key] for key in used}, fn_output_signature=signature)
