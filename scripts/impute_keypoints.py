"""Imputes the keypoints of persons annotated without keypoints with a trained model (paper §3.3).

  python scripts/impute_keypoints.py --saved_model exports/r101 \
      --annotations COCO/annotations/person_keypoints_train2017.json --images COCO/train2017 \
      --output imputed.json [--input_size 1401] [--margin 0.5] [--min_area 0] [--min_mask_iou 0.5] \
      [--min_keypoint_score 0.5] [--hidden_keypoints synthetic/train/hidden_keypoints.json]

Every non-crowd person without labelled keypoints and with COCO area >= --min_area is cropped around
its box (grown by --margin on each side, clamped to the image), the crop is resized to the larger side
--input_size (the export's --max_side) and run through the SavedModel's `serving_image` signature; the
detection whose mask best overlaps the annotated mask (IoU >= --min_mask_iou) gives the keypoints
(personlab_tf/tasks/personlab/impute.py; docs/data.md). Written to --output: a JSON list of
{"id": annotation id, "keypoints": [x, y, v] * 17, "scores": [17 floats]}, the input of
`create_tfrecords.py --imputed_keypoints`. Training with or without them: the gin switch
`PersonLabData.use_imputed_keypoints` (the paper's ablation, Tables 8-9).

Unreadable images are skipped with a warning naming the file and counted. The last stdout line is a
JSON summary: persons_considered, imputed, skipped {reason: count}, images_missing, input_warnings and,
with --hidden_keypoints (the synthetic dataset's true keypoints), mean_oks of the imputed persons and
oks_persons, and quality_by_size: per COCO size the persons considered and imputed, the coverage, the mean
OKS, the share of true keypoints labelled and how close those are (impute.imputation_quality). An unusable annotations, hidden keypoints file, images directory or SavedModel ends with a
one-line error and exit code 1.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow is imported: no C++ info logs.

from absl import flags  # noqa: E402

from personlab_tf import cli  # noqa: E402
from personlab_tf.data import coco, coco_problems  # noqa: E402
from personlab_tf.tasks.personlab import impute  # noqa: E402

FLAGS = flags.FLAGS
_DEFAULTS = impute.Options()
flags.DEFINE_string("saved_model", None, "SavedModel directory (scripts/export_saved_model.py).")
flags.DEFINE_string("annotations", None, "COCO person-keypoints JSON.")
flags.DEFINE_string("images", None, "Directory of the images named in the JSON.")
flags.DEFINE_string("output", None, "Imputed keypoints JSON to write.")
flags.DEFINE_integer("input_size", _DEFAULTS.input_size,
                                   "Larger side the crop is resized to: the export's --max_side.", lower_bound=2)
flags.DEFINE_float("margin", _DEFAULTS.margin, "The crop grows the box by margin * width left and "
                             "right and margin * height above and below.", lower_bound=0.0)
flags.DEFINE_float("min_area", _DEFAULTS.min_area, "Persons of smaller COCO area are not considered.")
flags.DEFINE_float("min_mask_iou", _DEFAULTS.min_mask_iou,
                                   "Least mask IoU of the chosen detection with the annotated mask.")
flags.DEFINE_float("min_keypoint_score", _DEFAULTS.min_keypoint_score,
                                         "Keypoints scoring at least this (and inside the image) get v = 2, "
                                         "the others v = 0.")
flags.DEFINE_string("hidden_keypoints", None,
                                        "Optional true keypoints (synthetic hidden_keypoints.json): mean OKS.")


def write_json(path, value):
    """Writes `value` as JSON to `path`, creating its directory."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)


def main():
    options = impute.Options(FLAGS.input_size, FLAGS.margin, FLAGS.min_area, FLAGS.min_mask_iou,
                             FLAGS.min_keypoint_score)
    problems = coco_problems.ProblemCounter()
    dataset = coco.load_dataset(FLAGS.annotations, problems)
    truth = (impute.load_hidden_keypoints(FLAGS.hidden_keypoints, dataset.skeleton.num_keypoints)
             if FLAGS.hidden_keypoints else None)
    detect = impute.saved_model_detector(FLAGS.saved_model, dataset.skeleton)   # ValueError: no serving_image
    entries, summary = impute.impute_dataset(dataset, FLAGS.images, detect, options, problems)
    write_json(FLAGS.output, entries)
    summary["input_warnings"] = dict(sorted(problems.warnings.items()))
    if truth is not None:
        quality = impute.imputation_quality(entries, truth, dataset, options.min_area)
        summary["mean_oks"], summary["oks_persons"] = quality["all"]["mean_oks"], quality["all"]["scored"]
        summary["quality_by_size"] = quality
    summary["output"] = FLAGS.output
    return summary


if __name__ == "__main__":
    flags.mark_flags_as_required(["saved_model", "annotations", "images", "output"])
    cli.run(main)
