"""Instance-aware part parsing metrics (second paper §4.1) with the official tools' definitions.

docs/parts.md ("Metrics") states each definition and the tool it reproduces:
- mIoU: the standard confusion-matrix mean IoU of the category-level part maps over the dataset;
- AP^p and PCP: the MHP v2 evaluation (`eval_mhp.py`, also Parsing R-CNN's `eval_parsing_ap`):
  person-level IoU = mean over the classes, *background included*, of the IoU between the prediction's
  and the person's full-image label maps; greedy matching by score with IoU strictly above the threshold;
  VOC all-point AP; PCP over the matched persons' part classes; thresholds 0.1, 0.2, ..., 0.9;
- AP^r: CIHP's `test_inst_part_ap.py`: every (person, part class) region is a detection or a ground-truth
  region; a predicted region is a true positive when its best IoU with the image's regions of its class
  is above the threshold (no one-to-one assignment, as in the tool); AP per class, mean over classes.

Ground-truth instances are the non-crowd persons with part labels and at least one part pixel under their
mask; a person's label map is the image's part map under its mask, 0 elsewhere. Extension (changes nothing
when an image has no crowd region and every person has part labels): pixels of crowd regions and of
persons without part labels are *ignored*: out of the mIoU, and a predicted instance at least half inside
them is dropped before matching (neither a true nor a false positive).
"""

import dataclasses
from typing import Any, Dict, Sequence, Tuple

import numpy as np

THRESHOLDS = tuple(step / 10 for step in range(1, 10))   # 0.1 ... 0.9, the tools' IoU thresholds
PCP_THRESHOLD = 0.5
REGION_THRESHOLDS = (0.5, 0.6, 0.7)                       # the AP^r values reported beside AP^r_vol
IGNORED_FRACTION = 0.5


@dataclasses.dataclass
class GroundTruth:
    """One image's ground truth: part_map [H, W] uint8 (0 background), person masks [N, H, W] bool,
    is_crowd [N] bool, has_parts [N] bool (the person's pixels carry part labels)."""

    part_map: np.ndarray
    masks: np.ndarray
    is_crowd: np.ndarray
    has_parts: np.ndarray


@dataclasses.dataclass
class Prediction:
    """One image's prediction: part_map [H, W] uint8 (category-level parsing), instance_part_maps
    [D, H, W] uint8 with disjoint supports (D may be 0), scores [D]."""

    part_map: np.ndarray
    instance_part_maps: np.ndarray
    scores: np.ndarray


def voc_average_precision(true_positive: Sequence[bool], scores: Sequence[float], num_positives: int) -> float:
    """VOC area under the precision-recall curve, all points, precision made monotone (the `voc_ap` of
    the MHP and CIHP tools with use_07_metric=False).

    Detections are ranked by descending score, ties in their given order; recall = TP / num_positives,
    precision = TP / (TP + FP) at each rank; AP = sum over the ranks where recall changes of
    (recall step) x (the highest precision at this or any later rank).

    Args:
      true_positive: [P] bool per detection; scores: [P] their scores; num_positives: ground-truth count.

    Returns:
      AP, NaN when num_positives is 0.
    """
    if num_positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    hits = np.asarray(true_positive, bool)[order]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    recall = np.concatenate([[0.0], tp / num_positives, [1.0]])
    precision = np.concatenate([[0.0], tp / np.maximum(tp + fp, 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changes = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))


def class_ious(intersection: np.ndarray, predicted_area: np.ndarray, truth_area: np.ndarray) -> np.ndarray:
    """IoU of every class between label maps, NaN where neither map has the class (the tools' 0 / 0).

    Args:
      intersection, predicted_area, truth_area: [..., C] pixel counts per class (background included).
    """
    union = predicted_area + truth_area - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1), np.nan)


def person_iou(ious: np.ndarray) -> np.ndarray:
    """MHP's person-level IoU: the mean of `class_ious` over the classes present in either map, background
    included (the tool's nanmean); [...] from [..., C]."""
    present = ~np.isnan(ious)
    return np.where(present, ious, 0.0).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


@dataclasses.dataclass
class _ImageResult:
    """What one image contributes at every threshold.

    scores [D]: the counted predictions; best_truth [D]: the instance with the highest person IoU
    (the first on ties, -1 when the image has none); best_iou [D]: that IoU; best_part_iou [D, C - 1]:
    the part classes' IoUs with it (0 where neither has the class); best_part_count [D]: its part classes;
    region_class, region_score, region_iou [R]: each predicted (instance, part) region, its instance's
    score and its best IoU with the image's instance regions of its class (-inf when there are none);
    instances: the image's instances; truth_regions [C - 1]: their regions per part class.
    """

    scores: np.ndarray
    best_truth: np.ndarray
    best_iou: np.ndarray
    best_part_iou: np.ndarray
    best_part_count: np.ndarray
    region_class: np.ndarray
    region_score: np.ndarray
    region_iou: np.ndarray
    instances: int
    truth_regions: np.ndarray


def _label_areas(maps: np.ndarray, classes: int) -> np.ndarray:
    """[M, C] pixel counts of every class in each of the maps [M, H, W]."""
    return np.array([np.bincount(m.ravel(), minlength=classes) for m in maps], np.int64).reshape(len(maps), classes)


def labelled_persons(ground_truth: GroundTruth) -> np.ndarray:
    """[N] bool: the persons whose pixels the part labels describe, non-crowd with part labels (the others'
    pixels are ignored regions, module docstring)."""
    return ~np.asarray(ground_truth.is_crowd, bool) & np.asarray(ground_truth.has_parts, bool)


def truth_instances(ground_truth: GroundTruth) -> np.ndarray:
    """[G, H, W] int64: the label maps of an image's instances, in annotation order: its non-crowd persons with
    part labels whose map (the image's part map under the mask, 0 elsewhere) has a part pixel (module
    docstring)."""
    truth_map = np.asarray(ground_truth.part_map, np.int64)
    masks = np.asarray(ground_truth.masks, bool).reshape((-1,) + truth_map.shape)
    labelled = labelled_persons(ground_truth)
    truths = np.array([np.where(mask, truth_map, 0) for mask in masks[labelled]], np.int64).reshape(
        (-1,) + truth_map.shape)
    return truths[(truths > 0).any(axis=(1, 2))]              # persons without part pixels: not instances


class PartParsingEvaluator:
    """Accumulates images (`add`) and computes every metric (`results`); `num_classes` includes background."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), np.int64)
        self.images = []

    def add(self, ground_truth: GroundTruth, prediction: Prediction) -> None:
        """One image.

        Raises:
          ValueError: shapes disagree, a label is not a class, or predicted instances overlap.
        """
        classes = self.num_classes
        truth_map = np.asarray(ground_truth.part_map, np.int64)
        height, width = truth_map.shape
        masks = np.asarray(ground_truth.masks, bool).reshape((-1, height, width))
        predictions = np.asarray(prediction.instance_part_maps, np.int64).reshape((-1, height, width))
        predicted_map = np.asarray(prediction.part_map, np.int64)
        scores = np.asarray(prediction.scores, np.float64).reshape(-1)
        if predicted_map.shape != truth_map.shape or len(scores) != len(predictions):
            raise ValueError(f"prediction shapes {predicted_map.shape}, {predictions.shape}, {scores.shape} do not "
                             f"match the ground truth's {truth_map.shape}")
        for name, values in (("ground-truth", truth_map), ("predicted", predicted_map), ("instance", predictions)):
            if values.size and (values.min() < 0 or values.max() >= classes):
                raise ValueError(f"{name} labels must lie in [0, {classes})")
        if ((predictions > 0).sum(axis=0) > 1).any():
            raise ValueError("predicted instances overlap: instance part maps must have disjoint supports")

        labelled = labelled_persons(ground_truth)
        ignored = masks[~labelled].any(axis=0)
        keep = ~ignored
        self.confusion += np.bincount(truth_map[keep] * classes + predicted_map[keep],
                                      minlength=classes * classes).reshape(classes, classes)

        supports = predictions > 0
        area = supports.sum(axis=(1, 2))
        inside = (supports & ignored).sum(axis=(1, 2))
        counted = (area > 0) & (inside < IGNORED_FRACTION * area)   # empty instances are not submitted either
        predictions, scores = predictions[counted], scores[counted]
        self.images.append(self._image_result(predictions, scores, truth_instances(ground_truth)))

    def _image_result(self, predictions, scores, truths):
        classes, pixels = self.num_classes, truths.shape[1] * truths.shape[2]
        count, instances = len(predictions), len(truths)
        owner = np.full(truths.shape[1:], -1)
        for d, parts in enumerate(predictions):
            owner[parts > 0] = d
        codes = predictions.max(axis=0) if count else np.zeros(truths.shape[1:], np.int64)

        predicted_area = _label_areas(predictions, classes)
        truth_area = _label_areas(truths, classes)
        intersection = np.zeros((count, instances, classes), np.int64)
        for g, parts in enumerate(truths):
            both = (parts > 0) & (owner >= 0)
            same = both & (codes == parts)
            intersection[:, g] = np.bincount(owner[same] * classes + parts[same],
                                             minlength=count * classes).reshape(count, classes)
            overlap = np.bincount(owner[both], minlength=count)                # |support d & support g|
            # Background: pixels outside both supports.
            intersection[:, g, 0] = pixels - (pixels - predicted_area[:, 0]) - (pixels - truth_area[g, 0]) + overlap
        ious = class_ious(intersection, predicted_area[:, None, :], truth_area[None, :, :])    # [D, G, C]
        persons = person_iou(ious)                                                             # [D, G]

        best_truth = np.argmax(persons, axis=1) if instances else np.full(count, -1)
        rows = np.arange(count)
        best_iou = persons[rows, best_truth] if instances else np.full(count, -np.inf)
        best_part_iou = np.nan_to_num(ious[rows, best_truth, 1:]) if instances else np.zeros((count, classes - 1))
        best_part_count = (truth_area[best_truth, 1:] > 0).sum(axis=1) if instances else np.zeros(count, np.int64)

        truth_has = truth_area[:, 1:] > 0                                                      # [G, C - 1]
        region_ious = np.where(truth_has[None], np.nan_to_num(ious[..., 1:]), -np.inf)        # [D, G, C - 1]
        best_region = region_ious.max(axis=1) if instances else np.full((count, classes - 1), -np.inf)
        region_d, region_c = np.nonzero(predicted_area[:, 1:] > 0)
        return _ImageResult(scores=scores, best_truth=best_truth, best_iou=best_iou, best_part_iou=best_part_iou,
                            best_part_count=best_part_count, region_class=region_c + 1, region_score=scores[region_d],
                            region_iou=best_region[region_d, region_c], instances=instances,
                            truth_regions=truth_has.sum(axis=0))

    def miou(self) -> float:
        """Mean IoU over the classes present in the ground truth or the predictions (non-ignored pixels)."""
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(axis=0) + self.confusion.sum(axis=1) - tp
        present = union > 0
        return float(np.mean(tp[present] / union[present])) if present.any() else float("nan")

    def person_ap(self, threshold: float) -> Tuple[float, float]:
        """(AP^p, PCP) at one threshold (MHP v2's eval_seg_ap).

        Predictions of the dataset by descending score (ties in the order added): each goes to its image's
        instance of highest person IoU; a true positive if that IoU > threshold and the instance is not
        matched yet, else a false positive. PCP: each matched instance scores (its part classes whose IoU
        with the prediction's same class is > threshold) / (its part classes); unmatched instances score 0;
        the mean over all instances.
        """
        hits, scores, positives, pcp = [], [], 0, 0.0
        for image in self.images:
            positives += image.instances
            taken = np.zeros(image.instances, bool)
            hit = np.zeros(len(image.scores), bool)
            for d in np.argsort(-image.scores, kind="stable"):
                g = image.best_truth[d]
                if g >= 0 and image.best_iou[d] > threshold and not taken[g]:
                    taken[g] = hit[d] = True
                    pcp += np.count_nonzero(image.best_part_iou[d] > threshold) / image.best_part_count[d]
            hits.append(hit)
            scores.append(image.scores)
        ap = voc_average_precision(np.concatenate(hits or [np.zeros(0, bool)]),
                                   np.concatenate(scores or [np.zeros(0)]), positives)
        return ap, (float(pcp / positives) if positives else float("nan"))

    def region_ap(self, threshold: float) -> float:
        """AP^r at one threshold (CIHP's test_inst_part_ap): per part class, a predicted region is a true
        positive when its best IoU with the image's instance regions of the class is > threshold (several
        predictions may hit one region); VOC AP over the dataset's ranked regions of the class; the mean
        over the classes with ground-truth regions."""
        per_class = []
        regions = np.sum([image.truth_regions for image in self.images], axis=0) if self.images else []
        for c in np.flatnonzero(np.asarray(regions) > 0) + 1:
            hits = [image.region_iou[image.region_class == c] > threshold for image in self.images]
            scores = [image.region_score[image.region_class == c] for image in self.images]
            per_class.append(voc_average_precision(np.concatenate(hits), np.concatenate(scores), regions[c - 1]))
        return float(np.mean(per_class)) if per_class else float("nan")

    def results(self) -> Dict[str, Any]:
        """dict: mIoU; APp_50, APp_vol, PCP50 (MHP v2); APr_50, APr_60, APr_70, APr_vol (CIHP); the value at
        every threshold (APp, PCP, APr: {"0.1": ..., ..., "0.9": ...}); images; instances."""
        person = {t: self.person_ap(t) for t in THRESHOLDS}
        region = {t: self.region_ap(t) for t in THRESHOLDS}
        results = {"mIoU": self.miou(), "APp_50": person[0.5][0],
                   "APp_vol": float(np.mean([person[t][0] for t in THRESHOLDS])),
                   "PCP50": person[PCP_THRESHOLD][1]}
        results.update({f"APr_{round(100 * t)}": region[t] for t in REGION_THRESHOLDS})
        results["APr_vol"] = float(np.mean([region[t] for t in THRESHOLDS]))
        results.update({"APp": {str(t): person[t][0] for t in THRESHOLDS},
                        "PCP": {str(t): person[t][1] for t in THRESHOLDS},
                        "APr": {str(t): region[t] for t in THRESHOLDS},
                        "images": len(self.images), "instances": int(sum(i.instances for i in self.images))})
        return results
