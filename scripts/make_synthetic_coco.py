"""Writes the procedural synthetic-people dataset in COCO person-keypoint format.

  python scripts/make_synthetic_coco.py --output DIR --num_images N --seed S [--min_side 256 --max_side 448] \
      [--scene coco|parts] [--skeleton coco17|crowdpose|mhp_v2|pascal_person_part|FILE.json]

Writes DIR/images/<id:012d>.jpg, DIR/person_keypoints.json, DIR/hidden_keypoints.json and the part label
maps DIR/part_labels/<id:012d>.png (see personlab_tf/data/synthetic.py). `--scene coco` (default): COCO-like
scenes of 0-30 persons, small ones without keypoints, crowd regions; `--scene parts`: MHP-like scenes of
1-8 larger persons, all with keypoints (the part-parsing dataset). `--skeleton`: the keypoints annotated, a
built-in skeleton's name (default coco17) or a COCO-format JSON whose categories[].keypoints / skeleton declare
one; its keypoint names must be points of the synthetic figures (synthetic_body.FIGURE_POINTS). The scene does not
depend on the skeleton. Stdout names the skeleton used; progress goes to stderr; the last line of stdout is
the summary as one-line JSON: images, persons, persons_with_keypoints, crowd_regions, images_without_people,
skeleton, seconds.
"""

import sys
import time

from absl import flags

from personlab_tf import cli, skeleton as skeleton_lib
from personlab_tf.data import synthetic, synthetic_body, synthetic_scene

FLAGS = flags.FLAGS
flags.DEFINE_string("output", None, "Output directory.", required=True)
flags.DEFINE_integer("num_images", 200, "Number of images.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Random seed; image i depends only on (seed, i).")
flags.DEFINE_integer("min_side", 256, "Smallest image height or width.", lower_bound=16)
flags.DEFINE_integer("max_side", 448, "Largest image height or width.", lower_bound=16)
flags.DEFINE_enum("scene", "coco", sorted(synthetic_scene.SCENES), "Scene statistics.")
flags.DEFINE_string(
    "skeleton", skeleton_lib.COCO17.name,
    f"Keypoints annotated: a built-in skeleton ({', '.join(sorted(skeleton_lib.BUILTIN))}) or the path of a "
    "COCO-format JSON declaring one (categories[].keypoints and skeleton).")
_PROGRESS_STEPS = 10  # progress lines per run


def _skeleton(value):
    """The skeleton `--skeleton` names (a built-in one, or a COCO JSON's); ValueError naming it when unusable."""
    try:
        found = skeleton_lib.resolve(value)
        synthetic_body.check_skeleton(found)
    except ValueError as error:
        raise ValueError(f"--skeleton {value}: {error}") from None
    return found


def main():
    """Generates the dataset; returns the summary."""
    if FLAGS.min_side > FLAGS.max_side:
        raise ValueError("--min_side must not exceed --max_side")
    skeleton = _skeleton(FLAGS.skeleton)
    print(f"skeleton: {skeleton.describe()}: {', '.join(skeleton.keypoints)}", flush=True)
    every = max(1, FLAGS.num_images // _PROGRESS_STEPS)

    def progress(done, total):
        if done % every == 0 or done == total:
            print(f"{done}/{total} images", file=sys.stderr, flush=True)

    start = time.perf_counter()
    summary = synthetic.generate_dataset(FLAGS.output, FLAGS.num_images, FLAGS.seed,
                                         FLAGS.min_side, FLAGS.max_side, progress_fn=progress,
                                         skeleton=skeleton, scene=synthetic_scene.SCENES[FLAGS.scene])
    summary["skeleton"] = skeleton.name
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


if __name__ == "__main__":
    cli.run(main)
