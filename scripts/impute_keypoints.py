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
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow is imported: no C++ info logs.

from absl import app, flags  # noqa: E402

from personlab_tf import errors  # noqa: E402
from personlab_tf.data import coco, coco_problems  # noqa: E402
from personlab_tf.tasks.personlab import impute  # noqa: E402

_DEFAULTS = impute.Options()
_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "SavedModel directory (scripts/export_saved_model.py).")
_ANNOTATIONS = flags.DEFINE_string("annotations", None, "COCO person-keypoints JSON.")
_IMAGES = flags.DEFINE_string("images", None, "Directory of the images named in the JSON.")
_OUTPUT = flags.DEFINE_string("output", None, "Imputed keypoints JSON to write.")
_INPUT_SIZE = flags.DEFINE_integer("input_size", _DEFAULTS.input_size,
                                   "Larger side the crop is resized to: the export's --max_side.", lower_bound=2)
_MARGIN = flags.DEFINE_float("margin", _DEFAULTS.margin, "The crop grows the box by margin * width left and "
                             "right and margin * height above and below.", lower_bound=0.0)
_MIN_AREA = flags.DEFINE_float("min_area", _DEFAULTS.min_area, "Persons of smaller COCO area are not considered.")
_MIN_MASK_IOU = flags.DEFINE_float("min_mask_iou", _DEFAULTS.min_mask_iou,
                                   "Least mask IoU of the chosen detection with the annotated mask.")
_MIN_KEYPOINT_SCORE = flags.DEFINE_float("min_keypoint_score", _DEFAULTS.min_keypoint_score,
                                         "Keypoints scoring at least this (and inside the image) get v = 2, "
                                         "the others v = 0.")
_HIDDEN_KEYPOINTS = flags.DEFINE_string("hidden_keypoints", None,
                                        "Optional true keypoints (synthetic hidden_keypoints.json): mean OKS.")


def write_json(path, value):
    """Writes `value` as JSON to `path`, creating its directory."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)


def main(argv):
    """Runs the imputation; returns the exit code."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    options = impute.Options(_INPUT_SIZE.value, _MARGIN.value, _MIN_AREA.value, _MIN_MASK_IOU.value,
                             _MIN_KEYPOINT_SCORE.value)
    problems = coco_problems.ProblemCounter()
    try:
        dataset = coco.load_dataset(_ANNOTATIONS.value, problems)
        truth = (impute.load_hidden_keypoints(_HIDDEN_KEYPOINTS.value, dataset.skeleton.num_keypoints)
                 if _HIDDEN_KEYPOINTS.value else None)
        detect = impute.saved_model_detector(_SAVED_MODEL.value, dataset.skeleton)
    except (coco.AnnotationError, OSError, ValueError) as error:  # ValueError: no serving_image signature
        print(f"error: {errors.one_line(error)}", file=sys.stderr)
        return 1
    try:
        entries, summary = impute.impute_dataset(dataset, _IMAGES.value, detect, options, problems)
        write_json(_OUTPUT.value, entries)
    except (coco.AnnotationError, OSError) as error:
        print(f"error: {errors.one_line(error)}", file=sys.stderr)
        return 1
    summary["input_warnings"] = dict(sorted(problems.warnings.items()))
    if truth is not None:
        quality = impute.imputation_quality(entries, truth, dataset, options.min_area)
        summary["mean_oks"], summary["oks_persons"] = quality["all"]["mean_oks"], quality["all"]["scored"]
        summary["quality_by_size"] = quality
    summary["output"] = _OUTPUT.value
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required([_SAVED_MODEL.name, _ANNOTATIONS.name, _IMAGES.name, _OUTPUT.name])
    app.run(main)
