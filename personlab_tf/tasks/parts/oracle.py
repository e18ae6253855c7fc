"""Part-parsing oracle: ground truth through the inference path (scripts/oracle_eval.py --task parts).

The oracle makes each image's training targets (targets.make_part_targets, on the inference frame of
detector.py, stride 4) and feeds them to the detector's decoding as if predicted: part probabilities
one-hot of the part labels, keypoint heatmaps (0/1) with their short-range offsets, the limb Gaussians as
limb heatmaps, and the finest DSPF target (in pixels) as the projection field. It is the upper bound of
candidates + matching + assembly + Eq. 17 and the end-to-end check of the part targets, the decoding and
the metrics (metrics.py).

Coordinates: pixel centres at integer coordinates, (x, y) order; targets in frame pixels, results in
original-image pixels.
"""

from typing import Callable, Dict, Sequence, Tuple

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.inference import maps as maps_lib
from personlab_tf.inference import serving
from personlab_tf.inference.oracle import frame_grid
from personlab_tf.skeleton import Edge
from personlab_tf.tasks.parts import decode, detector, part_sets, targets


def oracle_maps(sample: Dict[str, tf.Tensor], max_side: int, part_set: part_sets.PartSet, limbs: Sequence[Edge],
                radius: float, limb_sigma: float = targets.LIMB_SIGMA,
                part_stride: int = targets.PART_STRIDES[0]) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """The target maps of a decoded sample (with parts) on the stride-4 grid of its inference frame, the
    part probabilities on the grid of `part_stride` (targets.PART_STRIDES); `limbs`: the skeleton's (the limb
    heatmaps' channels).

    Returns:
      (maps, scale): dict of [h, w, ...] decoding maps (detector.probability_maps layout, one image) and f
      of the frame.
    """
    frame = frame_grid(sample, max_side, detector.FRAME_MULTIPLE, detector.STRIDE)
    made = targets.make_part_targets(frame.sample, frame.side, part_set, limbs, detector.STRIDE, radius, limb_sigma,
                                     part_stride=part_stride)
    maps = frame.crop({
        keys.Map.HEATMAPS: made[keys.Map.HEATMAPS],
        keys.Map.SHORT_OFFSETS: made[keys.Map.SHORT_OFFSETS],
        keys.Map.LIMB_HEATMAPS: made[keys.Map.LIMB_HEATMAPS],
        keys.Map.PROJECTION_FIELD: made[keys.Map.projection(detector.STRIDE)] * detector.STRIDE,
    })
    part_frame = frame_grid(sample, max_side, detector.FRAME_MULTIPLE, part_stride)
    maps.update(part_frame.crop(
        {keys.Map.PART_PROBABILITIES: tf.one_hot(made[keys.Map.PART_CLASSES], part_set.num_classes)}))
    return maps, frame.scale


def parsing_function(radius: float, limbs: Sequence[Edge], options: decode.PartsDecoding,
                     part_stride: int = targets.PART_STRIDES[0]) -> Callable[..., Dict[str, tf.Tensor]]:
    """A tf.function (maps of one image, scale f, image_size [2]) -> detector.parse_image results at the
    image's pixels, the part probabilities at `part_stride`, the limb maps those of `limbs`."""
    def parse(maps, scale, image_size):
        detections = detector.parse_image(maps, scale, image_size, radius, limbs, options, part_stride)
        return maps_lib.detections_at_image(detections, image_size, serving.IMAGE_MAP_KEYS)

    return tf.function(parse, reduce_retracing=True)
