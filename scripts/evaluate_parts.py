"""Evaluates an exported part parser on a COCO JSON with part label maps (second paper's metrics).

  python scripts/evaluate_parts.py --saved_model exports/parts --annotations DIR/person_keypoints.json \
      --images DIR/images [--part_labels DIR/part_labels] [--part_set synthetic] [--max_images N] \
      [--output_dir eval/parts]

Each image (the file bytes) goes through the SavedModel's `serving_default` signature; its category-level
part map and per-instance part maps are scored against the part label maps and the person masks with
personlab_tf/parts/metrics.py: mIoU, AP^p_50, AP^p_vol, PCP50 (MHP protocol), AP^r at 0.5 / 0.6 / 0.7 and
AP^r_vol. Unreadable images and unusable part maps are skipped with a warning and counted. The last stdout
line is one JSON object with every metric; --output_dir also receives it as metrics.json.
"""

import json
import os
import sys

import tensorflow as tf
from absl import app, flags, logging
from tqdm import tqdm

from personlab_tf import keys
from personlab_tf.data import coco
from personlab_tf.inference import serving
from personlab_tf.parts import evaluation, part_sets

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "Part-parsing SavedModel (scripts/export_saved_model.py).", required=True)
flags.DEFINE_string("annotations", None, "COCO person-keypoints JSON.", required=True)
flags.DEFINE_string("images", None, "Directory of its images.", required=True)
flags.DEFINE_string("part_labels", None, "Part label PNGs (default: part_labels beside the annotations).")
flags.DEFINE_enum("part_set", "synthetic", sorted(part_sets.PART_SETS), "The classes of the part labels.")
flags.DEFINE_integer("max_images", None, "Evaluate only the first N images (quick checks).")
flags.DEFINE_string("output_dir", None, "Where metrics.json goes.")


def main(argv):
    del argv
    part_set = part_sets.part_set(FLAGS.part_set)
    labels_dir = FLAGS.part_labels or evaluation.default_part_labels_dir(FLAGS.annotations)
    try:
        function = tf.saved_model.load(FLAGS.saved_model).signatures[serving.SERVING_DEFAULT]
    except (OSError, KeyError, ValueError) as error:
        print(f"error: cannot load a part-parsing SavedModel from {FLAGS.saved_model}: {error}", file=sys.stderr)
        return 1
    progress = tqdm(desc="evaluating", unit="image", file=sys.stderr, total=FLAGS.max_images)

    def parse(record, _):
        outputs = {key: value.numpy()[0] for key, value in function(images=tf.constant([record.encoded])).items()}
        if keys.INSTANCE_PART_MAPS not in outputs:
            raise ValueError(f"{FLAGS.saved_model} is not a part-parsing SavedModel (no {keys.INSTANCE_PART_MAPS})")
        progress.update()
        return outputs

    problems = coco.ProblemCounter()
    try:
        metrics, count = evaluation.evaluate(FLAGS.annotations, FLAGS.images, labels_dir, part_set, parse, problems,
                                             FLAGS.max_images)
    except (coco.AnnotationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    progress.close()
    if problems.warnings:
        logging.warning("input problems: %s", dict(problems.warnings))
    summary = {**metrics, "input_warnings": dict(sorted(problems.warnings.items()))}
    if FLAGS.output_dir:
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        with open(os.path.join(FLAGS.output_dir, "metrics.json"), "w") as f:
            json.dump(summary, f, indent=1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    app.run(main)
