"""PersonLab decoding of one image or a batch: Hough maps -> seeds -> poses -> scores -> NMS -> masks.

Pure TF graph ops (no py_function, no numpy in the graph): runs in a tf.function with unknown map size and
in a SavedModel, and returns empty (num_detections 0) results when there is no seed. See docs/decoding.md.

Input maps (dict, `personlab_tf.keys`), all already refined by the model (Eq. 2, Eq. 5), probabilities
(not logits), on one grid of stride s where cell (i, j) is the input pixel (x, y) = (s j, s i):
  HEATMAPS [h, w, K] p_k, SHORT_OFFSETS [h, w, K, 2], MID_OFFSETS [h, w, E, 2],
  SEGMENTATION [h, w, 1] p_S and LONG_OFFSETS [h, w, K, 2] (only for masks); offsets (x, y) in input pixels.
The stride is the caller's choice: maps at the output stride, or upsampled (ops.bilinear.upsample_to_stride).
"""

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS, NUM_KEYPOINTS
from personlab_tf.decode.greedy import accept_seeds, follow_tree
from personlab_tf.decode.grid import sample_each
from personlab_tf.decode.hough import hough_voting
from personlab_tf.decode.masks import instance_masks
from personlab_tf.decode.nms import hard_oks_nms, soft_nms
from personlab_tf.decode.scoring import expected_oks_scores, hough_scores, instance_scores, person_areas
from personlab_tf.decode.seeds import find_seeds

SCORINGS = ("expected_oks", "hough")
NMS_KINDS = ("soft", "hard")


def _pad(values, size):
    """Pads the first dimension of `values` with zeros (False) up to `size`."""
    padding = [[0, size - tf.shape(values)[0]]] + [[0, 0]] * (values.shape.rank - 1)
    return tf.pad(values, padding)


@tf.autograph.experimental.do_not_convert  # graph ops only: AutoGraph would just slow tracing down
def decode(maps, stride, with_masks=True, radius=DISK_RADIUS, seed_threshold=0.01, seed_window=3,
           max_seeds=512, rejection_radius=10.0, scoring="expected_oks", nms="soft", nms_radius=10.0,
           oks_threshold=0.5, kappas=None, max_detections=20, segmentation_threshold=0.5,
           mask_threshold=0.25):
    """Persons (and their masks) in one image.

    Args:
      maps: dict of [h, w, ...] maps as in the module docstring (h, w may be unknown statically).
      stride: s, input pixels per cell of the maps (python number).
      with_masks: also compute the instance masks (needs SEGMENTATION and LONG_OFFSETS).
      radius: disk radius R of the Hough normalisation and of Eq. 3 (32 px).
      seed_threshold, seed_window, max_seeds: seeds.find_seeds (0.01, 3 x 3, 512).
      rejection_radius: r of the greedy seed rejection (10 px).
      scoring: "expected_oks" (Eq. 3) or "hough" (s_{j,k} = h_k(y_{j,k})).
      nms: "soft" (Eq. 4, radius `nms_radius` = 10 px) or "hard" (OKS-NMS above `oks_threshold` = 0.5).
      kappas: [K] OKS constants of Eq. 3 and OKS-NMS; default scoring.coco_kappas() (2 x COCO sigmas).
      max_detections: D, the detections kept, best first (20).
      segmentation_threshold, mask_threshold: p_S >= 0.5 and D <= 0.25 of the masks (Eq. 6).

    Returns:
      dict (personlab_tf.keys detection keys): DETECTION_KEYPOINTS [D, K, 2] (x, y) input pixels,
      KEYPOINT_SCORES [D, K], INSTANCE_SCORES [D] descending, NUM_DETECTIONS [] int32 and, with masks,
      INSTANCE_MASKS [D, h, w] bool; slots past NUM_DETECTIONS are zero / False.
    """
    if scoring not in SCORINGS or nms not in NMS_KINDS:
        raise ValueError(f"scoring must be one of {SCORINGS} and nms one of {NMS_KINDS}")
    heatmaps = maps[keys.HEATMAPS]
    hough = hough_voting(heatmaps, maps[keys.SHORT_OFFSETS], stride, radius)
    positions, types, _ = find_seeds(hough, stride, seed_threshold, seed_window, max_seeds)
    poses = follow_tree(positions, types, maps[keys.MID_OFFSETS], stride)
    persons = tf.boolean_mask(poses, accept_seeds(poses, positions, types, rejection_radius))

    if scoring == "expected_oks":
        keypoint_scores = expected_oks_scores(heatmaps, hough, persons, stride, radius, kappas)
    else:
        keypoint_scores = hough_scores(hough, persons, stride)
    if nms == "soft":
        scores = soft_nms(persons, keypoint_scores, nms_radius)
        keep = tf.ones_like(scores, tf.bool)
    else:
        scores = instance_scores(keypoint_scores)
        keep = hard_oks_nms(persons, scores, oks_threshold, kappas)
    count = tf.minimum(tf.reduce_sum(tf.cast(keep, tf.int32)), max_detections)
    ranked = tf.where(keep, scores, -float("inf"))
    best = tf.math.top_k(ranked, tf.minimum(tf.size(ranked), max_detections)).indices[:count]
    keypoints = tf.gather(persons, best)
    result = {
        keys.DETECTION_KEYPOINTS: tf.ensure_shape(_pad(keypoints, max_detections),
                                                     [max_detections, NUM_KEYPOINTS, 2]),
        keys.KEYPOINT_SCORES: tf.ensure_shape(_pad(tf.gather(keypoint_scores, best), max_detections),
                                                 [max_detections, NUM_KEYPOINTS]),
        keys.INSTANCE_SCORES: tf.ensure_shape(_pad(tf.gather(scores, best), max_detections),
                                                 [max_detections]),
        keys.NUM_DETECTIONS: count,
    }
    if with_masks:
        weights = sample_each(heatmaps, keypoints, stride)
        masks = instance_masks(maps[keys.SEGMENTATION], maps[keys.LONG_OFFSETS], keypoints, weights,
                               person_areas(keypoints), stride, segmentation_threshold, mask_threshold)
        result[keys.INSTANCE_MASKS] = tf.ensure_shape(_pad(masks, max_detections),
                                                         [max_detections, None, None])
    return result


@tf.autograph.experimental.do_not_convert
def decode_batch(maps, stride, **kwargs):
    """`decode` of every image of a batch: maps [B, h, w, ...] -> results with a leading B (tf.map_fn).

    Args:
      maps: dict of batched maps (same keys as `decode`).
      stride: s of the maps.
      **kwargs: the keyword arguments of `decode`.

    Returns:
      dict of the `decode` results stacked over the batch: e.g. DETECTION_KEYPOINTS [B, D, K, 2],
      NUM_DETECTIONS [B], INSTANCE_MASKS [B, D, h, w].
    """
    detections = kwargs.get("max_detections", 20)
    signature = {
        keys.DETECTION_KEYPOINTS: tf.TensorSpec([detections, NUM_KEYPOINTS, 2], tf.float32),
        keys.KEYPOINT_SCORES: tf.TensorSpec([detections, NUM_KEYPOINTS], tf.float32),
        keys.INSTANCE_SCORES: tf.TensorSpec([detections], tf.float32),
        keys.NUM_DETECTIONS: tf.TensorSpec([], tf.int32),
    }
    if kwargs.get("with_masks", True):
        signature[keys.INSTANCE_MASKS] = tf.TensorSpec([detections, None, None], tf.bool)
    used = [keys.HEATMAPS, keys.SHORT_OFFSETS, keys.MID_OFFSETS]
    if kwargs.get("with_masks", True):
        used += [keys.SEGMENTATION, keys.LONG_OFFSETS]
    return tf.map_fn(lambda image_maps: decode(image_maps, stride, **kwargs), {key: maps[key] for key in used},
                     fn_output_signature=signature)
