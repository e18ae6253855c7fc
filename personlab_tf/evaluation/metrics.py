"""COCO keypoint and person segmentation metrics, as reported in the paper's Tables 1-3.

Keypoints (Table 1; COCOeval iouType "keypoints", OKS with the skeleton's sigmas, at most 20
detections per image):
    AP, AP50, AP75, APM, APL, AR, AR50, AR75, ARM, ARL
Person segmentation (Tables 2-3; iouType "segm", category person only, at most 20 proposals per image
as the paper, so maxDets = [1, 10, 20]):
    AP, AP50, AP75, APS, APM, APL, AR1, AR10, AR20, ARS, ARM, ARL
(AR<n> follow `max_detections`: with 100, as the paper's reference val run, the rows are AR1, AR10, AR100.)
Person segmentation of the persons with keypoints (`keypoint_persons`): the same rows with every person
without a labelled keypoint treated as a crowd region.

Why our own summary: pycocotools' `summarize()` assumes the default maxDets [1, 10, 100]; its first
segm row asks for maxDets=100, so with [1, 10, 20] it returns -1 for AP (its other rows use maxDets[i]
and are right). `summary_value` reads `eval["precision"]` / `eval["recall"]` the same way for any
maxDets; the tests check it against `summarize()` on every row where both are defined.

Values follow COCO: a mean over IoU/OKS thresholds 0.50:0.05:0.95 unless the row names one; -1 when a
row has no ground truth (e.g. APS of keypoints does not exist, an area range without persons). An
empty results list is not evaluated (COCO's loadRes fails on it): every row is 0.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from personlab_tf.evaluation import backends

# (name, average precision (else recall), IoU/OKS threshold or None for the mean, area range).
_KEYPOINT_ROWS = (
    ("AP", True, None, "all"), ("AP50", True, 0.5, "all"), ("AP75", True, 0.75, "all"),
    ("APM", True, None, "medium"), ("APL", True, None, "large"),
    ("AR", False, None, "all"), ("AR50", False, 0.5, "all"), ("AR75", False, 0.75, "all"),
    ("ARM", False, None, "medium"), ("ARL", False, None, "large"),
)
KEYPOINT_METRICS = tuple(row[0] for row in _KEYPOINT_ROWS)
MAX_DETECTIONS = 20  # per image, the COCO keypoint convention the paper also uses for segmentation


def segmentation_max_dets(max_detections: int = MAX_DETECTIONS) -> List[int]:
    """COCOeval `maxDets` of the segmentation evaluation: [1, 10, max_detections] (sorted, unique)."""
    return sorted({1, 10, int(max_detections)})


def _segmentation_rows(max_detections):
    """The segmentation rows (see `_KEYPOINT_ROWS`), each with its maxDets."""
    top = int(max_detections)
    rows = [("AP", True, None, "all", top), ("AP50", True, 0.5, "all", top),
            ("AP75", True, 0.75, "all", top), ("APS", True, None, "small", top),
            ("APM", True, None, "medium", top), ("APL", True, None, "large", top)]
    rows += [(f"AR{m}", False, None, "all", m) for m in segmentation_max_dets(top)]
    rows += [("ARS", False, None, "small", top), ("ARM", False, None, "medium", top),
             ("ARL", False, None, "large", top)]
    return tuple(rows)


def segmentation_metric_names(max_detections: int = MAX_DETECTIONS) -> Tuple[str, ...]:
    """Names of the segmentation metrics, in table order."""
    return tuple(row[0] for row in _segmentation_rows(max_detections))


def summary_value(coco_eval: Any, average_precision: bool, iou_threshold: Optional[float], area: str,
                  max_detections: int) -> float:
    """One summary number from an accumulated COCOeval, as COCOeval.summarize computes it.

    Args:
      coco_eval: COCOeval after `evaluate()` and `accumulate()`.
      average_precision: True for AP (`eval["precision"]` [T, R, K, A, M]), False for AR
        (`eval["recall"]` [T, K, A, M]).
      iou_threshold: one threshold of `params.iouThrs` (0.5, 0.75), or None for the mean over all.
      area: an area range label of `params.areaRngLbl` ("all", "small", "medium", "large").
      max_detections: a value of `params.maxDets`.

    Returns:
      float, the mean over the entries > -1, or -1.0 if there is none.
    """
    params = coco_eval.params
    values = np.asarray(coco_eval.eval["precision" if average_precision else "recall"])
    if iou_threshold is not None:
        values = values[np.isclose(np.asarray(params.iouThrs), iou_threshold)]
    values = values[..., list(params.areaRngLbl).index(area), list(params.maxDets).index(max_detections)]
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def _ground_truth(gt, evaluator):
    """A fresh COCO ground truth object of `evaluator` from a COCO dict or any COCO object."""
    return backends.make_coco(gt if isinstance(gt, dict) else gt.dataset, evaluator)


def run_cocoeval(gt: Any, results: Sequence[Dict[str, Any]], iou_type: str, evaluator: str = backends.PYCOCOTOOLS,
                 max_dets: Optional[Sequence[int]] = None, image_ids: Optional[Sequence[int]] = None,
                 sigmas: Optional[Sequence[float]] = None) -> Any:
    """Evaluates and accumulates a COCOeval; returns it (for `summary_value` or `summarize()`).

    Args:
      gt: COCO ground truth, a COCO-format dict or a COCO object of either library (it is copied).
      results: non-empty COCO results list of `iou_type`.
      iou_type: "keypoints" or "segm".
      evaluator: one of `backends.EVALUATORS`.
      max_dets: COCOeval `params.maxDets` (default: the library's for `iou_type`).
      image_ids: evaluate only these images (default: every image of the ground truth, as COCO does).
      sigmas: the skeleton's OKS sigmas (Skeleton.sigmas), needed for "keypoints".
    """
    coco_gt = _ground_truth(gt, evaluator)
    coco_eval = backends.make_cocoeval(coco_gt, backends.load_results(coco_gt, results), iou_type, evaluator,
                                       sigmas)
    if max_dets is not None:
        coco_eval.params.maxDets = list(max_dets)
    if image_ids is not None:
        coco_eval.params.imgIds = sorted(int(i) for i in image_ids)
    return backends.evaluate_and_accumulate(coco_eval)


def evaluate_keypoints(gt: Any, results: Sequence[Dict[str, Any]], evaluator: str = backends.PYCOCOTOOLS,
                       max_detections: int = MAX_DETECTIONS, image_ids: Optional[Sequence[int]] = None, *,
                       sigmas: Sequence[float]) -> Dict[str, float]:
    """COCO keypoint metrics {"AP": ..., ..., "ARL": ...} (floats; all 0 for empty `results`).

    Args:
      gt: COCO ground truth (dict or COCO object) with `keypoints`, `num_keypoints`, `area`, `iscrowd`.
      results: COCO keypoint results, e.g. from `results.keypoint_results`.
      evaluator: "pycocotools" or "faster_coco_eval".
      max_detections: detections per image kept by score (COCO: 20).
      image_ids: optional subset of images to evaluate (default: all images of `gt`).
      sigmas: the OKS sigmas of the keypoints (Skeleton.sigmas).
    """
    if not results:
        return {name: 0.0 for name in KEYPOINT_METRICS}
    coco_eval = run_cocoeval(gt, results, "keypoints", evaluator, [max_detections], image_ids, sigmas)
    return {name: summary_value(coco_eval, ap, iou, area, max_detections)
            for name, ap, iou, area in _KEYPOINT_ROWS}


def keypoint_persons(gt: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of a COCO ground truth dict where the persons without labelled keypoints are crowd regions.

    The segmentation AP of the persons a keypoint-seeded decoder can find (docs/evaluation.md): a person with
    num_keypoints == 0 neither counts as a miss nor makes a detection on it a false positive, the way COCOeval
    ignores crowd regions (a detection matching one is ignored; IoU with a crowd region is the intersection
    over the detection's area).
    """
    annotations = [dict(annotation, iscrowd=1) if not annotation.get("iscrowd") and
                   not annotation.get("num_keypoints", 0) else annotation for annotation in gt["annotations"]]
    return dict(gt, annotations=annotations)


def evaluate_segmentation(gt: Any, results: Sequence[Dict[str, Any]], evaluator: str = backends.PYCOCOTOOLS,
                          max_detections: int = MAX_DETECTIONS,
                          image_ids: Optional[Sequence[int]] = None) -> Dict[str, float]:
    """COCO person segmentation metrics {"AP": ..., ..., "AR20": ..., "ARL": ...} (0 for empty results).

    Args:
      gt: COCO ground truth (dict or COCO object) with `segmentation`, `area`, `iscrowd`.
      results: COCO segmentation results (compressed RLE), e.g. from `results.segmentation_results`.
      evaluator: "pycocotools" or "faster_coco_eval".
      max_detections: proposals per image kept by score (paper: 20); maxDets = [1, 10, max_detections].
      image_ids: optional subset of images to evaluate (default: all images of `gt`).
    """
    rows = _segmentation_rows(max_detections)
    if not results:
        return {row[0]: 0.0 for row in rows}
    coco_eval = run_cocoeval(gt, results, "segm", evaluator, segmentation_max_dets(max_detections), image_ids)
    return {name: summary_value(coco_eval, ap, iou, area, max_dets)
            for name, ap, iou, area, max_dets in rows}
