"""Writes synthetic video clips of walking people with ground-truth identities (for measuring a tracker).

  python scripts/make_synthetic_video.py --output DIR [--num_clips 1 --num_frames 40 --fps 10 --height 360 \
      --width 480 --seed 0 --min_persons 2 --max_persons 6] [--skeleton coco17|crowdpose|mhp_v2|FILE.json]

Writes one clip folder DIR/clip_<index:03d>/ per clip (index 0..num_clips-1, the clip's video_id): its frames
images/<id:012d>.jpg, part_labels/<id:012d>.png, person_keypoints.json (COCO; images with `frame` and
`video_id`, persons with `track_id`) and video.mp4 (see personlab_tf/data/synthetic_video.py). Clip i depends
only on (--seed, i) and the frame options, frame f of it not on --num_frames. --height and --width must be
even. `--skeleton`: as scripts/make_synthetic_coco.py, a built-in skeleton's name (default coco17) or a
COCO-format JSON declaring one, whose keypoints must be points of the synthetic figures. Stdout names the
skeleton used; one line per clip goes to stderr; a bad option prints one error line to stderr and exits with
1; the last line of stdout is the summary as one-line JSON: clips, frames, figures, tracks, annotations,
frames_with_occlusion, hidden, entries, exits (summed over the clips), skeleton, seconds.
"""

import json
import os
import sys
import time

from absl import flags

from personlab_tf import cli, skeleton as skeleton_lib
from personlab_tf.data import synthetic_body, synthetic_video

FLAGS = flags.FLAGS
flags.DEFINE_string("output", None, "Output folder; clip i goes to OUTPUT/clip_<i:03d>.", required=True)
flags.DEFINE_integer("num_clips", 1, "Number of clips.", lower_bound=0)
flags.DEFINE_integer("num_frames", synthetic_video.DEFAULT_NUM_FRAMES, "Frames per clip.")
flags.DEFINE_float("fps", synthetic_video.DEFAULT_FPS, "Frames per second (walking speeds are per second).")
flags.DEFINE_integer("height", synthetic_video.DEFAULT_SIZE[0], "Frame height, even.")
flags.DEFINE_integer("width", synthetic_video.DEFAULT_SIZE[1], "Frame width, even.")
flags.DEFINE_integer("seed", 0, "Random seed; clip i depends only on (seed, i).")
flags.DEFINE_integer("min_persons", synthetic_video.DEFAULT_PERSONS[0], "Fewest figures of a clip.")
flags.DEFINE_integer("max_persons", synthetic_video.DEFAULT_PERSONS[1], "Most figures of a clip.")
flags.DEFINE_string(
    "skeleton", skeleton_lib.COCO17.name,
    f"Keypoints annotated: a built-in skeleton ({', '.join(sorted(skeleton_lib.BUILTIN))}) or the path of a "
    "COCO-format JSON declaring one (categories[].keypoints and skeleton).")
SUMMED = ("frames", "figures", "tracks", "annotations", "frames_with_occlusion", "hidden", "entries", "exits")


def main():
    """Generates the clips; returns the summary."""
    size = (FLAGS.height, FLAGS.width)
    synthetic_video.check_options(FLAGS.num_frames, size, FLAGS.fps, FLAGS.min_persons, FLAGS.max_persons)
    skeleton = skeleton_lib.resolve(FLAGS.skeleton)
    synthetic_body.check_skeleton(skeleton)
    print(f"skeleton: {skeleton.describe()}: {', '.join(skeleton.keypoints)}", flush=True)
    start = time.perf_counter()
    summary = {"clips": FLAGS.num_clips, **{name: 0 for name in SUMMED}}
    for index in range(FLAGS.num_clips):
        name = synthetic_video.clip_folder(index)
        clip = synthetic_video.generate_clip(os.path.join(FLAGS.output, name), FLAGS.seed, index,
                                             FLAGS.num_frames, size, FLAGS.fps, skeleton, FLAGS.min_persons,
                                             FLAGS.max_persons)
        print(f"{name}: {json.dumps(clip)}", file=sys.stderr, flush=True)
        for key in SUMMED:
            summary[key] += clip[key]
    summary["skeleton"] = skeleton.name
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


if __name__ == "__main__":
    cli.run(main)
