"""PersonLab's evaluation: the COCO keypoint and person segmentation metrics (paper §4.2-4.3) over either
a COCO JSON with its images or a tfds `coco_person` split (docs/evaluation.md).

Every image of the ground truth counts, images without people included, as in COCO: their detections are
false positives. The headline is `{"keypoints_AP": ..., "segm_AP": ...}`.
"""

from typing import Any, Dict, Iterator, Optional

import numpy as np

from personlab_tf.data import coco, coco_problems, coco_records
from personlab_tf.evaluation import CocoEvaluator
from personlab_tf.evaluation.evaluator import KEYPOINTS, SEGMENTATION, SEGMENTATION_KEYPOINT_PERSONS
from personlab_tf.skeleton import Skeleton
from personlab_tf.task import EvaluationImage, Evaluator


class PersonLabEvaluator(Evaluator):
    """COCO metrics of a detector (evaluation/evaluator.py CocoEvaluator), image by image."""

    def __init__(self, ground_truth: Dict[str, Any], skeleton: Skeleton, output_dir: Optional[str] = None,
                 evaluator: str = "pycocotools", only_added_images: bool = False):
        self._coco = CocoEvaluator(ground_truth, skeleton, output_dir=output_dir, evaluator=evaluator,
                                   only_added_images=only_added_images)

    def add(self, image: EvaluationImage, detections: Dict[str, np.ndarray]) -> None:
        self._coco.add(image.image_id, detections)

    def results(self) -> Dict[str, Any]:
        """{"keypoints": {AP ... ARL}, "segmentation": {AP ... AR20 ...}, "segmentation_keypoint_persons":
        {...}} (evaluation/metrics.py rows; the last over the persons with keypoints)."""
        metrics = self._coco.results()
        return {KEYPOINTS: metrics[KEYPOINTS], SEGMENTATION: metrics.get(SEGMENTATION, {}),
                SEGMENTATION_KEYPOINT_PERSONS: metrics.get(SEGMENTATION_KEYPOINT_PERSONS, {})}

    def headline(self, results: Dict[str, Any]) -> Dict[str, float]:
        return {"keypoints_AP": results[KEYPOINTS]["AP"], "segm_AP": results[SEGMENTATION].get("AP", 0.0)}


def coco_images(annotations: str, images_dir: str, problems: coco_problems.ProblemCounter,
                skeleton: Skeleton) -> Iterator[EvaluationImage]:
    """Every readable image of a COCO JSON (people or not) whose keypoints follow `skeleton`, with its record."""
    dataset = coco.load_dataset(annotations, problems, skeleton=skeleton)
    for record in coco_records.iter_image_records(dataset, images_dir, problems, with_empty_images=True):
        yield EvaluationImage(record.image_id, record.encoded, record)
