"""Tracking the people of a video with an exported SavedModel (scripts/track_video.py, docs/video.md): the
frames through the `serving_image` signature and the tracker, reading, inference and writing overlapped
(pipeline.py); COCO results with `frame` and `track_id`, `frames.json`, an overlay video and, against a ground
truth with identities, the tracking metrics."""

import json
import os
import sys
import time
from typing import Any, Dict, Optional

import tqdm

from personlab_tf import registry
from personlab_tf.inference import overlay
from personlab_tf.video import evaluation, io, mot, pipeline
from personlab_tf.video.tracker import Tracker

RESULT_FILES = ("keypoint_results.json", "segmentation_results.json", "frames.json", "tracking_metrics.json")
OVERLAY_SUFFIX = "_tracked.mp4"


def output_paths(video: str, output_dir: str) -> Dict[str, str]:
    """{name: path} of the outputs (and "output_dir": `output_dir`); the overlay, `<video name without
    extension>_tracked.mp4`, cannot name the input (whose name would have to end in `_tracked.mp4` after
    itself).

    Raises:
      ValueError: a results file would replace the input.
    """
    source = os.path.realpath(video)
    paths = {name: os.path.join(output_dir, name) for name in RESULT_FILES}
    clashes = [path for path in paths.values() if os.path.realpath(path) == source]
    if clashes:
        raise ValueError(f"--output_dir {output_dir} would replace the input {clashes[0]}: choose another one")
    stem = os.path.splitext(os.path.basename(os.path.normpath(video)))[0]
    paths["overlay"] = os.path.join(output_dir, stem + OVERLAY_SUFFIX)
    paths["output_dir"] = output_dir
    return paths


def track(source: io.VideoSource, loaded: Any, paths: Dict[str, str], ground_truth: Optional[Dict[str, Any]],
          draw: bool = True, min_score: float = overlay.MIN_SCORE, max_frames: Optional[int] = None) -> Dict[str, Any]:
    """Tracks the source's frames with the loaded SavedModel, writes the outputs at `paths` (`output_paths`; the
    overlay video when `draw`, detections scoring below `min_score` not drawn), at most `max_frames` frames;
    returns the summary (with the tracking metrics against `ground_truth` when given).

    Raises:
      ValueError: no serving_image signature; io.VideoError: the overlay cannot be written;
      tf.errors.OpError: the SavedModel refuses a frame (e.g. above its pixel limit).
    """
    task = registry.task_of_saved_model(loaded)
    detect = pipeline.saved_model_detector(loaded, task)
    writer = io.VideoWriter(paths["overlay"], source.fps) if draw else None
    recorder = pipeline.Recorder(task.skeleton, writer, min_score)
    expected = source.frames_expected
    total = expected if max_frames is None else min(expected or max_frames, max_frames)
    start = time.perf_counter()
    with tqdm.tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True) as bar:
        try:
            count = pipeline.run(source.frames(), detect, Tracker(task.skeleton), recorder,
                                 max_frames=max_frames, on_frame=bar.update)
        finally:
            if writer is not None:
                writer.close()
    wall = time.perf_counter() - start
    for name, content in (("keypoint_results.json", recorder.keypoints),
                          ("segmentation_results.json", recorder.segmentation), ("frames.json", recorder.frames)):
        with open(paths[name], "w") as f:
            json.dump(content, f)
    overlay_path = paths["overlay"] if writer is not None and writer.frames_written else None
    if writer is not None and overlay_path is None and os.path.exists(paths["overlay"]):
        os.remove(paths["overlay"])   # no frame: no video
    report = source.report()
    stopped = max_frames is not None and count >= max_frames
    summary = {"frames_expected": report.frames_expected,
               "frames_read": count if stopped else report.frames_read,
               "frames_unread": report.frames_damaged if stopped else report.frames_unread,
               "frames_processed": count, "detections": len(recorder.segmentation), "tracks": recorder.track_count(),
               "frames_per_s": round(count / wall, 2) if wall > 0 else None, "wall_s": round(wall, 1),
               "overlay": overlay_path, "output_dir": paths["output_dir"]}
    if report.problems:
        summary["problems"] = report.problems
    if ground_truth is not None:
        if stopped:
            ground_truth = evaluation.frames_until(ground_truth, recorder.frames[-1]["frame"])
        results = evaluation.results_on_ground_truth(recorder.segmentation, ground_truth)
        metrics = mot.tracking_metrics(ground_truth, results)
        with open(paths["tracking_metrics.json"], "w") as f:
            json.dump(metrics, f)
        summary.update({name: metrics[name] for name in ("mota", "idf1", "num_switches")})
    return summary
