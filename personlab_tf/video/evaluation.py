"""Tracking measured on clips with ground-truth identities (docs/video.md, scripts/evaluate_tracking.py).

A clip is a folder holding `person_keypoints.json` (COCO person keypoints whose images carry `frame`, 0-based,
and whose persons carry `track_id`), its frames under `images/` and the same frames as `video.mp4`
(data/synthetic_video.py writes such clips). A clip's detections are computed once per frame, either by a
SavedModel on the decoded `video.mp4` (what `scripts/track_video.py` does to a user's video) or by a task's
oracle on the ground truth (`Task.oracle_detections`: perfect maps, or maps degraded as a trained network errs);
the tracker then runs on them under each configuration compared, so a sweep of tracker options costs no
inference. Scores: video/mot.py (py-motmetrics on mask IoU).
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from personlab_tf import keys
from personlab_tf.data import coco
from personlab_tf.skeleton import Skeleton
from personlab_tf.task import Task
from personlab_tf.video import io, mot, pipeline
from personlab_tf.video.tracker import Tracker, TrackerOptions

CLIP_ANNOTATIONS = "person_keypoints.json"
CLIP_IMAGES = "images"
CLIP_VIDEO = "video.mp4"


@dataclasses.dataclass
class Clip:
    """A clip's ground truth and its per-frame detections.

    Attributes:
      name: the clip folder's name.
      ground_truth: the COCO dict of `person_keypoints.json`.
      detections: numpy keys.Detection outputs per frame, in frame order, masks [D, H, W] bool included.
    """

    name: str
    ground_truth: Dict[str, Any]
    detections: List[Dict[str, np.ndarray]]


def clip_dirs(root: str) -> List[str]:
    """`root` if it is a clip, else its sub-folders that are, sorted; ValueError when there is none."""
    if os.path.exists(os.path.join(root, CLIP_ANNOTATIONS)):
        return [root]
    found = sorted(os.path.join(root, name) for name in (os.listdir(root) if os.path.isdir(root) else [])
                   if os.path.exists(os.path.join(root, name, CLIP_ANNOTATIONS)))
    if not found:
        raise ValueError(f"{root}: no clip (a folder with {CLIP_ANNOTATIONS}) in it")
    return found


def _ground_truth(path: str) -> Dict[str, Any]:
    with open(os.path.join(path, CLIP_ANNOTATIONS)) as f:
        return json.load(f)


def network_clip(path: str, detect: Callable[[np.ndarray], Dict[str, np.ndarray]]) -> Clip:
    """A clip's detections by `detect` (pipeline.saved_model_detector) on its decoded `video.mp4`."""
    with io.VideoSource(os.path.join(path, CLIP_VIDEO)) as source:
        detections = [detect(frame) for frame in pipeline.background(source.frames())]
    return Clip(os.path.basename(os.path.normpath(path)), _ground_truth(path), detections)


def oracle_clip(path: str, task: Task, noise_seed: Optional[int] = None) -> Clip:
    """A clip's detections by `task.oracle_detections` on its ground truth (perfect maps with `noise_seed`
    None, else realistically degraded maps), with the task's instance masks; frames in `frame` order."""
    ground_truth = _ground_truth(path)
    problems = coco.ProblemCounter()
    by_id = {}
    for image in task.evaluation_images(os.path.join(path, CLIP_ANNOTATIONS), os.path.join(path, CLIP_IMAGES),
                                        None, problems):
        detections = task.oracle_detections(image.record, noise_seed)
        detections[keys.Detection.MASKS] = task.instance_masks(detections)
        by_id[image.image_id] = detections
    frames = sorted(ground_truth["images"], key=lambda image: image["frame"])
    missing = [image["file_name"] for image in frames if image["id"] not in by_id]
    if missing:
        raise ValueError(f"{path}: frames without a record ({problems.warnings}): {missing[:3]}")
    return Clip(os.path.basename(os.path.normpath(path)), ground_truth, [by_id[image["id"]] for image in frames])


def results_on_ground_truth(results: Sequence[Dict[str, Any]], ground_truth: Dict[str, Any]) -> List[Dict[str, Any]]:
    """`results` (with `frame`) with the image ids of the ground truth's frames (its images' `frame`)."""
    image_of_frame = {image["frame"]: image["id"] for image in ground_truth["images"]}
    return [dict(result, image_id=image_of_frame[result["frame"]]) for result in results
            if result["frame"] in image_of_frame]


def tracked_results(clip: Clip, skeleton: Skeleton, options: TrackerOptions) -> List[Dict[str, Any]]:
    """The clip's segmentation results with a fresh tracker's `track_id`, on the ground truth's image ids."""
    tracker = Tracker(skeleton, options)
    found = []
    for index, detections in enumerate(clip.detections):
        tracked = pipeline.TrackedFrame(index, np.zeros((0, 0, 3), np.uint8), detections, tracker.update(detections))
        found += pipeline.frame_results(tracked, skeleton)["segmentation"]
    return results_on_ground_truth(found, clip.ground_truth)


def evaluate(clips: Sequence[Clip], skeleton: Skeleton, options: TrackerOptions) -> Dict[str, Any]:
    """{"overall": metrics of all clips together, "clips": {name: metrics}} (mot.tracking_metrics_many)."""
    return mot.tracking_metrics_many({clip.name: (clip.ground_truth, tracked_results(clip, skeleton, options))
                                      for clip in clips})
