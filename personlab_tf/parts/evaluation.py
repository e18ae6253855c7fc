"""Evaluation data of instance-aware part parsing: the images of a COCO JSON with part label maps, their
ground truth and the predictions in the layout of parts.metrics (scripts/evaluate_parts.py, the oracle)."""

import os

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import coco, decoder, part_labels, writer
from personlab_tf.parts import metrics


def default_part_labels_dir(annotations):
    """The `part_labels` folder beside an annotations JSON (the converters' and the generator's layout)."""
    return os.path.join(os.path.dirname(os.path.abspath(annotations)), "part_labels")


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


def evaluate(annotations, images_dir, part_labels_dir, part_set, parse, problems, max_images=None):
    """Scores `parse` over a dataset.

    Args:
      annotations, images_dir, part_labels_dir, part_set, problems: as `part_records`.
      parse: (record, decoded sample) -> numpy detections of one image (parts.detector layout).
      max_images: stop after this many images (None: all).

    Returns:
      (metrics.PartParsingEvaluator.results() dict, number of images parsed).
    """
    evaluator = metrics.PartParsingEvaluator(part_set.num_classes)
    count = 0
    for record, sample in part_records(annotations, images_dir, part_labels_dir, part_set, problems):
        if max_images is not None and count >= max_images:
            break
        evaluator.add(ground_truth(record), prediction(parse(record, sample)))
        count += 1
    return evaluator.results(), count
