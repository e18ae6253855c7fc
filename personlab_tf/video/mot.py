"""Tracking metrics of tracked segmentation results against a video clip's ground truth (py-motmetrics).

Ground truth: a COCO person-keypoints dict of one clip (the synthetic clips' `person_keypoints.json`):
`images` with `id`, `height`, `width` and `frame` (0-based; without it, images are taken in id order), and
`annotations` with `image_id`, `iscrowd`, `segmentation` (polygons, RLE or compressed RLE), `area` and
`track_id`. Every non-crowd annotation with area > 0 is an object of its frame, its identity its track_id.

Results: COCO segmentation results (`image_id`, `segmentation` a compressed RLE as pycocotools encodes it,
`score`), each with a `track_id` (the hypothesis identity; results with track_id < 0 are ignored).

Matching: distance = 1 - mask IoU (pycocotools.mask.iou), pairs with IoU < `min_iou` are not matchable
(NaN). Every ground-truth frame is fed to a `motmetrics.MOTAccumulator` in frame order, those without
results included, and motmetrics does the CLEAR-MOT matching (a match is kept from frame to frame while still
matchable) and the identity (IDF1) matching over the clip. In the returned metrics:

- mota = 1 - (num_misses + num_false_positives + num_switches) / num_objects;
- motp = the mean mask IoU of the matches (1 - motmetrics' motp, which is the mean distance);
- idf1 = 2 IDTP / (2 IDTP + IDFP + IDFN), idp = IDTP / (IDTP + IDFP), idr = IDTP / (IDTP + IDFN);
- precision, recall: of the per-frame matches; mostly_tracked / mostly_lost: ground-truth tracks matched in
  at least 80% / less than 20% of their frames; the rest are counts.

Undefined values (no objects, no matches) are None, so the dicts are JSON-serialisable.
"""

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import motmetrics as mm
import numpy as np
from pycocotools import mask as mask_utils

# motmetrics' names of the metrics returned, and which are counts (ints).
METRICS = ("mota", "motp", "idf1", "idp", "idr", "precision", "recall", "num_switches", "num_false_positives",
           "num_misses", "num_objects", "num_predictions", "num_unique_objects", "mostly_tracked",
           "partially_tracked", "mostly_lost", "num_fragmentations", "num_frames")
COUNTS = frozenset(name for name in METRICS if name.startswith("num_") or name.endswith("_tracked")
                   or name == "mostly_lost")


def _rle(segmentation: Any, height: int, width: int) -> Dict[str, Any]:
    """One compressed RLE of a COCO segmentation (polygons, uncompressed or compressed RLE)."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def _iou(results: List[Dict[str, Any]], objects: List[Dict[str, Any]]) -> np.ndarray:
    """[len(objects), len(results)] mask IoU of compressed RLEs (empty lists allowed)."""
    if not results or not objects:
        return np.zeros([len(objects), len(results)])
    return np.asarray(mask_utils.iou(objects, results, [0] * len(results)), np.float64)


def _frames(ground_truth: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The clip's images in frame order (their `frame`, else their id)."""
    images = list(ground_truth.get("images") or [])
    return sorted(images, key=lambda image: (image.get("frame", image["id"]), image["id"]))


def accumulate(ground_truth: Mapping[str, Any], results: Sequence[Mapping[str, Any]],
               min_iou: float = 0.5) -> mm.MOTAccumulator:
    """The motmetrics accumulator of one clip (module docstring), frame ids = frame order 0, 1, ...

    Raises:
      ValueError: an annotation or result has no track_id, a result names an image not in the ground truth,
        or an identity appears twice in one frame.
    """
    frames = _frames(ground_truth)
    sizes = {image["id"]: (int(image["height"]), int(image["width"])) for image in frames}
    objects = {image_id: [] for image_id in sizes}
    for annotation in ground_truth.get("annotations") or []:
        if annotation.get("iscrowd", 0) or not annotation.get("area", 0) > 0:
            continue
        if annotation.get("track_id") is None:
            raise ValueError(f"annotation {annotation.get('id')} of image {annotation['image_id']} has no track_id")
        objects[annotation["image_id"]].append(annotation)
    hypotheses = {image_id: [] for image_id in sizes}
    for result in results:
        if result.get("track_id") is None:
            raise ValueError(f"a result of image {result.get('image_id')} has no track_id")
        if result["track_id"] < 0:
            continue
        if result["image_id"] not in hypotheses:
            raise ValueError(f"a result names image {result['image_id']}, not in the ground truth")
        hypotheses[result["image_id"]].append(result)

    accumulator = mm.MOTAccumulator(auto_id=False)
    for index, image in enumerate(frames):
        height, width = sizes[image["id"]]
        truth, found = objects[image["id"]], hypotheses[image["id"]]
        object_ids = [int(a["track_id"]) for a in truth]
        hypothesis_ids = [int(r["track_id"]) for r in found]
        for what, ids in (("ground-truth track", object_ids), ("result track", hypothesis_ids)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"image {image['id']}: a {what} id appears twice ({sorted(ids)})")
        iou = _iou([_rle(r["segmentation"], height, width) for r in found],
                   [_rle(a["segmentation"], height, width) for a in truth])
        accumulator.update(object_ids, hypothesis_ids, np.where(iou >= min_iou, 1.0 - iou, np.nan),
                           frameid=index)
    return accumulator


def _plain(row: Mapping[str, Any]) -> Dict[str, Any]:
    """One summary row as plain ints / floats (None when undefined); motp as the mean IoU."""
    values = {}
    for name in METRICS:
        value = float(row[name])
        if name == "motp":
            value = 1.0 - value
        values[name] = None if not np.isfinite(value) else (int(round(value)) if name in COUNTS else value)
    return values


def tracking_metrics(ground_truth: Mapping[str, Any], results: Sequence[Mapping[str, Any]],
                     min_iou: float = 0.5) -> Dict[str, Any]:
    """MOT metrics of one clip's tracked results (module docstring).

    Args:
      ground_truth: the clip's COCO dict (images with `frame`, annotations with `track_id`).
      results: COCO segmentation results with `track_id`.
      min_iou: the smallest mask IoU of a match.

    Returns:
      {metric: int / float / None} for the names in METRICS; motp is the mean IoU of the matches.
    """
    summary = mm.metrics.create().compute(accumulate(ground_truth, results, min_iou), metrics=list(METRICS),
                                          name="clip")
    return _plain(summary.loc["clip"])


def tracking_metrics_many(clips: Mapping[str, Tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
                          min_iou: float = 0.5) -> Dict[str, Any]:
    """MOT metrics of several clips, each alone and all together (motmetrics' compute_many, generate_overall:
    the overall row counts every clip's events, so it is not the mean of the clips' rows).

    Args:
      clips: {clip name: (ground truth, results)} as `tracking_metrics` takes them.
      min_iou: the smallest mask IoU of a match.

    Returns:
      {"clips": {name: metrics}, "overall": metrics}, metrics as `tracking_metrics` returns them.
    """
    names = list(clips)
    if not names:
        raise ValueError("no clips to evaluate")
    accumulators = [accumulate(*clips[name], min_iou=min_iou) for name in names]
    summary = mm.metrics.create().compute_many(accumulators, metrics=list(METRICS), names=names,
                                               generate_overall=True)
    return {"clips": {name: _plain(summary.loc[name]) for name in names},
            "overall": _plain(summary.loc["OVERALL"])}

