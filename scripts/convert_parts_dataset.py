"""Converts a part-parsing dataset to the project's layout: COCO JSON + part label PNGs (+ its images).

  python scripts/convert_parts_dataset.py --format densepose --annotations densepose_coco_2014_train.json \
      [--densepose_parts box|mask] --output parts/densepose_train
  python scripts/convert_parts_dataset.py --format mhp_v2 --root LV-MHP-v2 --split train --output parts/mhp_train
  python scripts/convert_parts_dataset.py --format pascal_person_part --root pascal_person_part --split train \
      [--list LIST] [--pascal_part PASCAL_PART/Annotations_Part] [--joints JOINTS_DIR] --output parts/pascal_train

Then: `create_tfrecords.py --annotations OUTPUT/person_keypoints.json --images IMAGES --part_labels
OUTPUT/part_labels --part_set FORMAT's part set`, IMAGES being the dataset's own image folder (COCO's
train2014 for DensePose, ROOT/SPLIT/images for MHP v2, ROOT for PASCAL, whose file names are the list's
image paths). The keypoints are DensePose's COCO 17 (skeleton coco17), MHP v2's 16 joints (mhp_v2) and
PASCAL-Person-Part's 14 joints (pascal_person_part) read from per-image joint files when there are any; the
JSON's category declares them, and training binds the same skeleton (`keypoint_skeleton.name`). The joint files of MHP v2 and
PASCAL-Person-Part are MATLAB files, read with scipy. DensePose's parts: `--densepose_parts box`
(default), as the part parser's released code builds them (dp_masks placed in the integer box, not clipped
to the COCO mask; a person without dp_masks is background), or `mask` (kept only inside the COCO mask; a
person without dp_masks has no parts). Formats and readings: personlab_tf/tasks/parts/converters/ (one module
per format; the problems counted: common.py). The last stdout line is a JSON summary
(images, persons, persons_with_keypoints, persons_with_parts, overlap_pixels, part_pixels_outside_persons,
warnings); an unusable input ends with a one-line error and exit code 1.
"""

import os

from absl import flags

from personlab_tf import cli
from personlab_tf.tasks.parts.converters import densepose, mhp_v2, pascal_person_part

FORMATS = ("densepose", "mhp_v2", "pascal_person_part")
FLAGS = flags.FLAGS
flags.DEFINE_enum("format", None, FORMATS, "The dataset's format.", required=True)
flags.DEFINE_string("output", None, "Output directory.", required=True)
flags.DEFINE_string("annotations", None, "densepose: the DensePose-COCO JSON.")
flags.DEFINE_string("root", None, "mhp_v2, pascal_person_part: the dataset's root directory.")
flags.DEFINE_string("split", "train", "mhp_v2: the split (list/SPLIT.txt); pascal_person_part: the default list "
                                      "ROOT/SPLIT_id.txt.")
flags.DEFINE_string("list", None, "pascal_person_part: list file of ids or 'IMAGE LABEL' paths relative to ROOT.")
flags.DEFINE_string("pascal_part", None, "pascal_person_part: PASCAL-Part's Annotations_Part directory "
                                         "(default ROOT/Annotations_Part).")
flags.DEFINE_enum("densepose_parts", densepose.DENSEPOSE_BOX, densepose.DENSEPOSE_READINGS,
                  "densepose: box = the released code's ground truth (dp_masks placed in the integer box, not clipped; "
                  "persons without dp_masks are background); mask = dp_masks kept only inside the COCO mask, persons "
                  "without dp_masks unlabelled (converters/densepose.py).")
flags.DEFINE_string("joints", None, "pascal_person_part: directory of the per-image joint files {id}.mat "
                                    "(layout: converters/pascal_person_part.py; default ROOT/Joints).")


def main():
    needed = "annotations" if FLAGS.format == "densepose" else "root"
    if not getattr(FLAGS, needed):
        raise ValueError(f"--format {FLAGS.format} needs --{needed}")
    if FLAGS.format == "densepose":
        return densepose.convert_densepose(FLAGS.annotations, FLAGS.output, reading=FLAGS.densepose_parts)
    if FLAGS.format == "mhp_v2":
        return mhp_v2.convert_mhp(FLAGS.root, FLAGS.split, FLAGS.output)
    list_path = FLAGS.list or os.path.join(FLAGS.root, f"{FLAGS.split}_id.txt")
    return pascal_person_part.convert_pascal_person_part(FLAGS.root, list_path, FLAGS.output, FLAGS.pascal_part,
                                                         FLAGS.joints)


if __name__ == "__main__":
    cli.run(main)
