"""Instance-aware part parsing metrics (second paper §4.1): mIoU, AP^p and PCP (MHP protocol), AP^r.

Per image the evaluator takes the ground truth (part map [H, W], person masks [N, H, W], crowd and
has-parts flags) and the predictions (category-level part map [H, W], instance part maps [D, H, W] with
disjoint supports, instance scores [D]). A ground-truth instance is a non-crowd person with part labels;
its parts are the part map under its mask. Pixels of crowd regions and of persons without part labels
are *ignored*: left out of the mIoU, and a predicted instance lying for at least half inside them is
neither a true nor a false positive.

- mIoU: IoU = TP / (TP + FP + FN) of every class (background included) from one confusion matrix over
  all non-ignored pixels of the dataset, averaged over the classes present in the ground truth or the
  predictions.
- AP^p (MHP, "AP based on parts"): the person-level part IoU of a prediction d and an instance g is the
  mean, over the part classes c >= 1 present in either, of |d_c & g_c| / |d_c | g_c|. Predictions of the
  whole dataset are ranked by score; each is matched to the instance of its image with the highest
  part IoU, a true positive if that IoU >= t and the instance is not matched yet, else a false positive;
  AP = area under the precision-recall curve with precision made monotone (VOC, all points). AP^p_50 at
  t = 0.5, AP^p_vol the mean over t = 0.1, 0.2, ..., 0.9.
- PCP50 (MHP): with the matching at t = 0.5, the parts of each matched instance whose IoU with its
  prediction's same part is >= 0.5, over all parts of all instances (unmatched instances count 0).
- AP^r (CIHP / PASCAL-Person-Part, "AP based on regions"): every (prediction, part class) region with
  pixels is a detection with the prediction's score, matched to the instances' regions of that class by
  mask IoU as above; AP per class, averaged over the classes with ground-truth regions. AP^r at t = 0.5,
  0.6, 0.7 and AP^r_vol (mean over t = 0.1 ... 0.9).
"""

import dataclasses

import numpy as np

THRESHOLDS = tuple(round(0.1 * step, 1) for step in range(1, 10))
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


def voc_average_precision(true_positive, scores, num_positives):
    """VOC area under the precision-recall curve (all points, monotone precision).

    Args:
      true_positive: [P] bool per detection; scores: [P] their scores; num_positives: ground-truth count.
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


def _greedy_matches(overlaps, scores, threshold):
    """VOC matching of one image's detections to its instances: [D] bool true positives, [D] matched index."""
    matched = np.full(len(scores), -1)
    taken = np.zeros(overlaps.shape[1], bool)
    for d in np.argsort(-np.asarray(scores), kind="stable"):
        if overlaps.shape[1] == 0:
            break
        best = int(np.argmax(overlaps[d]))
        if overlaps[d, best] >= threshold and not taken[best]:
            taken[best] = True
            matched[d] = best
    return matched >= 0, matched


class PartParsingEvaluator:
    """Accumulates images (`add`) and computes every metric (`results`); `num_classes` includes background."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), np.int64)
        self.images = []   # per image: dict of the per-pair overlaps and region data

    def add(self, ground_truth: GroundTruth, prediction: Prediction):
        """One image."""
        classes = self.num_classes
        masks = np.asarray(ground_truth.masks, bool)
        instance = ~np.asarray(ground_truth.is_crowd, bool) & np.asarray(ground_truth.has_parts, bool)
        ignored = masks[~instance].any(axis=0) if (~instance).any() else np.zeros(masks.shape[1:], bool)
        truth_map = np.asarray(ground_truth.part_map, np.int64)
        predicted_map = np.asarray(prediction.part_map, np.int64)
        keep = ~ignored
        self.confusion += np.bincount(truth_map[keep] * classes + predicted_map[keep],
                                      minlength=classes * classes).reshape(classes, classes)

        predictions = np.asarray(prediction.instance_part_maps, np.int64).reshape((-1,) + truth_map.shape)
        scores = np.asarray(prediction.scores, np.float64)
        supports = predictions > 0
        area = supports.sum(axis=(1, 2))
        inside = (supports & ignored).sum(axis=(1, 2))
        counted = ~((area > 0) & (inside >= IGNORED_FRACTION * np.maximum(area, 1)))
        predictions, scores = predictions[counted], scores[counted]
        owner = np.full(truth_map.shape, -1)
        codes = np.zeros(truth_map.shape, np.int64)
        for d, parts in enumerate(predictions):
            owner[parts > 0] = d
            codes[parts > 0] = parts[parts > 0]
        predicted_area = np.zeros((len(predictions), classes), np.int64)
        for d in range(len(predictions)):
            predicted_area[d] = np.bincount(predictions[d][predictions[d] > 0], minlength=classes)

        truths = [np.where(masks[g], truth_map, 0) for g in np.flatnonzero(instance)]
        intersections = np.zeros((len(predictions), len(truths), classes), np.int64)
        truth_area = np.zeros((len(truths), classes), np.int64)
        for g, parts in enumerate(truths):
            truth_area[g] = np.bincount(parts[parts > 0], minlength=classes)
            same = (parts > 0) & (owner >= 0) & (codes == parts)
            if same.any():
                joint = np.bincount(owner[same] * classes + parts[same], minlength=len(predictions) * classes)
                intersections[:, g] = joint.reshape(len(predictions), classes)
        union = (predicted_area[:, None, :] + truth_area[None, :, :] - intersections)[..., 1:]   # parts only
        present = union > 0
        part_iou = np.where(present, intersections[..., 1:] / np.maximum(union, 1), 0.0)      # [D, G, C - 1]
        person_iou = part_iou.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
        self.images.append({"scores": scores, "person_iou": person_iou, "part_iou": part_iou,
                            "truth_parts": truth_area[:, 1:] > 0, "predicted_parts": predicted_area[:, 1:] > 0})

    def miou(self):
        """Mean IoU over the classes present in the ground truth or the predictions."""
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(axis=0) + self.confusion.sum(axis=1) - tp
        present = union > 0
        return float(np.mean(tp[present] / union[present])) if present.any() else float("nan")

    def _person_ap(self, threshold):
        hits, scores, positives, correct_parts, total_parts = [], [], 0, 0, 0
        for image in self.images:
            positives += image["person_iou"].shape[1]
            total_parts += int(image["truth_parts"].sum())
            tp, matched = _greedy_matches(image["person_iou"], image["scores"], threshold)
            hits.append(tp)
            scores.append(image["scores"])
            for d in np.flatnonzero(tp):
                g = matched[d]
                correct_parts += int(np.sum((image["part_iou"][d, g] >= 0.5) & image["truth_parts"][g]))
        ap = voc_average_precision(np.concatenate(hits or [np.zeros(0, bool)]),
                                   np.concatenate(scores or [np.zeros(0)]), positives)
        return ap, correct_parts / max(total_parts, 1)

    def _region_ap(self, threshold):
        per_class = []
        for c in range(1, self.num_classes):
            hits, scores, positives = [], [], 0
            for image in self.images:
                truth = np.flatnonzero(image["truth_parts"][:, c - 1])
                predicted = np.flatnonzero(image["predicted_parts"][:, c - 1])
                positives += len(truth)
                overlaps = image["part_iou"][np.ix_(predicted, truth, [c - 1])][..., 0]
                tp, _ = _greedy_matches(overlaps, image["scores"][predicted], threshold)
                hits.append(tp)
                scores.append(image["scores"][predicted])
            if positives:
                per_class.append(voc_average_precision(np.concatenate(hits), np.concatenate(scores), positives))
        return float(np.mean(per_class)) if per_class else float("nan")

    def results(self):
        """dict: mIoU, APp_50, APp_vol, PCP50, APr_50, APr_60, APr_70, APr_vol, images, instances."""
        person = {t: self._person_ap(t) for t in THRESHOLDS}
        region = {t: self._region_ap(t) for t in THRESHOLDS}
        return {
            "mIoU": self.miou(),
            "APp_50": person[0.5][0], "APp_vol": float(np.mean([person[t][0] for t in THRESHOLDS])),
            "PCP50": person[0.5][1],
            "APr_50": region[0.5], "APr_60": region[0.6], "APr_70": region[0.7],
            "APr_vol": float(np.mean([region[t] for t in THRESHOLDS])),
            "images": len(self.images), "instances": int(sum(i["person_iou"].shape[1] for i in self.images)),
        }
