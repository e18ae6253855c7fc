"""Prediction on image files with an exported SavedModel of either task (scripts/predict.py, docs/inference.md).

For every image the `serving_default` signature gets the file bytes. Written to the output directory:
`keypoint_results.json`, `segmentation_results.json` (COCO results; the image id is the file name's number when
every file name is a number, else the position in the sorted list from 1), `images.json` (id, file_name,
height, width and the overlay files of every image) and `<file name><suffix>.png` per picture of the task
(`Task.pictures`). Output names never collide with an input or with each other (docs/operations.md). A file that
cannot be read or decoded is skipped with a warning naming it and counted.
"""

import glob
import itertools
import json
import os
import sys
from typing import Any, Callable, Dict, Iterable, List, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from personlab_tf import errors, keys
from personlab_tf.evaluation import evaluator, results
from personlab_tf.inference import overlay, serving
from personlab_tf.task import Task

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
IMAGES_FILE = "images.json"


def image_paths(pattern: str) -> List[str]:
    """Sorted image paths of a file, or of the .jpg/.jpeg/.png files of a directory or a glob."""
    if os.path.isfile(pattern):
        return [pattern]
    if os.path.isdir(pattern):
        found = [os.path.join(pattern, name) for name in os.listdir(pattern)]
    else:
        found = glob.glob(pattern)
    return sorted(path for path in found if os.path.isfile(path) and path.lower().endswith(IMAGE_EXTENSIONS))


def image_ids(paths: Sequence[str]) -> List[int]:
    """COCO image ids: the file names' numbers if all are distinct numbers, else 1, 2, ..."""
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    if all(stem.isdigit() for stem in stems) and len({int(stem) for stem in stems}) == len(stems):
        return [int(stem) for stem in stems]
    return list(range(1, len(paths) + 1))


def overlay_paths(output_dir: str, file_name: str, suffixes: Iterable[str], taken: Set[str]) -> Dict[str, str]:
    """{suffix: path} of one image's pictures, `{file_name}{suffix}.png`, with "-2", "-3", ... after the file
    name when one of them is in `taken` (real paths of the inputs and of the outputs so far); adds them to it."""
    for attempt in itertools.count(1):
        stem = file_name if attempt == 1 else f"{file_name}-{attempt}"
        paths = {suffix: os.path.join(output_dir, f"{stem}{suffix}.png") for suffix in suffixes}
        if not any(os.path.realpath(path) in taken for path in paths.values()):
            taken.update(os.path.realpath(path) for path in paths.values())
            return paths


def predict_file(serve: Callable, path: str) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """(decoded RGB image, numpy detections of the image with its maps cropped to it) of one file.

    Raises:
      OSError: unreadable file; tf.errors.InvalidArgumentError: bytes that do not decode, or an image
        above the SavedModel's pixel limit.
    """
    with open(path, "rb") as f:
        data = f.read()
    detections = serving.image_outputs(serve(**{serving.INPUT_NAME: tf.constant([data])}))
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False).numpy()
    return image, detections


def predict_images(paths: Sequence[str], task: Task, serve: Callable, output_dir: str,
                   min_score: float = overlay.MIN_SCORE) -> Dict[str, Any]:
    """Runs the SavedModel's `serving_default` (`serve`) of `task` on every path and writes the outputs to
    `output_dir` (module docstring; overlays skip detections scoring below `min_score`); returns the summary.

    Raises:
      ValueError: a results file would replace an input.
    """
    result_files = {name: os.path.join(output_dir, name)
                    for name in (evaluator.KEYPOINT_RESULTS_FILE, evaluator.SEGMENTATION_RESULTS_FILE, IMAGES_FILE)}
    taken = {os.path.realpath(path) for path in paths}
    clashes = [path for path in result_files.values() if os.path.realpath(path) in taken]
    if clashes:
        raise ValueError(f"--output_dir {output_dir} would replace the input {clashes[0]}: choose another one")
    taken.update(os.path.realpath(path) for path in result_files.values())
    os.makedirs(output_dir, exist_ok=True)
    keypoint_list, segmentation_list, images, skipped = [], [], [], []
    detections_total = 0
    for image_id, path in zip(image_ids(paths), paths):
        try:
            image, detections = predict_file(serve, path)
        except (OSError, tf.errors.InvalidArgumentError) as error:
            reason = errors.one_line(error) if isinstance(error, tf.errors.OpError) else error.strerror or str(error)
            logging.warning("skipping %s: %s", path, reason)
            skipped.append(path)
            continue
        detections[keys.Detection.MASKS] = task.instance_masks(detections)
        keypoint_list += results.keypoint_results(image_id, detections, task.skeleton)
        segmentation_list += results.segmentation_results(image_id, detections, task.skeleton.category_id)
        count = int(detections[keys.Detection.NUM_DETECTIONS])
        detections_total += count
        pictures = task.pictures(image, detections, min_score)
        written = overlay_paths(output_dir, os.path.basename(path), pictures, taken)
        for suffix, picture in pictures.items():
            overlay.write_png(written[suffix], picture)
        images.append({"id": image_id, "file_name": os.path.basename(path), "height": image.shape[0],
                       "width": image.shape[1], "overlays": [os.path.basename(p) for p in written.values()]})
        print(f"{path}: {count} detections", file=sys.stderr)
    for name, content in ((evaluator.KEYPOINT_RESULTS_FILE, keypoint_list),
                          (evaluator.SEGMENTATION_RESULTS_FILE, segmentation_list), (IMAGES_FILE, images)):
        with open(result_files[name], "w") as f:
            json.dump(content, f)
    return {"images_found": len(paths), "images_processed": len(images), "images_skipped": len(skipped),
            "skipped_files": skipped, "detections": detections_total, "output_dir": output_dir}
