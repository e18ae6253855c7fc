"""Evaluating a model of either task on a dataset (scripts/evaluate.py, docs/evaluation.md): a predictor (a
SavedModel's `serving_default`, or a task's detector run in this process) over the images of a COCO JSON or a tfds
`coco_person` split, scored by the task's evaluator. Every image of the data counts (images without people too);
an image that cannot be read or run is skipped with a warning naming it and counted."""

import dataclasses
import statistics
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging
from tqdm import tqdm

from personlab_tf import errors, registry, skeleton
from personlab_tf.data import coco, coco_problems
from personlab_tf.evaluation import EVALUATORS, load_ground_truth
from personlab_tf.inference import serving
from personlab_tf.task import Detector, EvaluationImage, Task
from personlab_tf.tfds_builders import coco_person

# Encoded image bytes -> numpy detections (keys.Detection) with the image maps cropped to the image.
Predict = Callable[[bytes], Dict[str, np.ndarray]]
# (ground truth, images, count, annotations SHA-256, ids of the images skipped by the source).
Source = Tuple[Dict[str, Any], Iterator[EvaluationImage], int, Optional[str], List[int]]


def saved_model_predictor(path: str) -> Tuple[Task, Predict]:
    """(task, encoded image bytes -> numpy detections cropped to the image) of a SavedModel."""
    loaded = tf.saved_model.load(path)
    function = loaded.signatures[serving.SERVING_DEFAULT]

    def predict(encoded):
        return serving.image_outputs(function(**{serving.INPUT_NAME: tf.constant([encoded])}))

    return registry.task_of_saved_model(loaded), predict


def detector_predictor(detector: Detector) -> Predict:
    """encoded image bytes -> numpy detections cropped to the image, of a task's detector run in this process
    (e.g. over a checkpoint's network, cli.restored_detector)."""
    # One trace for every image size (each size would otherwise trace the whole decoding again).
    detect = tf.function(lambda image: serving.detect_image(detector, image), autograph=False,
                         input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])

    def predict(encoded):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return {key: np.asarray(value) for key, value in detect(image).items()}

    return predict


@dataclasses.dataclass(frozen=True)
class EvaluationData:
    """Where the images to evaluate and their ground truth come from: a COCO JSON with its images (both tasks;
    `part_labels`, the part parser's label maps, default the `part_labels` folder beside the JSON), or a tfds
    `coco_person` split in `data_dir` (PersonLab; built first from the local COCO 2017 tree `manual_dir` when
    given: nothing is downloaded)."""

    annotations: Optional[str] = None
    images: Optional[str] = None
    part_labels: Optional[str] = None
    data_dir: Optional[str] = None
    manual_dir: Optional[str] = None
    split: str = "validation"


def tfds_source(task: Task, data: EvaluationData, problems: coco_problems.ProblemCounter) -> Source:
    """(ground truth, images, count, annotations SHA-256, ids of the images skipped) of a tfds coco_person
    split; the images skipped and the warnings of its build (its record, coco_person_dataset_builder.py) are
    added to `problems`. ValueError when the task does not evaluate on tfds or the split is not built."""
    if not task.evaluates_on_tfds:
        raise ValueError(f"the {task.name} task evaluates a COCO JSON with its images: give --annotations and "
                         "--images instead of --data_dir")
    builder = (coco_person.prepare(data.manual_dir, data.data_dir) if data.manual_dir
               else tfds.builder("coco_person", data_dir=data.data_dir))
    if data.split not in builder.info.splits:
        raise ValueError(f"split {data.split!r} is not in {data.data_dir} (built: {list(builder.info.splits)})")
    skeleton.check_same(task.skeleton, builder.skeleton, "the model", f"the tfds coco_person of {data.data_dir}")
    record = builder.info.metadata.get(data.split, {})
    problems.images_skipped += record.get(coco_person.IMAGES_SKIPPED, 0)
    problems.warnings.update(record.get(coco_person.WARNINGS, {}))
    dataset = builder.as_dataset(split=data.split, decoders={"image": tfds.decode.SkipDecoding()})
    images = (EvaluationImage(int(example["image_id"]), example["image"]) for example in tfds.as_numpy(dataset))
    return (load_ground_truth(builder, data.split), images, builder.info.splits[data.split].num_examples,
            record.get(coco_person.ANNOTATIONS_SHA256), list(record.get(coco_person.SKIPPED_IMAGE_IDS, [])))


def json_source(task: Task, data: EvaluationData, problems: coco_problems.ProblemCounter) -> Source:
    """(ground truth, images, count, annotations SHA-256, ids of the images skipped) of a COCO JSON and its
    images directory; the images skipped are counted in `problems`."""
    ground_truth = coco.ground_truth(coco.load_dataset(data.annotations, coco_problems.ProblemCounter(),
                                                       skeleton=task.skeleton))
    images = task.evaluation_images(data.annotations, data.images, data.part_labels, problems)
    return (ground_truth, images, len(ground_truth["images"]), coco_person.annotations_fingerprint(data.annotations),
            [])


def evaluate(task: Task, predict: Predict, data: EvaluationData, output_dir: Optional[str] = None,
             coco_backend: str = EVALUATORS[0], max_images: Optional[int] = None) -> Dict[str, Any]:
    """Runs `predict` over the images of `data` and scores them with the task's evaluator (results and metrics
    files in `output_dir`; COCO metrics by `coco_backend`; only the first `max_images` images when given, the
    metrics then over those). An image that cannot be run is skipped with a warning and counted. Returns the
    summary: the task's headline, image counts, `median_image_ms` and every metric. ValueError without data."""
    problems = coco_problems.ProblemCounter()
    if data.annotations and data.images:
        ground_truth, images, total, fingerprint, source_skipped = json_source(task, data, problems)
    elif data.data_dir:
        ground_truth, images, total, fingerprint, source_skipped = tfds_source(task, data, problems)
    else:
        raise ValueError("give the data: --annotations and --images, or --data_dir (tfds coco_person)")
    evaluator = task.evaluator(ground_truth, output_dir, coco_backend, only_added_images=max_images is not None)
    evaluated, skipped, times = 0, [], []
    for image in tqdm(images, desc="evaluating", unit="image", file=sys.stderr, total=max_images or total):
        if max_images is not None and evaluated >= max_images:
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
