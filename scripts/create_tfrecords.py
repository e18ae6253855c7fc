"""Converts COCO person-keypoint annotations and their images into sharded TFRecords.

  python scripts/create_tfrecords.py --annotations person_keypoints_train2017.json \
      --images train2017 --output records/train --num_shards 64 [--imputed_keypoints imputed.json] \
      [--part_labels DIR --part_set NAME] [--skeleton NAME_OR_COCO_JSON]

With --part_labels (instance-aware part parsing: one PNG label map per image, named after the image,
personlab_tf/data/part_labels.py) the records also carry each image's part map, whose classes must be
those of --part_set (personlab_tf/tasks/parts/part_sets.py).

Progress and data warnings go to stderr; the last line of stdout is the summary as one-line JSON. An
unusable annotations file, imputed keypoints file or images directory, or a conversion that leaves no image
to write (e.g. a wrong --images), ends with a one-line error and exit code 1, the shards already there
unchanged. A rerun replaces the shards of --output as a whole: shards of the same prefix written with
another --num_shards are removed and listed in the summary (`stale_shards_removed`; docs/operations.md).
The keypoints follow the skeleton the annotations file declares (its category's `keypoints`; coco17 when it
declares none) or --skeleton (a built-in name, or a COCO JSON declaring the keypoints; docs/skeletons.md); a
file that declares other keypoint names than --skeleton is refused. Every record names its skeleton, and the
summary says which one was written (`skeleton`).

The record layout is documented in personlab_tf/data/record_format.py.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow is imported: no C++ info logs.

from absl import flags  # noqa: E402

from personlab_tf import cli, skeleton  # noqa: E402
from personlab_tf.data import writer  # noqa: E402
from personlab_tf.tasks.parts import part_sets  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("annotations", None, "COCO person-keypoints JSON.")
flags.DEFINE_string("images", None, "Directory of the images named in the JSON.")
flags.DEFINE_string("output", None, "Shard path prefix: PREFIX-00000-of-0000N.tfrecord.")
flags.DEFINE_integer("num_shards", 1, "Number of output shards.", lower_bound=1)
flags.DEFINE_string(
    "imputed_keypoints", None,
    'Optional JSON list of {"id": annotation id, "keypoints": [3 K numbers]} for persons without keypoints.')
flags.DEFINE_string("part_labels", None, "Optional directory of part label PNGs, one per image.")
flags.DEFINE_enum("part_set", None, sorted(part_sets.PART_SETS), "Part set of --part_labels.")
flags.DEFINE_string("skeleton", None, "The keypoints' skeleton: a built-in name "
                                f"({', '.join(sorted(skeleton.BUILTIN))}) or a COCO JSON declaring them "
                                "(default: the annotations file's).")


def main():
    if bool(FLAGS.part_labels) != bool(FLAGS.part_set):
        raise ValueError("--part_labels and --part_set go together")
    num_classes = part_sets.part_set(FLAGS.part_set).num_classes if FLAGS.part_set else None
    chosen = skeleton.resolve(FLAGS.skeleton) if FLAGS.skeleton else None
    return writer.convert(FLAGS.annotations, FLAGS.images, FLAGS.output, FLAGS.num_shards, FLAGS.imputed_keypoints,
                          FLAGS.part_labels, num_classes, chosen)


if __name__ == "__main__":
    flags.mark_flags_as_required(["annotations", "images", "output"])
    cli.run(main)
