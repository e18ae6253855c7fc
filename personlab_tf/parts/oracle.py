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

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS
from personlab_tf.data import coco, decoder, part_labels, writer
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


def part_records(annotations, images_dir, part_labels_dir, part_set, problems):
    """The images of a COCO JSON with part label maps, as (record, decoded sample with parts).

    Images whose map is unusable are skipped here (counted in `problems` by data.part_labels), as are
    unreadable images (data.coco).

    Raises:
      coco.AnnotationError: the annotations, the images or the part labels directory is unusable.
    """
    dataset = coco.load_dataset(annotations, problems)
    if not tf.io.gfile.isdir(part_labels_dir):
        raise coco.AnnotationError(f"part labels directory {part_labels_dir} does not exist")
    records = part_labels.attach_part_labels(coco.iter_image_records(dataset, images_dir, problems), part_labels_dir,
                                             part_set.num_classes, problems)
    for record in records:
        if record.part_labels is None:
            continue
        serialized = tf.constant(writer.image_example(record).SerializeToString())
        yield record, decoder.decode_example(serialized, with_parts=True)


def parsing_function(options):
    """A tf.function (maps of one image, scale f, image_size [2]) -> parts.detector.parse_image results."""
    return tf.function(lambda maps, scale, image_size: detector.parse_image(maps, scale, image_size, options),
                       reduce_retracing=True)


def ground_truth(record):
    """The parts.metrics ground truth of a `coco.ImageRecord` with part labels."""
    return {"part_map": record.part_labels, "masks": record.masks.astype(bool), "is_crowd": record.is_crowd,
            "has_parts": record.has_parts}


def prediction(detections):
    """The parts.metrics prediction of numpy detections (parts.detector outputs of one image)."""
    count = int(detections[keys.NUM_DETECTIONS])
    return {"part_map": np.asarray(detections[keys.PART_MAP]),
            "instance_part_maps": np.asarray(detections[keys.INSTANCE_PART_MAPS])[:count],
            "scores": np.asarray(detections[keys.INSTANCE_SCORES])[:count]}

