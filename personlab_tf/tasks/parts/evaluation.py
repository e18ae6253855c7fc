"""Part parsing's evaluation: the images of a COCO JSON with part label maps, their ground truth, and the
second paper's metrics over the detections (metrics.py; scripts/evaluate.py, scripts/oracle_eval.py), with
the COCO keypoint AP of the parser's keypoints (the paper's mAP_pose, Table 5) and, given an output
directory, the official tools' submission files (submission.py; docs/parts.md "Submission formats").

The headline is `{"APp_50": ..., "APp_vol": ..., "PCP50": ..., "mIoU": ...}`.
"""

import json
import os
from typing import Any, Dict, Iterator, Optional

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import coco, coco_format, coco_problems, coco_records, part_labels
from personlab_tf.evaluation import backends
from personlab_tf.evaluation import metrics as coco_metrics
from personlab_tf.evaluation import results as coco_results
from personlab_tf.skeleton import Skeleton
from personlab_tf.task import EvaluationImage, Evaluator
from personlab_tf.tasks.parts import metrics, submission
from personlab_tf.tasks.parts.part_sets import PartSet

HEADLINE = ("APp_50", "APp_vol", "PCP50", "mIoU")
METRICS_FILE = "metrics.json"
POSE_PREFIX = "pose_"   # the keypoint rows (evaluation/metrics.py) in the results: pose_AP, pose_AP50, ...


def part_images(annotations: str, images_dir: str, part_labels_dir: Optional[str], part_set: PartSet,
                problems: coco_problems.ProblemCounter,
                skeleton: Optional[Skeleton] = None) -> Iterator[EvaluationImage]:
    """The images of a COCO JSON with usable part label maps, with their records.

    Images whose map is unusable are skipped (counted in `problems` by data/part_labels.py), as are
    unreadable images (data/coco_records.py).

    Args:
      part_labels_dir: the maps' folder; None: `part_labels` beside the annotations (data/coco_format.py).
      skeleton: the keypoints the annotations must hold (the task's); None: the file's own.

    Raises:
      coco.AnnotationError: the annotations, the images or the part labels directory is unusable, or the
        annotations declare keypoints other than `skeleton`'s.
    """
    dataset = coco.load_dataset(annotations, problems, skeleton=skeleton)
    labels_dir = coco_format.default_part_labels_dir(annotations, part_labels_dir)
    if not tf.io.gfile.isdir(labels_dir):
        raise coco.AnnotationError(f"part labels directory {labels_dir} does not exist")
    records = part_labels.attach_part_labels(coco_records.iter_image_records(dataset, images_dir, problems), labels_dir,
                                             part_set.num_classes, problems)
    for record in records:
        if record.part_labels is not None:
            yield EvaluationImage(record.image_id, record.encoded, record)


def ground_truth(record: coco_records.ImageRecord) -> metrics.GroundTruth:
    """The metrics ground truth of a `coco_records.ImageRecord` with part labels."""
    return metrics.GroundTruth(part_map=record.part_labels, masks=record.masks.astype(bool), is_crowd=record.is_crowd,
                               has_parts=record.has_parts)


def prediction(detections: Dict[str, np.ndarray]) -> metrics.Prediction:
    """The metrics prediction of numpy detections (detector outputs of one image)."""
    count = int(detections[keys.Detection.NUM_DETECTIONS])
    return metrics.Prediction(part_map=np.asarray(detections[keys.Detection.PART_MAP]),
                              instance_part_maps=np.asarray(detections[keys.Detection.INSTANCE_PART_MAPS])[:count],
                              scores=np.asarray(detections[keys.Detection.INSTANCE_SCORES])[:count])


class PartsEvaluator(Evaluator):
    """The second paper's metrics (metrics.PartParsingEvaluator) and the keypoint AP over images with their
    records; with an `output_dir`, the submission files (submission.SubmissionWriter) as the images come and,
    at `results()`, metrics.json there.

    Args:
      part_set: the records' part set; skeleton: the keypoints of the detections and the ground truth.
      ground_truth: the COCO dict of the images (coco.ground_truth), for the keypoint AP.
      output_dir: where the files go (None: nowhere).
      coco_backend: the COCOeval implementation (evaluation/backends.py).

    Raises:
      OSError: `output_dir` cannot take the submission files (one line naming it).
    """

    def __init__(self, part_set: PartSet, skeleton: Skeleton, ground_truth: Dict[str, Any],
                 output_dir: Optional[str] = None, coco_backend: str = backends.PYCOCOTOOLS):
        self._metrics = metrics.PartParsingEvaluator(part_set.num_classes)
        self._skeleton = skeleton
        self._ground_truth = ground_truth
        self._coco_backend = backends.check_evaluator(coco_backend)
        self._output_dir = output_dir
        self._submission = submission.SubmissionWriter(output_dir) if output_dir else None
        self._keypoint_results = []
        self._image_ids = []

    def add(self, image: EvaluationImage, detections: Dict[str, np.ndarray]) -> None:
        if image.record is None or image.record.part_labels is None:
            raise ValueError(f"image {image.image_id} has no part labels to evaluate against")
        truth, predicted = ground_truth(image.record), prediction(detections)
        keypoints = coco_results.keypoint_results(image.image_id, detections, self._skeleton)
        self._metrics.add(truth, predicted)
        if self._submission is not None:
            self._submission.add(image.image_id, image.record.file_name, truth, predicted)
        self._keypoint_results.extend(keypoints)
        self._image_ids.append(image.image_id)

    def results(self) -> Dict[str, Any]:
        """metrics.PartParsingEvaluator's results and `pose_<row>` for every COCO keypoint row (pose_AP,
        pose_AP50, ..., evaluation/metrics.py) over the images added (those with part labels; the same images
        as every other figure), at most coco_metrics.MAX_DETECTIONS (20) persons per image by score."""
        results = self._metrics.results()
        pose = coco_metrics.evaluate_keypoints(self._ground_truth, self._keypoint_results, self._coco_backend,
                                               coco_metrics.MAX_DETECTIONS, self._image_ids,
                                               sigmas=self._skeleton.sigmas)
        results.update({POSE_PREFIX + name: value for name, value in pose.items()})
        if self._output_dir:   # made by the submission writer
            with open(os.path.join(self._output_dir, METRICS_FILE), "w") as f:
                json.dump(results, f, indent=1)
        return results

    def headline(self, results: Dict[str, Any]) -> Dict[str, float]:
        return {key: results[key] for key in HEADLINE}
