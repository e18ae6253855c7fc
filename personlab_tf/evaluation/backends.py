"""The `--evaluator` switch: pycocotools (the reference) or faster-coco-eval, behind one small API.

Both give a COCO object and a COCOeval object with the same `params`, `evaluate()`, `accumulate()` and
`eval["precision"]` [T, R, K, A, M] / `eval["recall"]` [T, K, A, M] arrays, which is all `metrics.py`
reads. faster-coco-eval is imported only when chosen (it is an optional extra: `pip install .[fast_eval]`).
Both libraries print progress to stdout; it is silenced here.
"""

import contextlib
import copy
import io
from typing import Any, Dict, Optional, Sequence

import numpy as np


PYCOCOTOOLS = "pycocotools"
FASTER_COCO_EVAL = "faster_coco_eval"
EVALUATORS = (PYCOCOTOOLS, FASTER_COCO_EVAL)


def _silent(*args, **kwargs):
    """A print function that prints nothing."""


@contextlib.contextmanager
def _quiet():
    """Swallows what the COCO libraries print to stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def check_evaluator(evaluator: str) -> str:
    """Returns `evaluator` if it is one of `EVALUATORS`, else raises ValueError."""
    if evaluator not in EVALUATORS:
        raise ValueError(f"unknown evaluator {evaluator!r}; expected one of {EVALUATORS}")
    return evaluator


def make_coco(dataset: Dict[str, Any], evaluator: str = PYCOCOTOOLS) -> Any:
    """A COCO ground truth object of `evaluator` holding a deep copy of the COCO-format `dataset` dict.

    A fresh copy per evaluation matters: COCOeval writes into the ground truth annotations
    (`ignore` flags, segmentations turned into RLE).
    """
    dataset = copy.deepcopy(dataset)
    if check_evaluator(evaluator) == PYCOCOTOOLS:
        from pycocotools.coco import COCO  # pylint: disable=import-outside-toplevel
        coco = COCO()
        coco.dataset = dataset
        with _quiet():
            coco.createIndex()
        return coco
    import faster_coco_eval  # pylint: disable=import-outside-toplevel
    with _quiet():
        return faster_coco_eval.COCO(dataset, print_function=_silent)


def load_results(coco_gt: Any, results: Sequence[Dict[str, Any]]) -> Any:
    """`coco_gt.loadRes` of a deep copy of the non-empty results list (loadRes edits its input)."""
    if not results:
        raise ValueError("COCO loadRes cannot take an empty results list")
    with _quiet():
        return coco_gt.loadRes(copy.deepcopy(list(results)))


def make_cocoeval(coco_gt: Any, coco_dt: Any, iou_type: str, evaluator: str = PYCOCOTOOLS,
                  sigmas: Optional[Sequence[float]] = None) -> Any:
    """A COCOeval of `evaluator` for `iou_type` ("keypoints" or "segm"); "keypoints" needs the skeleton's OKS
    `sigmas` (Skeleton.sigmas, ValueError without)."""
    if check_evaluator(evaluator) == PYCOCOTOOLS:
        from pycocotools.cocoeval import COCOeval  # pylint: disable=import-outside-toplevel
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
    else:
        import faster_coco_eval  # pylint: disable=import-outside-toplevel
        coco_eval = faster_coco_eval.COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=_silent)
    if iou_type == "keypoints":
        if sigmas is None:
            raise ValueError("a keypoint COCOeval needs the skeleton's OKS sigmas")
        coco_eval.params.kpt_oks_sigmas = np.array(sigmas, np.float64)
    return coco_eval


def evaluate_and_accumulate(coco_eval: Any) -> Any:
    """Runs `evaluate()` and `accumulate()` quietly; returns `coco_eval`."""
    with _quiet():
        coco_eval.evaluate()
        coco_eval.accumulate()
    return coco_eval


def summarize_quietly(coco_eval: Any) -> np.ndarray:
    """The library's own `summarize()` without its printing; returns `coco_eval.stats`."""
    with _quiet():
        coco_eval.summarize()
    return np.asarray(coco_eval.stats)
