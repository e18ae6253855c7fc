"""COCO evaluation of person keypoints and person instance segmentation (PersonLab §4.2-4.3).

ground_truth.py  tfds `coco_person` examples -> COCO ground truth dict
results.py       per-image predictions -> COCO results lists (keypoints, segmentation)
backends.py      the --evaluator switch: pycocotools or faster_coco_eval behind one API
metrics.py       COCOeval runs and the metric rows of the paper's tables
evaluator.py     `CocoEvaluator`: accumulate predictions image by image, write JSONs, compute both metric sets
"""

from personlab_tf.evaluation.backends import EVALUATORS, FASTER_COCO_EVAL, PYCOCOTOOLS
from personlab_tf.evaluation.evaluator import CocoEvaluator
from personlab_tf.evaluation.ground_truth import coco_dict_from_examples, load_ground_truth
from personlab_tf.evaluation.metrics import evaluate_keypoints, evaluate_segmentation
from personlab_tf.evaluation.results import keypoint_results, segmentation_results

__all__ = [
    "EVALUATORS", "FASTER_COCO_EVAL", "PYCOCOTOOLS", "CocoEvaluator", "coco_dict_from_examples",
    "load_ground_truth", "evaluate_keypoints", "evaluate_segmentation", "keypoint_results",
    "segmentation_results",
]
