"""Oracle maps: the training targets of an image, made on the inference frame, as if predicted.

The upper bound of the decoder and the end-to-end check of targets + inference geometry + decoding +
evaluation (scripts/oracle_eval.py): the ground truth of one image goes through the very code that
makes the training targets (`data.targets.make_targets`, at stride = output stride, on the frame of
`inference.geometry`), then the model's refinement (Eq. 2, Eq. 5), then the same upsampling, decoding
and mapping back to original pixels as the network's maps (`inference.detector`).

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

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS, NUM_EDGES, NUM_KEYPOINTS, TREE_EDGES
from personlab_tf.data import augment, targets
from personlab_tf.inference import detector, geometry
from personlab_tf.model.refine import refine_long_offsets, refine_mid_offsets

MAP_KEYS = (keys.HEATMAPS, keys.SHORT_OFFSETS, keys.MID_OFFSETS, keys.SEGMENTATION, keys.LONG_OFFSETS)


def frame_sample(sample, scale):
    """A decoded sample (data.decoder.decode_example) with its keypoints moved to frame pixels.

    Masks stay packed at image resolution: `make_targets` samples them through keys.CROP_TO_IMAGE,
    here the frame-to-image map x = u / f.
    """
    crop_map = geometry.crop_to_image(scale)
    keypoints = sample[keys.KEYPOINTS]
    points = augment.image_to_crop_points(keypoints[..., :2], crop_map)
    return dict(sample, **{keys.KEYPOINTS: tf.concat([points, keypoints[..., 2:]], axis=-1),
                           keys.CROP_TO_IMAGE: crop_map})


def complete_skeleton(keypoints, is_crowd):
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


def oracle_maps(sample, max_side, output_stride, refine_mid_steps=2, refine_long_steps=(2, 2),
                complete_tree=True):
    """The target maps of a sample on the stride-os grid of its inference frame, refined like the model's.

    Args:
      sample: decoded sample (data.decoder.decode_example), original-image pixels.
      max_side: larger side of the frame (geometry.resize_scale); output_stride: os.
      refine_mid_steps, refine_long_steps: steps of Eq. 2 and Eq. 5 (as the model).
      complete_tree: make the mid-range maps from `complete_skeleton` (see the module docstring).

    Returns:
      (maps, scale): dict of [1, h, w, ...] maps (detector/decoder layout, heatmaps and segmentation
      0/1 as probabilities), h, w = the frame's grid; and f of the frame.
    """
    image_size = sample[keys.IMAGE_SIZE]
    scale = geometry.resize_scale(image_size, max_side)
    frame = geometry.frame_size(image_size, scale, output_stride).numpy()
    side = int(frame.max())  # make_targets works on a square; the frame is its top-left part
    made = targets.make_targets(frame_sample(sample, scale), side, stride=output_stride)
    rows, columns = (int(n) for n in geometry.grid_size(frame, output_stride))
    maps = {key: made[key][tf.newaxis, :rows, :columns] for key in MAP_KEYS}
    if complete_tree:
        framed = frame_sample(sample, scale)
        completed = complete_skeleton(framed[keys.KEYPOINTS].numpy(), sample[keys.IS_CROWD].numpy())
        labelled = (completed[..., 2] > 0) & ~sample[keys.IS_CROWD].numpy()[:, np.newaxis]
        mid, _ = targets.mid_range(tf.constant(completed[..., :2]), tf.constant(labelled),
                                   targets.grid_points(side, output_stride), output_stride, DISK_RADIUS)
        maps[keys.MID_OFFSETS] = mid[tf.newaxis, :rows, :columns]
    maps[keys.MID_OFFSETS] = refine_mid_offsets(maps[keys.MID_OFFSETS], maps[keys.SHORT_OFFSETS], output_stride,
                                                refine_mid_steps)
    maps[keys.LONG_OFFSETS] = refine_long_offsets(maps[keys.LONG_OFFSETS], maps[keys.SHORT_OFFSETS],
                                                  output_stride, *refine_long_steps)
    return maps, scale


def map_specs(batched=False):
    """TensorSpecs of the decoder maps with unknown height and width (for tf.function signatures)."""
    lead = [None] if batched else []
    return {
        keys.HEATMAPS: tf.TensorSpec(lead + [None, None, NUM_KEYPOINTS], tf.float32),
        keys.SHORT_OFFSETS: tf.TensorSpec(lead + [None, None, NUM_KEYPOINTS, 2], tf.float32),
        keys.MID_OFFSETS: tf.TensorSpec(lead + [None, None, NUM_EDGES, 2], tf.float32),
        keys.SEGMENTATION: tf.TensorSpec(lead + [None, None, 1], tf.float32),
        keys.LONG_OFFSETS: tf.TensorSpec(lead + [None, None, NUM_KEYPOINTS, 2], tf.float32),
    }


def decoding_function(output_stride, decode_stride, mask_resolution=detector.MASK_RESOLUTION, with_masks=True,
                      **decode_options):
    """A tf.function: (maps [1, h, w, ...] at stride os, scale f, image_size [2]) -> detections.

    The same steps as `detector.Detector` after the network: upsampling to the decoding stride,
    decoding, and the way back to original pixels (detections_from_maps).
    """
    specs = {key: tf.TensorSpec([1] + spec.shape[1:].as_list(), spec.dtype)
             for key, spec in map_specs(batched=True).items()}

    @tf.function(input_signature=[specs, tf.TensorSpec([], tf.float32), tf.TensorSpec([2], tf.int32)])
    def run(maps, scale, image_size):
        grid = detector.upsample_maps(maps, output_stride, decode_stride)
        return detector.detections_from_maps({key: value[0] for key, value in grid.items()}, scale, decode_stride,
                                             image_size, with_masks, mask_resolution, **decode_options)

    return run


def to_numpy(detections):
    """Detections (tensors) -> dict of numpy arrays."""
    return {key: np.asarray(value) for key, value in detections.items()}
