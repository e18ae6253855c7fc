"""Tracking measured on clips with ground-truth identities (docs/video.md, scripts/evaluate_tracking.py).

A clip is a folder holding `person_keypoints.json` (COCO person keypoints whose images carry `frame`, 0-based,
and whose persons carry `track_id`: `check_ground_truth`), its frames under `images/` and the same frames as
`video.mp4` (data/synthetic_video.py writes such clips). A clip's detections are computed once per frame, either by a
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
from personlab_tf.data import coco_format, coco_problems, synthetic_video
from personlab_tf.evaluation import results
from personlab_tf.skeleton import Skeleton
from personlab_tf.task import Task
from personlab_tf.video import io, mot, pipeline
from personlab_tf.video.tracker import Tracker, TrackerOptions

CLIP_ANNOTATIONS = coco_format.ANNOTATIONS_FILE
CLIP_IMAGES = coco_format.IMAGES_DIR


@dataclasses.dataclass
class Clip:
    """A clip's ground truth and its per-frame detections.

    Attributes:
      name: the clip folder's name.
      ground_truth: the COCO dict of `person_keypoints.json` (`check_ground_truth`).
      detections: {frame index: numpy keys.Detection outputs of the frame, masks [D, H, W] bool included}; a
        frame that could not be read has none.
    """

    name: str
    ground_truth: Dict[str, Any]
    detections: Dict[int, Dict[str, np.ndarray]]
    # Each frame's segmentation results without track ids: the masks' RLEs do not depend on the tracker, so a
    # sweep encodes them once (`tracked_results`).
    segments: Dict[int, List[Dict[str, Any]]] = dataclasses.field(default_factory=dict, repr=False)


def check_ground_truth(ground_truth: Dict[str, Any], source: str) -> Dict[str, Any]:
    """`ground_truth` if it is a clip's (every image with `frame`, distinct; every person with `track_id`).

    Raises:
      ValueError: naming `source` and the first entry without them.
    """
    images = ground_truth.get("images") if isinstance(ground_truth, dict) else None
    if not isinstance(images, list) or not isinstance(ground_truth.get("annotations"), list):
        raise ValueError(f"{source}: not a COCO JSON with images and annotations")
    for image in images:
        if not isinstance(image.get("frame"), int):
            raise ValueError(f"{source}: image {image.get('id')} has no 'frame': not a video's ground truth")
    if len({image["frame"] for image in images}) != len(images):
        raise ValueError(f"{source}: two images with the same 'frame'")
    for annotation in ground_truth["annotations"]:
        if not annotation.get("iscrowd") and not isinstance(annotation.get("track_id"), int):
            raise ValueError(f"{source}: annotation {annotation.get('id')} has no 'track_id'")
    return ground_truth


def read_ground_truth(path: str) -> Dict[str, Any]:
    """The checked ground truth of a JSON file (`check_ground_truth`); ValueError / OSError naming it."""
    with open(path) as f:
        try:
            return check_ground_truth(json.load(f), path)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from None


def clip_dirs(root: str) -> List[str]:
    """`root` if it is a clip, else its sub-folders that are, sorted; ValueError when there is none."""
    if os.path.exists(os.path.join(root, CLIP_ANNOTATIONS)):
        return [root]
    found = sorted(os.path.join(root, name) for name in (os.listdir(root) if os.path.isdir(root) else [])
                   if os.path.exists(os.path.join(root, name, CLIP_ANNOTATIONS)))
    if not found:
        raise ValueError(f"{root}: no clip (a folder with {CLIP_ANNOTATIONS}) in it")
    return found


def _name(path: str) -> str:
    return os.path.basename(os.path.normpath(path))


def network_clip(path: str, detect: Callable[[np.ndarray], Dict[str, np.ndarray]]) -> Clip:
    """A clip's detections by `detect` (pipeline.saved_model_detector) on its decoded video."""
    ground_truth = read_ground_truth(os.path.join(path, CLIP_ANNOTATIONS))
    with io.VideoSource(os.path.join(path, synthetic_video.VIDEO_FILE)) as source:
        detections = {index: detect(frame) for index, frame in pipeline.background(source.frames())}
    return Clip(_name(path), ground_truth, detections)


def oracle_clip(path: str, task: Task, noise_seed: Optional[int] = None) -> Clip:
    """A clip's detections by `task.oracle_detections` on its ground truth (perfect maps with `noise_seed`
    None, else realistically degraded maps), with the task's instance masks; images the records skip have
    none."""
    ground_truth = read_ground_truth(os.path.join(path, CLIP_ANNOTATIONS))
    frame_of_image = {image["id"]: image["frame"] for image in ground_truth["images"]}
    detections = {}
    for image in task.evaluation_images(os.path.join(path, CLIP_ANNOTATIONS), os.path.join(path, CLIP_IMAGES),
                                        None, coco_problems.ProblemCounter()):
        found = task.oracle_detections(image.record, noise_seed)
        found[keys.Detection.MASKS] = task.instance_masks(found)
        detections[frame_of_image[image.image_id]] = found
    return Clip(_name(path), ground_truth, detections)


def results_on_ground_truth(results: Sequence[Dict[str, Any]], ground_truth: Dict[str, Any]) -> List[Dict[str, Any]]:
    """`results` (with `frame`) with the image ids of the ground truth's frames (its images' `frame`); results
    of frames the ground truth does not have are dropped."""
    image_of_frame = {image["frame"]: image["id"] for image in ground_truth["images"]}
    return [dict(result, image_id=image_of_frame[result["frame"]]) for result in results
            if result["frame"] in image_of_frame]


def frames_until(ground_truth: Dict[str, Any], last_frame: int) -> Dict[str, Any]:
    """The ground truth of the frames up to `last_frame` (a run stopped early by --max_frames)."""
    images = [image for image in ground_truth["images"] if image["frame"] <= last_frame]
    kept = {image["id"] for image in images}
    return dict(ground_truth, images=images,
                annotations=[a for a in ground_truth["annotations"] if a["image_id"] in kept])


def tracked_results(clip: Clip, skeleton: Skeleton, options: TrackerOptions) -> List[Dict[str, Any]]:
    """The clip's segmentation results with a fresh tracker's `track_id`, on the ground truth's image ids."""
    tracker = Tracker(skeleton, options)
    found = []
    for index in sorted(clip.detections):
        detections = clip.detections[index]
        track_ids = tracker.update(detections)
        if index not in clip.segments:
            clip.segments[index] = results.segmentation_results(index + 1, detections, skeleton.category_id)
        found += [dict(result, frame=index, track_id=int(track_id))
                  for result, track_id in zip(clip.segments[index], track_ids)]
    return results_on_ground_truth(found, clip.ground_truth)


def evaluate(clips: Sequence[Clip], skeleton: Skeleton, options: TrackerOptions) -> Dict[str, Any]:
    """{"overall": metrics of all clips together, "clips": {name: metrics}} (mot.tracking_metrics_many)."""
    return mot.tracking_metrics_many({clip.name: (clip.ground_truth, tracked_results(clip, skeleton, options))
                                      for clip in clips})
