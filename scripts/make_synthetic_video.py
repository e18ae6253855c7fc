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

from absl import app, flags

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import synthetic_body, synthetic_video

_OUTPUT = flags.DEFINE_string("output", None, "Output folder; clip i goes to OUTPUT/clip_<i:03d>.", required=True)
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 1, "Number of clips.", lower_bound=0)
_NUM_FRAMES = flags.DEFINE_integer("num_frames", synthetic_video.DEFAULT_NUM_FRAMES, "Frames per clip.")
_FPS = flags.DEFINE_float("fps", synthetic_video.DEFAULT_FPS, "Frames per second (walking speeds are per second).")
_HEIGHT = flags.DEFINE_integer("height", synthetic_video.DEFAULT_SIZE[0], "Frame height, even.")
_WIDTH = flags.DEFINE_integer("width", synthetic_video.DEFAULT_SIZE[1], "Frame width, even.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed; clip i depends only on (seed, i).")
_MIN_PERSONS = flags.DEFINE_integer("min_persons", synthetic_video.DEFAULT_PERSONS[0], "Fewest figures of a clip.")
_MAX_PERSONS = flags.DEFINE_integer("max_persons", synthetic_video.DEFAULT_PERSONS[1], "Most figures of a clip.")
_SKELETON = flags.DEFINE_string(
    "skeleton", skeleton_lib.COCO17.name,
    f"Keypoints annotated: a built-in skeleton ({', '.join(sorted(skeleton_lib.BUILTIN))}) or the path of a "
    "COCO-format JSON declaring one (categories[].keypoints and skeleton).")
SUMMED = ("frames", "figures", "tracks", "annotations", "frames_with_occlusion", "hidden", "entries", "exits")


def main(argv):
    """Generates the clips and prints the summary; returns the exit code."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    size = (_HEIGHT.value, _WIDTH.value)
    try:
        synthetic_video.check_options(_NUM_FRAMES.value, size, _FPS.value, _MIN_PERSONS.value, _MAX_PERSONS.value)
        skeleton = skeleton_lib.resolve(_SKELETON.value)
        synthetic_body.check_skeleton(skeleton)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"skeleton: {skeleton.describe()}: {', '.join(skeleton.keypoints)}", flush=True)
    start = time.perf_counter()
    summary = {"clips": _NUM_CLIPS.value, **{name: 0 for name in SUMMED}}
    for index in range(_NUM_CLIPS.value):
        name = synthetic_video.clip_folder(index)
        clip = synthetic_video.generate_clip(os.path.join(_OUTPUT.value, name), _SEED.value, index,
                                             _NUM_FRAMES.value, size, _FPS.value, skeleton, _MIN_PERSONS.value,
                                             _MAX_PERSONS.value)
        print(f"{name}: {json.dumps(clip)}", file=sys.stderr, flush=True)
        for key in SUMMED:
            summary[key] += clip[key]
    summary["skeleton"] = skeleton.name
    summary["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    app.run(main)
