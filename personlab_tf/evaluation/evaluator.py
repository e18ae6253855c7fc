"""`CocoEvaluator`: streams per-image predictions into COCO results and computes both metric sets.

How the PersonLab task's evaluation uses it (tasks/personlab/evaluation.py, scripts/evaluate.py):

    gt = ground_truth.load_ground_truth(builder, "validation")     # or the COCO JSON itself
    evaluator = CocoEvaluator(gt, skeleton, output_dir=..., evaluator="pycocotools")   # or "faster_coco_eval"
    for each image:
        evaluator.add(image_id, detections)   # keys.Detection, one image, masks at its size
    metrics = evaluator.results()   # {"keypoints": {...}, "segmentation": {...}, ...}; JSONs in output_dir
"""

import json
import os
from typing import Any, Dict, Optional

import numpy as np

from personlab_tf import keys
from personlab_tf.evaluation import backends, metrics, results
from personlab_tf.skeleton import Skeleton

KEYPOINT_RESULTS_FILE = "keypoint_results.json"
SEGMENTATION_RESULTS_FILE = "segmentation_results.json"
METRICS_FILE = "metrics.json"
KEYPOINTS = "keypoints"
SEGMENTATION = "segmentation"
SEGMENTATION_KEYPOINT_PERSONS = "segmentation_keypoint_persons"


class CocoEvaluator:
    """Accumulates predictions image by image; `results()` writes the COCO JSONs and returns metrics.

    Args:
      ground_truth: COCO ground truth dict (`ground_truth.load_ground_truth`, `coco.ground_truth`) or COCO
        object.
      skeleton: the keypoint set of the ground truth and the predictions (OKS sigmas, category id).
      output_dir: optional directory for `keypoint_results.json`, `segmentation_results.json` (COCO
        results format, loadable by any COCO tool) and `metrics.json`.
      evaluator: "pycocotools" (reference) or "faster_coco_eval".
      max_detections: detections per image evaluated, by score (paper: 20 for both tasks).
      only_added_images: evaluate only the images given to `add` (e.g. a quick run over part of a
        split). Default False: every ground truth image counts, as in COCO, so an image never added
        counts as one where nothing was detected.
    """

    def __init__(self, ground_truth: Any, skeleton: Skeleton, output_dir: Optional[str] = None,
                 evaluator: str = backends.PYCOCOTOOLS, max_detections: int = metrics.MAX_DETECTIONS,
                 only_added_images: bool = False):
        self._gt = ground_truth if isinstance(ground_truth, dict) else ground_truth.dataset
        self._skeleton = skeleton
        self._sizes = {int(image["id"]): (int(image["height"]), int(image["width"]))
                       for image in self._gt["images"]}
        self._output_dir = output_dir
        self._evaluator = backends.check_evaluator(evaluator)
        self._max_detections = max_detections
        self._only_added_images = only_added_images
        self._image_ids = []
        self._added = set()
        self._keypoint_results = []
        self._segmentation_results = []
        self._with_masks = False

    @property
    def num_images(self) -> int:
        """Number of images added so far."""
        return len(self._image_ids)

    def add(self, image_id: Any, predictions: Dict[str, Any]) -> None:
        """Adds the predictions of one image.

        Args:
          image_id: COCO image id of a ground truth image (int or numpy/tensor scalar).
          predictions: dict of `results.py` (keypoints [M, K, 2] in original-image pixels, pixel centres
            at integer coordinates, (x, y); keypoint_scores [M, K]; instance_scores [M]; optional
            num_detections []; optional masks [M, H, W] bool at the original resolution).

        Raises:
          ValueError: unknown or repeated image id, or masks not of the image's size.
        """
        image_id = int(np.asarray(image_id).reshape(()))
        if image_id not in self._sizes:
            raise ValueError(f"image id {image_id} is not in the ground truth")
        if image_id in self._added:
            raise ValueError(f"image id {image_id} was already added")
        keypoint_list = results.keypoint_results(image_id, predictions, self._skeleton)
        segmentation_list = None
        if results.has_masks(predictions):
            mask_size = tuple(np.shape(predictions[keys.Detection.MASKS])[1:])
            if mask_size != self._sizes[image_id]:
                raise ValueError(f"masks of image {image_id} are {mask_size}, the image is "
                                 f"{self._sizes[image_id]} (height, width)")
            segmentation_list = results.segmentation_results(image_id, predictions, self._skeleton.category_id)
        # Nothing is stored before every check passed: a refused image can be added again.
        self._keypoint_results.extend(keypoint_list)
        if segmentation_list is not None:
            self._segmentation_results.extend(segmentation_list)
            self._with_masks = True
        self._added.add(image_id)
        self._image_ids.append(image_id)

    def results(self) -> Dict[str, Dict[str, float]]:
        """Writes the JSONs (if `output_dir`) and returns the metrics.

        Returns:
          {"keypoints": {"AP": ..., ..., "ARL": ...}, "segmentation": {"AP": ..., "AR20": ..., ...},
          "segmentation_keypoint_persons": {...}}: the segmentation rows again with the persons without
          keypoints as crowd regions (`metrics.keypoint_persons`); both only if masks were given for some
          image. See `metrics.py` for the rows.
        """
        image_ids = self._image_ids if self._only_added_images else None
        summary = {KEYPOINTS: metrics.evaluate_keypoints(
            self._gt, self._keypoint_results, self._evaluator, self._max_detections, image_ids,
            sigmas=self._skeleton.sigmas)}
        if self._with_masks:
            for name, gt in ((SEGMENTATION, self._gt), (SEGMENTATION_KEYPOINT_PERSONS, metrics.keypoint_persons(self._gt))):
                summary[name] = metrics.evaluate_segmentation(
                    gt, self._segmentation_results, self._evaluator, self._max_detections, image_ids)
        if self._output_dir:
            self._write(summary)
        return summary

    def _write(self, summary):
        """Writes the results and metrics JSONs into the output directory."""
        os.makedirs(self._output_dir, exist_ok=True)
        report = dict(summary, evaluator=self._evaluator, num_images=self.num_images,
                      max_detections=self._max_detections)
        files = {KEYPOINT_RESULTS_FILE: self._keypoint_results, METRICS_FILE: report}
        if self._with_masks:
            files[SEGMENTATION_RESULTS_FILE] = self._segmentation_results
        for name, content in files.items():
            with open(os.path.join(self._output_dir, name), "w") as f:
                json.dump(content, f)
