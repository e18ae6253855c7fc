"""Oracle maps: the training targets of an image, made on the inference frame, as if predicted.

The upper bound of the decoder and the end-to-end check of targets + inference geometry + decoding +
evaluation (scripts/oracle_eval.py): the ground truth of one image goes through the very code that
makes the training targets (targets.make_targets, at stride = output stride, on the frame of
inference/geometry.py), then the model's refinement (Eq. 2, Eq. 5), then the same upsampling, decoding
and mapping back to original pixels as the network's maps (detector.py).

Target heatmaps (0/1) and segmentation (0/1) are used as probabilities. Coordinates: pixel centres at
integer coordinates, (x, y) order; targets in frame pixels, detections in original-image pixels.

Unlabelled keypoints and the tree: mid-range targets exist only for edges with both keypoints labelled
(paper §3.1), so read literally the targets cannot lead the greedy decoder across an unlabelled
keypoint: a person without a labelled nose (the hub of the tree) falls apart into a left, a right and
a face fragment, each a separate detection. A trained network has no such gap (it predicts offsets
everywhere and is never told "zero" there), so by default (`complete_tree=True`) the mid-range maps
are made, by the same target code, from a skeleton whose unlabelled keypoints are placed at the mean
of their already placed tree neighbours (`complete_skeleton`); heatmaps, short- and long-range
offsets and segmentation keep the real labels, so no keypoint is added to what can be seeded, scored
or evaluated. docs/inference.md reports both variants.
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import NUM_EDGES, NUM_KEYPOINTS, TREE_EDGES
from personlab_tf.data import grids
from personlab_tf.inference import maps as maps_lib
from personlab_tf.inference import serving
from personlab_tf.inference.oracle import frame_grid
from personlab_tf.tasks.personlab import detector, targets
from personlab_tf.tasks.personlab.decode import PersonLabDecoding
from personlab_tf.tasks.personlab.refine import refine_long_offsets, refine_mid_offsets

MAP_KEYS = (keys.Map.HEATMAPS, keys.Map.SHORT_OFFSETS, keys.Map.MID_OFFSETS, keys.Map.SEGMENTATION,
            keys.Map.LONG_OFFSETS)


def complete_skeleton(keypoints: np.ndarray, is_crowd: np.ndarray) -> np.ndarray:
    """Places every unlabelled keypoint of a person with labelled ones, for the mid-range maps only.

    Repeatedly, an unplaced keypoint with placed tree neighbours (constants.TREE_EDGES) goes to their
    mean, until every keypoint of the person is placed (the tree is connected). Crowd regions and persons
    without labelled keypoints are left unchanged.

    Args:
      keypoints: [N, K, 3] numpy (x, y, v), any pixels; is_crowd: [N] bool.

    Returns:
      [N, K, 3] float32 numpy with v = 2 on the placed keypoints.
    """
    completed = np.array(keypoints, np.float32)
    for person, crowd in zip(completed, np.asarray(is_crowd, bool)):
        placed = person[:, 2] > 0
        if crowd or not placed.any():
            continue
        while not placed.all():
            newly = placed.copy()
            for k in np.flatnonzero(~placed):
                neighbours = [b if a == k else a for a, b in TREE_EDGES if k in (a, b)]
                known = [n for n in neighbours if placed[n]]
                if known:
                    person[k, :2] = person[known, :2].mean(axis=0)
                    person[k, 2] = 2.0
                    newly[k] = True
            placed = newly
    return completed


def oracle_maps(sample: Dict[str, tf.Tensor], max_side: int, output_stride: int, radius: float,
                refine_mid_steps: int = 2, refine_long_steps: Tuple[int, int] = (2, 2),
                complete_tree: bool = True) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """The target maps of a sample on the stride-os grid of its inference frame, refined like the model's.

    Args:
      sample: decoded sample (data/decoder.py), original-image pixels.
      max_side: larger side of the frame (geometry.resize_scale); output_stride: os.
      radius: disk radius R of the targets.
      refine_mid_steps, refine_long_steps: steps of Eq. 2 and Eq. 5 (as the model).
      complete_tree: make the mid-range maps from `complete_skeleton` (see the module docstring).

    Returns:
      (maps, scale): dict of [1, h, w, ...] maps (keys.Map, heatmaps and segmentation 0/1 as
      probabilities), h, w = the frame's grid; and f of the frame.
    """
    frame = frame_grid(sample, max_side, output_stride, output_stride)
    made = targets.make_targets(frame.sample, frame.side, stride=output_stride, radius=radius)
    maps = frame.crop({key: made[key] for key in MAP_KEYS})
    if complete_tree:
        is_crowd = sample[keys.Sample.IS_CROWD].numpy()
        completed = complete_skeleton(frame.sample[keys.Sample.KEYPOINTS].numpy(), is_crowd)
        labelled = (completed[..., 2] > 0) & ~is_crowd[:, np.newaxis]
        mid, _ = targets.mid_range(tf.constant(completed[..., :2]), tf.constant(labelled),
                                   grids.grid_points(frame.side, output_stride), output_stride, radius)
        maps[keys.Map.MID_OFFSETS] = frame.crop({keys.Map.MID_OFFSETS: mid})[keys.Map.MID_OFFSETS]
    maps = {key: value[tf.newaxis] for key, value in maps.items()}
    maps[keys.Map.MID_OFFSETS] = refine_mid_offsets(maps[keys.Map.MID_OFFSETS], maps[keys.Map.SHORT_OFFSETS],
                                                    output_stride, refine_mid_steps)
    maps[keys.Map.LONG_OFFSETS] = refine_long_offsets(maps[keys.Map.LONG_OFFSETS], maps[keys.Map.SHORT_OFFSETS],
                                                      output_stride, *refine_long_steps)
    return maps, frame.scale


def map_specs(batched: bool = False) -> Dict[str, tf.TensorSpec]:
    """TensorSpecs of the decoder maps with unknown height and width (for tf.function signatures)."""
    lead = [None] if batched else []
    return {
        keys.Map.HEATMAPS: tf.TensorSpec(lead + [None, None, NUM_KEYPOINTS], tf.float32),
        keys.Map.SHORT_OFFSETS: tf.TensorSpec(lead + [None, None, NUM_KEYPOINTS, 2], tf.float32),
        keys.Map.MID_OFFSETS: tf.TensorSpec(lead + [None, None, NUM_EDGES, 2], tf.float32),
        keys.Map.SEGMENTATION: tf.TensorSpec(lead + [None, None, 1], tf.float32),
        keys.Map.LONG_OFFSETS: tf.TensorSpec(lead + [None, None, NUM_KEYPOINTS, 2], tf.float32),
    }


def decoding_function(inference: detector.PersonLabInference, radius: float,
                      decoding: PersonLabDecoding = PersonLabDecoding(), with_masks: bool = True):
    """A tf.function: (maps [1, h, w, ...] at stride os, scale f, image_size [2]) -> detections.

    The same steps as `detector.Detector` after the network: upsampling to the decoding stride,
    decoding, and the way back to original pixels (detector.detections_from_maps).
    """
    specs = {key: tf.TensorSpec([1] + spec.shape[1:].as_list(), spec.dtype)
             for key, spec in map_specs(batched=True).items()}

    @tf.function(input_signature=[specs, tf.TensorSpec([], tf.float32), tf.TensorSpec([2], tf.int32)])
    def run(maps, scale, image_size):
        grid = detector.upsample_maps(maps, inference.output_stride, inference.grid_stride)
        detections = detector.detections_from_maps({key: value[0] for key, value in grid.items()}, scale,
                                                   inference.grid_stride, image_size, radius, decoding, with_masks,
                                                   inference.mask_resolution)
        return maps_lib.detections_at_image(detections, image_size, serving.IMAGE_MAP_KEYS)

    return run
