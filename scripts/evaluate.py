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

import statistics
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import app, flags, logging
from tqdm import tqdm

from personlab_tf import cli, errors, registry, skeleton
from personlab_tf.data import coco, coco_problems
from personlab_tf.evaluation import EVALUATORS, load_ground_truth
from personlab_tf.inference import serving
from personlab_tf.task import EvaluationImage
from personlab_tf.tfds_builders import coco_person

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel from scripts/export_saved_model.py.")
flags.DEFINE_string("model_dir", None, "Training directory: evaluate its newest checkpoint instead.")
cli.define_gin_flags("With --model_dir: gin files (default: the run's operative config)")
cli.define_inference_flags()   # with --model_dir
flags.DEFINE_string("annotations", None, "COCO person-keypoints JSON of the images to evaluate.")
flags.DEFINE_string("images", None, "Directory of the JSON's images.")
flags.DEFINE_string("part_labels", None, "Part parsing: part label PNGs (default: part_labels beside the JSON).")
flags.DEFINE_string("data_dir", None, "tfds data directory holding (or receiving) coco_person.")
flags.DEFINE_string("manual_dir", None, "Local COCO 2017 tree to build the tfds dataset from, if needed.")
flags.DEFINE_string("split", "validation", "tfds split to evaluate.")
flags.DEFINE_string("output_dir", None, "Where the results and metrics files go.")
flags.DEFINE_enum("evaluator", EVALUATORS[0], EVALUATORS, "COCO evaluation implementation (PersonLab).")
flags.DEFINE_integer("max_images", None, "Evaluate only the first N images (quick checks).")


def saved_model_predictor(path):
    """(task, encoded image bytes -> numpy detections cropped to the image) of a SavedModel."""
    loaded = tf.saved_model.load(path)
    function = loaded.signatures[serving.SERVING_DEFAULT]

    def predict(encoded):
        return serving.image_outputs(function(**{serving.INPUT_NAME: tf.constant([encoded])}))

    return registry.task_of_saved_model(loaded), predict


def checkpoint_predictor(model_dir):
    """(task, predict) with the EMA weights of a run's newest checkpoint, run in this process."""
    task = cli.inference_task(model_dir, FLAGS.annotations)
    detector, _ = cli.restored_detector(task, model_dir)
    # One trace for every image size (each size would otherwise trace the whole decoding again).
    detect = tf.function(lambda image: serving.detect_image(detector, image), autograph=False,
                         input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])

    def predict(encoded):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return {key: np.asarray(value) for key, value in detect(image).items()}

    return task, predict


def tfds_source(task, problems):
    """(ground truth, images, count, annotations SHA-256, ids of the images skipped) of a tfds coco_person
    split; the images skipped and the warnings of its build (its record, coco_person_dataset_builder.py) are
    added to `problems`."""
    if not task.evaluates_on_tfds:
        raise app.UsageError(f"the {task.name} task evaluates a COCO JSON with its images: give --annotations and "
                         "--images instead of --data_dir")
    builder = (coco_person.prepare(FLAGS.manual_dir, FLAGS.data_dir) if FLAGS.manual_dir
               else tfds.builder("coco_person", data_dir=FLAGS.data_dir))
    if FLAGS.split not in builder.info.splits:
        raise app.UsageError(f"split {FLAGS.split!r} is not in {FLAGS.data_dir} (built: {list(builder.info.splits)})")
    skeleton.check_same(task.skeleton, builder.skeleton, "the model", f"the tfds coco_person of {FLAGS.data_dir}")
    record = builder.info.metadata.get(FLAGS.split, {})
    problems.images_skipped += record.get(coco_person.IMAGES_SKIPPED, 0)
    problems.warnings.update(record.get(coco_person.WARNINGS, {}))
    dataset = builder.as_dataset(split=FLAGS.split, decoders={"image": tfds.decode.SkipDecoding()})
    images = (EvaluationImage(int(example["image_id"]), example["image"]) for example in tfds.as_numpy(dataset))
    return (load_ground_truth(builder, FLAGS.split), images, builder.info.splits[FLAGS.split].num_examples,
            record.get(coco_person.ANNOTATIONS_SHA256), list(record.get(coco_person.SKIPPED_IMAGE_IDS, [])))


def json_source(task, problems):
    """(ground truth, images, count, annotations SHA-256, ids of the images skipped) of a COCO JSON and its
    images directory; the images skipped are counted in `problems`."""
    ground_truth = coco.ground_truth(coco.load_dataset(FLAGS.annotations, coco_problems.ProblemCounter(),
                                                       skeleton=task.skeleton))
    images = task.evaluation_images(FLAGS.annotations, FLAGS.images, FLAGS.part_labels, problems)
    return (ground_truth, images, len(ground_truth["images"]),
            coco_person.annotations_fingerprint(FLAGS.annotations), [])


def evaluate(task, predict, problems):
    """Runs the evaluation; returns the summary dict."""
    if FLAGS.annotations and FLAGS.images:
        ground_truth, images, total, fingerprint, source_skipped = json_source(task, problems)
    elif FLAGS.data_dir:
        ground_truth, images, total, fingerprint, source_skipped = tfds_source(task, problems)
    else:
        raise app.UsageError("give the data: --annotations and --images, or --data_dir (tfds coco_person)")
    evaluator = task.evaluator(ground_truth, FLAGS.output_dir, FLAGS.evaluator,
                               only_added_images=FLAGS.max_images is not None)
    evaluated, skipped, times = 0, [], []
    for image in tqdm(images, desc="evaluating", unit="image", file=sys.stderr, total=FLAGS.max_images or total):
        if FLAGS.max_images is not None and evaluated >= FLAGS.max_images:
            break
        try:
            start = time.perf_counter()
            detections = predict(image.encoded)
            times.append((time.perf_counter() - start) * 1e3)
        except tf.errors.InvalidArgumentError as error:  # bytes that do not decode, an image above the pixel limit
            logging.warning("image id %d cannot be run (%s); skipped", image.image_id, errors.one_line(error))
            skipped.append(image.image_id)
            continue
        evaluator.add(image, detections)
        evaluated += 1
    results = evaluator.results()
    return {"task": task.name, **evaluator.headline(results), "skeleton": task.skeleton.name,
            "images_evaluated": evaluated,
            "images_skipped": len(skipped) + problems.images_skipped, "skipped_image_ids": source_skipped + skipped,
            "input_warnings": dict(sorted(problems.warnings.items())), "annotations_sha256": fingerprint,
            "median_image_ms": round(statistics.median(times[1:] or times), 1) if times else 0.0, "metrics": results}


def main():
    if bool(FLAGS.saved_model) == bool(FLAGS.model_dir):
        raise app.UsageError("give exactly one of --saved_model and --model_dir")
    task, predict = (saved_model_predictor(FLAGS.saved_model) if FLAGS.saved_model
                     else checkpoint_predictor(FLAGS.model_dir))
    return evaluate(task, predict, coco_problems.ProblemCounter())


if __name__ == "__main__":
    cli.run(main)
