"""Evaluates an exported model (or a run's newest checkpoint) of either task with the task's metrics.

  python scripts/evaluate.py --saved_model exports/r101 --annotations COCO/annotations/person_keypoints_val2017.json \
      --images COCO/val2017 [--output_dir eval/r101] [--evaluator pycocotools|faster_coco_eval]
  python scripts/evaluate.py --saved_model exports/r101 --data_dir tfds [--manual_dir COCO_ROOT] --split validation
  python scripts/evaluate.py --saved_model exports/parts --annotations parts/val/person_keypoints.json \
      --images parts/val/images [--part_labels parts/val/part_labels]
  python scripts/evaluate.py --model_dir runs/r101 [--gin_file ...] [--max_side 1401] [--multi_scale] ...

The task comes from the SavedModel's record (or, with --model_dir, from the run's gin configuration, the
inference flags overriding its options as in export_saved_model.py). Data: a COCO JSON with its images
(both tasks; part parsing reads the part label maps too, by default the `part_labels` folder beside the
JSON), or a tfds `coco_person` split (PersonLab; with --manual_dir, a local COCO 2017 tree, the dataset is
built first if needed; nothing is downloaded). Metrics: PersonLab, the COCO keypoint and segmentation rows
(docs/evaluation.md); part parsing, mIoU, AP^p, PCP and AP^r (docs/parts.md). Every image of the data
counts (images without people too); an image that cannot be read or decoded is skipped with a warning
naming it and counted. The last stdout line is one JSON object: the task's headline figures, the image
counts, `median_image_ms` (one image through the model and decoding, the first image's tracing excluded) and
every metric.
"""

from absl import app, flags

from personlab_tf import cli
from personlab_tf.evaluation import EVALUATORS, run

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel from scripts/export_saved_model.py.")
flags.DEFINE_string("model_dir", None, "Training directory: evaluate its newest checkpoint instead.")
cli.define_gin_flags("With --model_dir: gin files (default: the run's operative config)")
cli.define_inference_flags("With --model_dir: ")
flags.DEFINE_string("annotations", None, "COCO person-keypoints JSON of the images to evaluate.")
flags.DEFINE_string("images", None, "Directory of the JSON's images.")
flags.DEFINE_string("part_labels", None, "Part parsing: part label PNGs (default: part_labels beside the JSON).")
flags.DEFINE_string("data_dir", None, "tfds data directory holding (or receiving) coco_person.")
flags.DEFINE_string("manual_dir", None, "Local COCO 2017 tree to build the tfds dataset from, if needed.")
flags.DEFINE_string("split", "validation", "tfds split to evaluate.")
flags.DEFINE_string("output_dir", None, "Where the results and metrics files go.")
flags.DEFINE_enum("evaluator", EVALUATORS[0], EVALUATORS, "COCO evaluation implementation (PersonLab).")
flags.DEFINE_integer("max_images", None, "Evaluate only the first N images (quick checks).")


def main():
    if bool(FLAGS.saved_model) == bool(FLAGS.model_dir):
        raise app.UsageError("give exactly one of --saved_model and --model_dir")
    if FLAGS.saved_model:
        given = sorted(cli.inference_overrides())
        if given:
            raise app.UsageError(f"--{', --'.join(given)}: inference options of a run (--model_dir); a SavedModel "
                                 "has those it was exported with")
        task, predict = run.saved_model_predictor(FLAGS.saved_model)
    else:
        task = cli.inference_task(FLAGS.model_dir, FLAGS.annotations)
        predict = run.detector_predictor(cli.restored_detector(task, FLAGS.model_dir)[0])
    data = run.EvaluationData(FLAGS.annotations, FLAGS.images, FLAGS.part_labels, FLAGS.data_dir, FLAGS.manual_dir,
                              FLAGS.split)
    return run.evaluate(task, predict, data, FLAGS.output_dir, FLAGS.evaluator, FLAGS.max_images)


if __name__ == "__main__":
    cli.run(main)
