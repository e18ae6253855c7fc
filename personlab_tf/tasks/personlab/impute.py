"""Imputing the keypoints of persons annotated without keypoints (paper §3.3; scripts/impute_keypoints.py).

COCO leaves the keypoints of small persons unlabelled, but PersonLab's long-range offsets need them to
learn those persons' masks. Like the paper (which ran a top-down single-person estimator on crops around
the boxes), each such person is cropped around its annotated box, upscaled to the model's input size,
and run through a trained model (`detect`, any callable; the SavedModel's `serving_image` signature in
the script, a fake in the tests). Of the persons detected in the crop, the one whose mask best overlaps
the annotated mask is taken:

    chosen = argmax_j IoU(mask_j, annotated mask) over the crop's pixels, kept if IoU >= min_mask_iou

(ties: the higher instance score). Its keypoints, mapped back to the image, become the imputation; a
keypoint is labelled (v = 2) where its score s_{j,k} >= min_keypoint_score and it lies inside the image,
else v = 0 (its x, y are still the model's estimate). Persons are skipped, with a reason, when:

| reason | when |
| --- | --- |
| empty_mask | the annotated mask has no pixel in the crop |
| no_detection | the model finds nobody in the crop |
| poor_fit | no detection's mask reaches min_mask_iou with the annotated mask |
| no_confident_keypoint | the chosen detection has no keypoint labelled by the rule above |
| image_unreadable | the image file is missing or does not decode (warned and counted by data.coco_records) |

Coordinates: pixel centres at integer coordinates, (x, y) order, in original-image pixels unless said.
"""

import collections
import dataclasses
import io
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from personlab_tf import keys
from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco, coco_problems, coco_records
from personlab_tf.inference import geometry, serving
from personlab_tf.tasks.personlab import crops
from personlab_tf.tasks.personlab.nms import object_keypoint_similarity
from personlab_tf.constants import AREA_RANGES, MIN_AREA

EMPTY_MASK = "empty_mask"
NO_DETECTION = "no_detection"
POOR_FIT = "poor_fit"
NO_CONFIDENT_KEYPOINT = "no_confident_keypoint"
IMAGE_UNREADABLE = "image_unreadable"

LABELLED = 2    # v of an imputed keypoint that passes the rule
UNLABELLED = 0

# A detector: one [H, W, 3] uint8 frame -> its detections (keys.Detection, numpy, that frame's pixels).
Detect = Callable[[np.ndarray], Dict[str, np.ndarray]]

# Keys of an imputed entry (the format create_tfrecords.py --imputed_keypoints reads; "scores" is extra).
ID = "id"
KEYPOINTS = "keypoints"
SCORES = "scores"


@dataclasses.dataclass(frozen=True)
class Options:
    """Settings of the imputation (docs/data.md).

    Attributes:
      input_size: larger side S the crop is resized to (the export's --max_side).
      margin: the crop grows the box by margin * width left and right, margin * height above and below.
      min_area: persons with a COCO area below it are not considered.
      min_mask_iou: smallest mask IoU of the chosen detection with the annotated mask.
      min_keypoint_score: smallest keypoint score s_{j,k} of a labelled (v = 2) imputed keypoint.
    """

    input_size: int = geometry.MAX_SIDE
    margin: float = 0.5
    min_area: float = 0.0
    min_mask_iou: float = 0.5
    min_keypoint_score: float = 0.5


class Skipped(Exception):
    """A person that gets no imputation: `reason` is one of the reasons of the module docstring."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def mask_iou(masks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """IoU = |M_j ∩ A| / |M_j ∪ A| of each mask [D, h, w] with one mask A [h, w]; 0 where the union is empty.

    Returns:
      [D] float64.
    """
    masks, mask = np.asarray(masks, bool), np.asarray(mask, bool)
    intersection = np.sum(masks & mask, axis=(1, 2))
    union = np.sum(masks | mask, axis=(1, 2))
    return np.where(union > 0, intersection / np.maximum(union, 1), 0.0)


def best_fit(masks: np.ndarray, mask: np.ndarray, min_iou: float) -> int:
    """The detection whose mask best overlaps the annotated mask (module docstring).

    Args:
      masks: [D >= 1, h, w] detection masks on the crop's pixels, by descending instance score.
      mask: [h, w] the annotated mask on the same pixels; min_iou: the least IoU accepted.

    Returns:
      index of the chosen detection (the first of equal IoUs).

    Raises:
      Skipped(POOR_FIT): the best IoU is below `min_iou`.
    """
    ious = mask_iou(masks, mask)
    best = int(np.argmax(ious))
    if ious[best] < min_iou:
        raise Skipped(POOR_FIT, f"best mask IoU {ious[best]:.2f} of {len(ious)} detections < {min_iou}")
    return best


def imputed_visibility(points: np.ndarray, scores: np.ndarray, image_size: Tuple[int, int],
                       min_score: float) -> np.ndarray:
    """v of imputed keypoints: LABELLED (2) where score >= min_score and the point is inside the image
    (coco.points_inside_image), else UNLABELLED (0).

    Args:
      points: [K, 2] (x, y) original-image pixels; scores: [K]; image_size: (height, width).

    Returns:
      [K] int64.
    """
    confident = (np.asarray(scores) >= min_score) & coco.points_inside_image(np.asarray(points), *image_size)
    return np.where(confident, LABELLED, UNLABELLED)


def impute_person(image: np.ndarray, mask: np.ndarray, bbox: np.ndarray, detect: Detect,
                  options: Options) -> Tuple[np.ndarray, np.ndarray]:
    """Imputed keypoints of one person.

    Args:
      image: [H, W, 3] uint8 RGB; mask: [H, W] its annotated mask; bbox: its COCO box.
      detect: callable, frame [h', w', 3] uint8 -> dict of numpy detections (keys.Detection.KEYPOINTS
        [D, K, 2] in frame pixels, KEYPOINT_SCORES [D, K], NUM_DETECTIONS, INSTANCE_MASKS [D, h', w']).
      options: `Options`.

    Returns:
      (keypoints [K, 3] (x, y, v), scores [K]).

    Raises:
      Skipped: the person gets no imputation (module docstring).
    """
    x0, y0, x1, y1 = crops.crop_box(bbox, options.margin, image.shape[:2])
    target = np.asarray(mask[y0:y1, x0:x1], bool)
    if not target.any():
        raise Skipped(EMPTY_MASK, f"no pixel of the annotated mask in the crop [{x0}:{x1}, {y0}:{y1}]")
    frame, scale = crops.upscale_crop(image[y0:y1, x0:x1], options.input_size)
    detections = detect(frame)
    count = int(detections[keys.Detection.NUM_DETECTIONS])
    if count == 0:
        raise Skipped(NO_DETECTION, "the model found no person in the crop")
    masks = crops.masks_at_crop_pixels(detections[keys.Detection.MASKS][:count], scale, target.shape)
    chosen = best_fit(masks, target, options.min_mask_iou)
    points = crops.crop_to_original(detections[keys.Detection.KEYPOINTS][chosen], scale, (x0, y0))
    scores = np.asarray(detections[keys.Detection.KEYPOINT_SCORES][chosen], np.float64)
    visibility = imputed_visibility(points, scores, image.shape[:2], options.min_keypoint_score)
    if not visibility.any():
        raise Skipped(NO_CONFIDENT_KEYPOINT, f"no keypoint of the chosen detection scores >= "
                                             f"{options.min_keypoint_score} inside the image")
    return np.concatenate([points, visibility[:, np.newaxis]], axis=1), scores


def entry(annotation_id: int, keypoints: np.ndarray, scores: np.ndarray) -> dict:
    """The JSON entry {"id", "keypoints": [x, y, v] * K, "scores": [K]}; x, y rounded to 0.01 px."""
    flat = [value for x, y, v in keypoints for value in (round(float(x), 2), round(float(y), 2), int(v))]
    return {ID: int(annotation_id), KEYPOINTS: flat, SCORES: [round(float(s), 4) for s in scores]}


def candidates(dataset: coco.CocoPersons, min_area: float) -> coco.CocoPersons:
    """The persons to impute: non-crowd, no labelled keypoint, COCO area >= min_area.

    Args:
      dataset: `coco.CocoPersons` (data.coco.load_dataset).

    Returns:
      `coco.CocoPersons` with only those persons and only the images that have some.
    """
    persons = {info.image_id: [p for p in dataset.persons[info.image_id]
                               if not p.is_crowd and not p.has_labelled_keypoint() and p.area >= min_area]
               for info in dataset.images}
    return coco.CocoPersons([info for info in dataset.images if persons[info.image_id]],
                            {image_id: chosen for image_id, chosen in persons.items() if chosen}, dataset.skeleton)


def decode_image(encoded: bytes) -> np.ndarray:
    """[H, W, 3] uint8 RGB of verified image file bytes (grey images are converted)."""
    with Image.open(io.BytesIO(encoded)) as picture:
        return np.asarray(picture.convert("RGB"))


def impute_dataset(dataset: coco.CocoPersons, images_dir: str, detect: Detect, options: Options,
                   problems: coco_problems.ProblemCounter) -> Tuple[List[dict], Dict[str, Any]]:
    """Imputes every candidate person of a dataset.

    Args:
      dataset: `coco.CocoPersons` (data.coco.load_dataset); images_dir: directory of its images.
      detect: the detector callable of `impute_person`; options: `Options`.
      problems: `coco_problems.ProblemCounter`; unreadable images are warned about (naming the file) and counted.

    Returns:
      (entries: list of `entry` dicts in JSON order, summary: dict with "persons_considered", "imputed",
      "skipped" {reason: count}, "images_missing").

    Raises:
      coco.AnnotationError: `images_dir` is not a directory.
    """
    selected = candidates(dataset, options.min_area)
    considered = sum(len(persons) for persons in selected.persons.values())
    entries, skipped, seen = [], collections.Counter(), 0
    for record in coco_records.iter_image_records(selected, images_dir, problems):
        image = decode_image(record.encoded)
        for index, annotation_id in enumerate(record.annotation_ids):
            seen += 1
            try:
                keypoints, scores = impute_person(image, record.masks[index], record.bboxes[index], detect, options)
            except Skipped as skip:
                skipped[skip.reason] += 1
                logging.info("annotation id %d (image %s): not imputed [%s] %s", annotation_id, record.file_name,
                             skip.reason, skip)
                continue
            entries.append(entry(annotation_id, keypoints, scores))
    if considered > seen:
        skipped[IMAGE_UNREADABLE] = considered - seen
    return entries, {"persons_considered": considered, "imputed": len(entries),
                     "skipped": dict(sorted(skipped.items())), "images_missing": problems.images_skipped}


def saved_model_detector(export_dir: str, skeleton: skeleton_lib.Skeleton) -> Detect:
    """The `detect` callable of a SavedModel (scripts/export_saved_model.py): its `serving_image` signature
    on one frame, outputs as numpy arrays of that frame.

    Raises:
      OSError: no SavedModel at `export_dir`; ValueError: it has no `serving_image` signature, or its
        skeleton is not `skeleton` (the annotations').
    """
    loaded = tf.saved_model.load(export_dir)
    skeleton_lib.check_same(skeleton, skeleton_lib.of_task_config(serving.read_metadata(loaded)["config"]),
                            "the annotations", f"SavedModel {export_dir}")
    signatures = loaded.signatures
    if serving.SERVING_IMAGE not in signatures:
        raise ValueError(f"SavedModel {export_dir} has no '{serving.SERVING_IMAGE}' signature")
    serve = signatures[serving.SERVING_IMAGE]

    def detect(frame):
        outputs = serve(**{serving.INPUT_NAME: tf.constant(frame[np.newaxis])})
        return {key: value[0].numpy() for key, value in outputs.items()}

    return detect


def load_hidden_keypoints(path: str, num_keypoints: int) -> Dict[int, np.ndarray]:
    """The true keypoints of a synthetic dataset's `hidden_keypoints.json` (data/synthetic.py), K =
    `num_keypoints` per person.

    Returns:
      {annotation id: [K, 3] float64 (x, y, v)}.

    Raises:
      coco.AnnotationError: the file is unreadable, not JSON, or an entry is not {"id", "keypoints": [K * 3]}.
    """
    entries = coco.load_json(path, "hidden keypoints")
    if not isinstance(entries, list):
        raise coco.AnnotationError(f"hidden keypoints file {path} is not a JSON list")
    truth = {}
    for index, item in enumerate(entries):
        try:
            truth[int(item[ID])] = np.array(item[KEYPOINTS], np.float64).reshape(num_keypoints, 3)
        except (TypeError, KeyError, ValueError):
            raise coco.AnnotationError(f"hidden keypoints file {path}: entry {index} is not "
                                       f"{{\"id\": int, \"keypoints\": [{3 * num_keypoints} numbers]}}") \
                from None
    return truth


def keypoint_similarity(keypoints: np.ndarray, truth: np.ndarray, area: float,
                        kappas: Sequence[float]) -> Optional[float]:
    """COCO OKS of imputed keypoints against the truth, over the truth's labelled keypoints (v > 0), with
    the truth's area s^2 (at least constants.MIN_AREA; decode.nms.object_keypoint_similarity, kappa_k =
    2 sigma_k); None when the truth has no labelled keypoint.

    Args:
      keypoints: [K, 3] imputed (x, y, v) (every x, y is used, as COCOeval does); truth: [K, 3]; area: s^2;
      kappas: [K] the skeleton's OKS constants (Skeleton.kappas).
    """
    labelled = truth[:, 2] > 0
    if not labelled.any():
        return None
    oks = object_keypoint_similarity(np.float32(keypoints[labelled, :2]), np.float32(truth[labelled, :2]),
                                     np.float32(max(area, MIN_AREA)), np.asarray(kappas)[labelled])
    return float(oks)


def size_of(area: float) -> str:
    """COCO's size label ("small", "medium", "large") of a person of area s^2 (constants.AREA_RANGES)."""
    return next(label for label, (low, high) in AREA_RANGES.items() if low <= area < high)


def imputation_quality(entries: List[dict], truth: Dict[int, np.ndarray], dataset: coco.CocoPersons,
                       min_area: float = 0.0) -> Dict[str, Dict[str, Optional[float]]]:
    """How well imputed entries match hidden true keypoints, overall and by COCO person size.

    Args:
      entries: `entry` dicts; truth: `load_hidden_keypoints`; dataset: the `coco.CocoPersons` (areas,
        skeleton); min_area: the `Options.min_area` the entries were made with (who was considered).

    Returns:
      {"all" | "small" | "medium" | "large": {"considered": persons that could be imputed (`candidates`),
      "imputed": entries, "coverage": imputed / considered, "scored": entries whose truth has labelled
      keypoints, "mean_oks": their mean OKS (`keypoint_similarity`), "keypoint_coverage": the share of those
      truths' labelled keypoints that the entries label (v = 2), "labelled_keypoint_oks": the mean per-keypoint
      OKS term of the labelled ones (how good the keypoints training sees are)}; None where nothing counts.
    """
    areas = {p.annotation_id: p.area for persons in candidates(dataset, min_area).persons.values() for p in persons}
    kappas = np.asarray(dataset.skeleton.kappas, np.float64)
    by_id = {item[ID]: np.array(item[KEYPOINTS], np.float64).reshape(dataset.skeleton.num_keypoints, 3)
             for item in entries}
    groups = {label: collections.defaultdict(list) for label in ("all",) + tuple(AREA_RANGES)}
    for annotation_id, area in areas.items():
        for label in ("all", size_of(area)):
            group = groups[label]
            group["considered"].append(annotation_id)
            keypoints, true = by_id.get(annotation_id), truth.get(annotation_id)
            if keypoints is None:
                continue
            group["imputed"].append(annotation_id)
            if true is None or not (true[:, 2] > 0).any():
                continue
            group["oks"].append(keypoint_similarity(keypoints, true, area, kappas))
            known = true[:, 2] > 0
            chosen = known & (keypoints[:, 2] > 0)
            group["true_keypoints"].append(int(known.sum()))
            group["labelled_keypoints"].append(int(chosen.sum()))
            squared = np.square(keypoints[chosen, :2] - true[chosen, :2]).sum(-1)
            group["labelled_terms"].extend(np.exp(-squared / (2.0 * max(area, MIN_AREA) * np.square(kappas[chosen]))))

    def mean(values):
        return round(float(np.mean(values)), 4) if len(values) else None

    return {label: {"considered": len(group["considered"]), "imputed": len(group["imputed"]),
                    "coverage": (round(len(group["imputed"]) / len(group["considered"]), 4)
                                 if group["considered"] else None),
                    "scored": len(group["oks"]), "mean_oks": mean(group["oks"]),
                    "keypoint_coverage": (round(sum(group["labelled_keypoints"]) / sum(group["true_keypoints"]), 4)
                                          if group["true_keypoints"] else None),
                    "labelled_keypoint_oks": mean(group["labelled_terms"])}
            for label, group in groups.items()}
