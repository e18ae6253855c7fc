"""Part-parsing oracle and evaluation data: ground truth through the inference path, and the images to score.

The oracle (scripts/oracle_eval.py --task parts) makes each image's training targets
(parts.targets.make_part_targets, on the inference frame of parts.detector, stride 4) and feeds them to
the detector's decoding as if predicted: part probabilities one-hot of the part labels, keypoint heatmaps
(0/1) with their short-range offsets, the limb Gaussians as limb heatmaps, and the finest DSPF target (in
pixels) as the projection field. It is the upper bound of candidates + matching + assembly + Eq. 17 and
the end-to-end check of the part targets, the decoding and the metrics (parts.metrics).

Coordinates: pixel centres at integer coordinates, (x, y) order; targets in frame pixels, results in
original-image pixels.
"""

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS
from personlab_tf.inference import geometry
from personlab_tf.inference.oracle import frame_sample
from personlab_tf.parts import decode, detector, targets


def oracle_maps(sample, max_side, part_set, radius=DISK_RADIUS, limb_sigma=targets.LIMB_SIGMA):
    """The target maps of a decoded sample (with parts) on the stride-4 grid of its inference frame.

    Returns:
      (maps, scale): dict of [h, w, ...] decoding maps (parts.detector.probability_maps layout, one
      image) and f of the frame.
    """
    image_size = sample[keys.IMAGE_SIZE]
    scale = geometry.resize_scale(image_size, max_side)
    frame = geometry.frame_size(image_size, scale, detector.FRAME_MULTIPLE).numpy()
    side = int(frame.max())  # the targets are made on a square whose top-left part is the frame
    made = targets.make_part_targets(frame_sample(sample, scale), side, part_set, detector.STRIDE, radius,
                                     limb_sigma)
    rows, columns = (int(n) for n in geometry.grid_size(frame, detector.STRIDE))
    maps = {
        decode.PART_PROBABILITIES: tf.one_hot(made[keys.PART_LABELS], part_set.num_classes),
        keys.HEATMAPS: made[keys.HEATMAPS],
        keys.SHORT_OFFSETS: made[keys.SHORT_OFFSETS],
        keys.LIMB_HEATMAPS: made[keys.LIMB_HEATMAPS],
        keys.PROJECTION_FIELD: made[keys.projection_key(detector.STRIDE)] * detector.STRIDE,
    }
    return {key: value[:rows, :columns] for key, value in maps.items()}, scale


def parsing_function(options):
    """A tf.function (maps of one image, scale f, image_size [2]) -> parts.detector.parse_image results."""
    return tf.function(lambda maps, scale, image_size: detector.parse_image(maps, scale, image_size, options),
                       reduce_retracing=True)
