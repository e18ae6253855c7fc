"""Writes the procedural synthetic-people dataset in COCO person-keypoint format.

  python scripts/make_synthetic_coco.py --output DIR --num_images N --seed S [--min_side 256 --max_side 448] \
      [--scene coco|parts]

Writes DIR/images/<id:012d>.jpg, DIR/person_keypoints.json, DIR/hidden_keypoints.json and the part label
maps DIR/part_labels/<id:012d>.png (see personlab_tf/data/synthetic.py). `--scene coco` (default): COCO-like
scenes of 0-30 persons, small ones without keypoints, crowd regions; `--scene parts`: MHP-like scenes of
1-8 larger persons, all with keypoints (the part-parsing dataset). Progress goes to stderr; the last line of stdout is the summary as
one-line JSON: images, persons, persons_with_keypoints, crowd_regions, images_without_people, seconds.
"""

import json
import sys
import time

from absl import app, flags

from personlab_tf.data import synthetic

_OUTPUT = flags.DEFINE_string("output", None, "Output directory.", required=True)
_NUM_IMAGES = flags.DEFINE_integer("num_images", 200, "Number of images.", lower_bound=0)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed; image i depends only on (seed, i).")
_MIN_SIDE = flags.DEFINE_integer("min_side", 256, "Smallest image height or width.", lower_bound=16)
_MAX_SIDE = flags.DEFINE_integer("max_side", 448, "Largest image height or width.", lower_bound=16)
_SCENE = flags.DEFINE_enum("scene", "coco", sorted(synthetic.SCENES), "Scene statistics.")
_PROGRESS_STEPS = 10  # progress lines per run


def main(argv):
    """Generates the dataset and prints the summary."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if _MIN_SIDE.value > _MAX_SIDE.value:
        raise app.UsageError("--min_side must not exceed --max_side")
    every = max(1, _NUM_IMAGES.value // _PROGRESS_STEPS)

    def progress(done, total):
        if done % every == 0 or done == total:
            print(f"{done}/{total} images", file=sys.stderr, flush=True)

    start = time.perf_counter()
    summary = synthetic.generate_dataset(_OUTPUT.value, _NUM_IMAGES.value, _SEED.value,
                                         _MIN_SIDE.value, _MAX_SIDE.value, progress_fn=progress,
                                         scene=synthetic.SCENES[_SCENE.value])
    summary["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
