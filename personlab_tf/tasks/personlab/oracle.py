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

from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import grids, keypoint_targets, record_format
from personlab_tf.inference.oracle import FrameGrid, frame_grid
from personlab_tf.inference import maps as maps_lib
from personlab_tf.inference import serving
from personlab_tf.skeleton import Skeleton
from personlab_tf.tasks.personlab import detector, targets
from personlab_tf.tasks.personlab.decode import PersonLabDecoding
from personlab_tf.tasks.personlab.noise import MapNoise, degrade
from personlab_tf.tasks.personlab.refine import refine_long_offsets, refine_mid_offsets

MAP_KEYS = (keys.Map.HEATMAPS, keys.Map.SHORT_OFFSETS, keys.Map.MID_OFFSETS, keys.Map.SEGMENTATION,
            keys.Map.LONG_OFFSETS)


def complete_skeleton(keypoints: np.ndarray, is_crowd: np.ndarray, tree: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Places every unlabelled keypoint of a person with labelled ones, for the mid-range maps only.

    Repeatedly, an unplaced keypoint with placed tree neighbours (`tree`, Skeleton.tree) goes to their
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
                neighbours = [b if a == k else a for a, b in tree if k in (a, b)]
                known = [n for n in neighbours if placed[n]]
                if known:
                    person[k, :2] = person[known, :2].mean(axis=0)
                    person[k, 2] = 2.0
                    newly[k] = True
            placed = newly
    return completed


def nearest_owner(masks: np.ndarray, is_crowd: np.ndarray, extent: float) -> np.ndarray:
    """[h, w] the non-crowd person whose mask is nearest each cell (0 inside it; the lowest index where masks
    overlap), N (no person) beyond `extent` cells from every mask.

    Args:
      masks: [h, w, N] bool person masks on a grid; is_crowd: [N] bool; extent: cells.
    """
    height, width, count = masks.shape
    distances = np.full((height, width, count + 1), np.inf, np.float32)
    distances[..., count] = extent
    for person in np.flatnonzero(~np.asarray(is_crowd, bool) & masks.any(axis=(0, 1))):
        distances[..., person] = cv2.distanceTransform((~masks[..., person]).astype(np.uint8), cv2.DIST_L2, 5)
    return np.argmin(distances, axis=-1)


def extended_long_range(frame: FrameGrid, stride: int, extent: float) -> tf.Tensor:
    """Long-range offsets L_k(x) = y_{j,k} - x to the labelled keypoints of the person j whose mask is nearest x,
    out to `extent` pixels from the masks (`nearest_owner`): the field a network extrapolates beyond the
    masks, where the targets (defined on cells of exactly one person) stop. [rows, columns, K, 2] float32."""
    sample = frame.sample
    size = grids.grid_size(frame.side, stride)
    masks = grids.masks_on_grid(sample[keys.Sample.PACKED_MASKS], sample[keys.Sample.NUM_PERSONS],
                                sample[keys.Sample.ORIGINAL_SIZE], sample[keys.Sample.CROP_TO_IMAGE], size, stride)
    masks = masks.numpy()[:frame.rows, :frame.columns]
    is_crowd = sample[keys.Sample.IS_CROWD].numpy()
    owner = tf.constant(nearest_owner(masks, is_crowd, extent / stride), tf.int32)               # [h, w]
    labelled = tf.gather(grids.append_none(keypoint_targets.labelled_keypoints(sample)), owner)  # [h, w, K]
    points = grids.grid_points(size, stride)[:frame.rows, :frame.columns]
    return keypoint_targets.gather_offsets(sample[keys.Sample.KEYPOINTS][..., :2],
                                           tf.broadcast_to(owner[..., tf.newaxis], tf.shape(labelled)), labelled,
                                           points)


def person_coverage(frame: FrameGrid, stride: int) -> tf.Tensor:
    """[rows, columns, 1] float32: the fraction of each cell's s x s square of frame pixels covered by a
    non-crowd person's mask (the masks resized from the image with area averaging). A network's p_S places a
    boundary between cell centres (it sees the pixels); a mask sampled at the cell centres cannot."""
    sample = frame.sample
    height, width = (int(n) for n in sample[keys.Sample.ORIGINAL_SIZE])
    masks = record_format.unpack_bits(sample[keys.Sample.PACKED_MASKS], sample[keys.Sample.NUM_PERSONS]).numpy()
    union = (masks & ~sample[keys.Sample.IS_CROWD].numpy()).any(axis=-1).astype(np.float32)      # [H, W]
    scale = float(frame.scale)
    resized = cv2.resize(union, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    canvas = np.zeros((frame.rows * stride, frame.columns * stride), np.float32)
    rows, columns = min(canvas.shape[0], resized.shape[0]), min(canvas.shape[1], resized.shape[1])
    canvas[:rows, :columns] = resized[:rows, :columns]
    coverage = cv2.boxFilter(canvas, -1, (stride, stride), normalize=True, borderType=cv2.BORDER_CONSTANT)
    # With an even s the box of output pixel p is [p - s/2, p + s/2 - 1]: cell (i, j) is output pixel (s i, s j).
    return tf.constant(coverage[::stride, ::stride][:frame.rows, :frame.columns, np.newaxis])


def oracle_maps(sample: Dict[str, tf.Tensor], skeleton: Skeleton, max_side: int, output_stride: int, radius: float,
                refine_mid_steps: int = 2, refine_long_steps: Tuple[int, int] = (2, 2),
                refine_long_gate: Optional[float] = None, complete_tree: bool = True,
                noise: Optional[MapNoise] = None, noise_seed: int = 0) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """The target maps of a sample on the stride-os grid of its inference frame, refined like the model's.

    Args:
      sample: decoded sample (data/decoder.py), original-image pixels.
      skeleton: its keypoint set.
      max_side: larger side of the frame (geometry.resize_scale); output_stride: os.
      radius: disk radius R of the targets.
      refine_mid_steps, refine_long_steps, refine_long_gate: steps of Eq. 2 and Eq. 5 and its gate (as the
        model).
      complete_tree: make the mid-range maps from `complete_skeleton` (see the module docstring).
      noise: None (perfect maps) or the MapNoise that degrades the raw maps before refinement (noise.py),
        drawn from (noise_seed, image id): the realistic oracle.

    Returns:
      (maps, scale): dict of [1, h, w, ...] maps (keys.Map, heatmaps and segmentation 0/1 as
      probabilities), h, w = the frame's grid; and f of the frame.
    """
    frame = frame_grid(sample, max_side, output_stride, output_stride)
    edges = skeleton.directed_edges
    made = targets.make_targets(frame.sample, frame.side, edges, stride=output_stride, radius=radius)
    maps = frame.crop({key: made[key] for key in MAP_KEYS})
    # A network's offsets extend beyond where they are supervised (noise.py): short- and mid-range offsets are
    # made with wider disks, long-range offsets out to the same distance from the person masks.
    offset_radius = radius if noise is None else noise.offset_extent * radius
    if noise is not None:
        wide = targets.make_targets(frame.sample, frame.side, edges, stride=output_stride, radius=offset_radius)
        maps.update(frame.crop({key: wide[key] for key in (keys.Map.SHORT_OFFSETS, keys.Map.MID_OFFSETS)}))
        maps[keys.Map.LONG_OFFSETS] = extended_long_range(frame, output_stride, offset_radius)
        maps[keys.Map.SEGMENTATION] = person_coverage(frame, output_stride)
    if complete_tree:
        is_crowd = sample[keys.Sample.IS_CROWD].numpy()
        completed = complete_skeleton(frame.sample[keys.Sample.KEYPOINTS].numpy(), is_crowd, skeleton.tree)
        labelled = (completed[..., 2] > 0) & ~is_crowd[:, np.newaxis]
        mid, _ = targets.mid_range(tf.constant(completed[..., :2]), tf.constant(labelled),
                                   grids.grid_points(frame.side, output_stride), output_stride, offset_radius,
                                   edges)
        maps[keys.Map.MID_OFFSETS] = frame.crop({keys.Map.MID_OFFSETS: mid})[keys.Map.MID_OFFSETS]
    if noise is not None:
        rng = np.random.default_rng([noise_seed, int(sample[keys.Sample.IMAGE_ID])])
        maps = degrade({key: value.numpy() for key, value in maps.items()}, noise, radius, output_stride, rng)
    maps = {key: tf.constant(value)[tf.newaxis] for key, value in maps.items()}
    maps[keys.Map.MID_OFFSETS] = refine_mid_offsets(maps[keys.Map.MID_OFFSETS], maps[keys.Map.SHORT_OFFSETS],
                                                    [target for _, target in edges], output_stride, refine_mid_steps)
    maps[keys.Map.LONG_OFFSETS] = refine_long_offsets(maps[keys.Map.LONG_OFFSETS], maps[keys.Map.SHORT_OFFSETS],
                                                      output_stride, *refine_long_steps, refine_long_gate)
    return maps, frame.scale


def map_specs(skeleton: Skeleton, batched: bool = False) -> Dict[str, tf.TensorSpec]:
    """TensorSpecs of the decoder maps of `skeleton` with unknown height and width (tf.function signatures)."""
    lead = [None] if batched else []
    count = skeleton.num_keypoints
    return {
        keys.Map.HEATMAPS: tf.TensorSpec(lead + [None, None, count], tf.float32),
        keys.Map.SHORT_OFFSETS: tf.TensorSpec(lead + [None, None, count, 2], tf.float32),
        keys.Map.MID_OFFSETS: tf.TensorSpec(lead + [None, None, skeleton.num_edges, 2], tf.float32),
        keys.Map.SEGMENTATION: tf.TensorSpec(lead + [None, None, 1], tf.float32),
        keys.Map.LONG_OFFSETS: tf.TensorSpec(lead + [None, None, count, 2], tf.float32),
    }


def decoding_function(inference: detector.PersonLabInference, radius: float, skeleton: Skeleton,
                      decoding: PersonLabDecoding = PersonLabDecoding(),
                      with_masks: bool = True) -> tf.types.experimental.PolymorphicFunction:
    """A tf.function: (maps [1, h, w, ...] at stride os, scale f, image_size [2]) -> detections.

    The same steps as `detector.Detector` after the network: upsampling to the decoding stride,
    decoding, and the way back to original pixels (detector.detections_from_maps).
    """
    specs = {key: tf.TensorSpec([1] + spec.shape[1:].as_list(), spec.dtype)
             for key, spec in map_specs(skeleton, batched=True).items()}

    @tf.function(input_signature=[specs, tf.TensorSpec([], tf.float32), tf.TensorSpec([2], tf.int32)])
    def run(maps, scale, image_size):
        grid = detector.upsample_maps(maps, inference.output_stride, inference.grid_stride)
        detections = detector.detections_from_maps({key: value[0] for key, value in grid.items()}, scale,
                                                   inference.grid_stride, image_size, radius, skeleton, decoding,
                                                   with_masks, inference.mask_resolution)
        return maps_lib.detections_at_image(detections, image_size, serving.IMAGE_MAP_KEYS)

    return run
