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

import os
import sys

import tensorflow as tf
from absl import flags

from personlab_tf import cli
from personlab_tf.inference import overlay
from personlab_tf.video import evaluation, io, track

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel directory (scripts/export_saved_model.py).", required=True)
flags.DEFINE_string("video", None, "A video file or a folder of frame images.", required=True)
flags.DEFINE_string("output_dir", None, "Where the results, frames.json and the overlay video go.", required=True)
flags.DEFINE_float("fps", io.DEFAULT_FPS, "Frame rate of a folder of frames (a video file's own is used).")
flags.DEFINE_float("min_score", overlay.MIN_SCORE, "Overlay: detections scoring below are not drawn (the JSONs keep all).")
flags.DEFINE_bool("overlay", True, "Write the overlay video.")
flags.DEFINE_integer("max_frames", None, "Stop after this many frames (at least 1).")
flags.DEFINE_string("annotations", None, "Ground truth with `frame` and `track_id` (COCO JSON): tracking metrics.")
cli.define_gin_flags("Gin files with tracker options (TrackerOptions)", "TrackerOptions.max_missed = 5")


def main():
    if FLAGS.max_frames is not None and FLAGS.max_frames < 1:
        raise ValueError(f"--max_frames must be >= 1, got {FLAGS.max_frames}")
    cli.parse_gin()
    paths = track.output_paths(FLAGS.video, FLAGS.output_dir)
    ground_truth = evaluation.read_ground_truth(FLAGS.annotations) if FLAGS.annotations else None
    with io.VideoSource(FLAGS.video, FLAGS.fps) as source:   # io.VideoError is a ValueError
        loaded = tf.saved_model.load(FLAGS.saved_model)
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        summary = track.track(source, loaded, paths, ground_truth, FLAGS.overlay, FLAGS.min_score, FLAGS.max_frames)
    if summary["frames_unread"]:
        print(f"warning: {summary['frames_unread']} of {summary['frames_expected']} frames of {FLAGS.video} could "
              "not be read", file=sys.stderr)
    return summary


if __name__ == "__main__":
    cli.run(main, also=(tf.errors.OpError,))
