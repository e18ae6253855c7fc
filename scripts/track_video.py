"""Poses, person masks and identities across the frames of a video, with an exported SavedModel of either task.

    python scripts/track_video.py --saved_model exports/r101 --video street.mp4 --output_dir out/ \
        [--gin_bindings "TrackerOptions.max_missed = 5"] [--annotations clip/person_keypoints.json]

`--video` is a video file FFmpeg decodes (.mp4, .webm, .avi, .mov, .mkv, ...; PyAV's wheel carries FFmpeg) or a
folder of frames (.jpg/.jpeg/.png, sorted by name, at `--fps`). Each frame goes through the SavedModel's
`serving_image` signature and the tracker (personlab_tf/video/tracker.py, options by gin: `--gin_file`,
`--gin_bindings`); reading, inference and writing overlap (video/pipeline.py). Written to `--output_dir`
(docs/video.md):
- `keypoint_results.json`, `segmentation_results.json`: COCO results of every frame, image id = frame + 1,
  each with `frame` (0-based) and `track_id` (-1: a detection the tracker ignored);
- `frames.json`: per frame processed, its index, size, detections and track ids;
- `<video name>_tracked.mp4`: the video with each identity's mask and skeleton in its own colour and its id
  drawn (H.264; `--nooverlay` skips it);
- with `--annotations` (a COCO JSON whose images carry `frame` and whose persons carry `track_id`, e.g. a
  synthetic clip's): `tracking_metrics.json`, MOTA, IDF1, identity switches (py-motmetrics, mask IoU >= 0.5).
A progress bar on stderr shows frames/s and the time left. Damaged frames are skipped and counted; the last
stdout line is a JSON summary with the frames read and unread. A missing file, a file that is not a video, an
unknown codec, or a SavedModel that does not load is a one-line error and exit code 1. Outputs never replace
the input: a results file that would is an error before anything is read; the overlay's name cannot be the input's.
"""

import json
import os
import sys
import time
from typing import Any, Dict, Optional

import tensorflow as tf
import tqdm
from absl import flags

from personlab_tf import cli, registry
from personlab_tf.inference import overlay
from personlab_tf.video import evaluation, io, mot, pipeline
from personlab_tf.video.tracker import Tracker

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel directory (scripts/export_saved_model.py).", required=True)
flags.DEFINE_string("video", None, "A video file or a folder of frame images.", required=True)
flags.DEFINE_string("output_dir", None, "Where the results, frames.json and the overlay video go.", required=True)
flags.DEFINE_float("fps", io.DEFAULT_FPS, "Frame rate of a folder of frames (a video file's own is used).")
flags.DEFINE_float("min_score", overlay.MIN_SCORE, "Overlay: detections scoring below are not drawn (the JSONs keep all).")
flags.DEFINE_bool("overlay", True, "Write the overlay video.")
flags.DEFINE_integer("max_frames", None, "Stop after this many frames (at least 1).")
flags.DEFINE_string("annotations", None, "Ground truth with `frame` and `track_id` (COCO JSON): tracking metrics.")
cli.define_gin_flags("Gin files with tracker options (TrackerOptions)")

RESULT_FILES = ("keypoint_results.json", "segmentation_results.json", "frames.json", "tracking_metrics.json")
OVERLAY_SUFFIX = "_tracked.mp4"


def output_paths(video: str, output_dir: str) -> dict:
    """{name: path} of the outputs; the overlay, `<video name without extension>_tracked.mp4`, cannot name the
    input (whose name would have to end in `_tracked.mp4` after itself).

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
    return paths


def run(source: io.VideoSource, loaded: Any, paths: Dict[str, str], ground_truth: Optional[Dict[str, Any]]
        ) -> Dict[str, Any]:
    """Tracks the source's frames, writes the outputs; returns the summary (with the tracking metrics against
    `ground_truth` when given).

    Raises:
      ValueError: no serving_image signature; io.VideoError: the overlay cannot be written;
      tf.errors.OpError: the SavedModel refuses a frame (e.g. above its pixel limit).
    """
    task = registry.task_of_saved_model(loaded)
    detect = pipeline.saved_model_detector(loaded, task)
    writer = io.VideoWriter(paths["overlay"], source.fps) if FLAGS.overlay else None
    recorder = pipeline.Recorder(task.skeleton, writer, FLAGS.min_score)
    expected = source.frames_expected
    total = expected if FLAGS.max_frames is None else min(expected or FLAGS.max_frames, FLAGS.max_frames)
    start = time.perf_counter()
    with tqdm.tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True) as bar:
        try:
            count = pipeline.run(source.frames(), detect, Tracker(task.skeleton), recorder,
                                 max_frames=FLAGS.max_frames, on_frame=bar.update)
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
    stopped = FLAGS.max_frames is not None and count >= FLAGS.max_frames
    summary = {"frames_expected": report.frames_expected,
               "frames_read": count if stopped else report.frames_read,
               "frames_unread": report.frames_damaged if stopped else report.frames_unread,
               "frames_processed": count, "detections": len(recorder.segmentation), "tracks": recorder.track_count(),
               "frames_per_s": round(count / wall, 2) if wall > 0 else None, "wall_s": round(wall, 1),
               "overlay": overlay_path, "output_dir": FLAGS.output_dir}
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


def main():
    if FLAGS.max_frames is not None and FLAGS.max_frames < 1:
        raise ValueError(f"--max_frames must be >= 1, got {FLAGS.max_frames}")
    cli.parse_gin()
    paths = output_paths(FLAGS.video, FLAGS.output_dir)
    ground_truth = evaluation.read_ground_truth(FLAGS.annotations) if FLAGS.annotations else None
    with io.VideoSource(FLAGS.video, FLAGS.fps) as source:   # io.VideoError is a ValueError
        loaded = tf.saved_model.load(FLAGS.saved_model)
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        summary = run(source, loaded, paths, ground_truth)
    if summary["frames_unread"]:
        print(f"warning: {summary['frames_unread']} of {summary['frames_expected']} frames of {FLAGS.video} could "
              "not be read", file=sys.stderr)
    return summary


if __name__ == "__main__":
    cli.run(main, also=(tf.errors.OpError,))
