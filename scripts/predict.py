"""Runs an exported SavedModel of either task on image files.

    python scripts/predict.py --saved_model exports/r101 --images 'photos/*.jpg' --output_dir out/

`--images` is a file, or a directory or a glob (their .jpg/.jpeg/.png files). For every image the
`serving_default` signature gets the file bytes. Written to `--output_dir`:
- `keypoint_results.json`, `segmentation_results.json`: COCO results (keypoints; masks as compressed
  RLE), made by personlab_tf/evaluation/results.py; the image id is the file name's number when every
  file name is a number (COCO names), else the position in the sorted list, starting at 1;
- `images.json`: id, file_name, height, width and the overlay files of every image processed;
- `<file name>.png` (e.g. `a.jpg.png`): the image with coloured instance masks, skeletons and scores; a part
  parser's SavedModel (its task is recorded in it) also draws `<file name>_parts.png`, the category-level part
  map, and its instances' masks are the supports of their part maps.
Output names never collide with an input or with each other (docs/operations.md): the input's file name,
extension included, names its overlays, and one that would collide gets "-2", "-3", ... after the file name
(two `a.jpg` of different folders); a results file that would replace an input is an error.
A file that cannot be read or decoded is skipped with a warning naming it and the reason, and counted. The
last stdout line is a JSON summary; a SavedModel that does not load or an --images that matches no image file
ends with a one-line error and exit code 1.
"""

import glob
import itertools
import json
import os
import sys

import tensorflow as tf
from absl import flags, logging

from personlab_tf import cli, errors, keys, registry
from personlab_tf.evaluation import evaluator, results
from personlab_tf.inference import overlay, serving

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel directory (scripts/export_saved_model.py).", required=True)
flags.DEFINE_string("images", None, "An image file, a directory of images, or a glob.", required=True)
flags.DEFINE_string("output_dir", None, "Where results JSONs and overlay PNGs go.", required=True)
flags.DEFINE_float("min_score", overlay.MIN_SCORE, "Overlays: detections scoring below are not drawn (the JSONs keep all).")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
IMAGES_FILE = "images.json"


def image_paths(pattern):
    """Sorted image paths of a file, or of the .jpg/.jpeg/.png files of a directory or a glob."""
    if os.path.isfile(pattern):
        return [pattern]
    if os.path.isdir(pattern):
        found = [os.path.join(pattern, name) for name in os.listdir(pattern)]
    else:
        found = glob.glob(pattern)
    return sorted(path for path in found if os.path.isfile(path) and path.lower().endswith(IMAGE_EXTENSIONS))


def image_ids(paths):
    """COCO image ids: the file names' numbers if all are distinct numbers, else 1, 2, ..."""
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    if all(stem.isdigit() for stem in stems) and len({int(stem) for stem in stems}) == len(stems):
        return [int(stem) for stem in stems]
    return list(range(1, len(paths) + 1))


def overlay_paths(output_dir, file_name, suffixes, taken):
    """{suffix: path} of one image's pictures, `{file_name}{suffix}.png`, with "-2", "-3", ... after the file
    name when one of them is in `taken` (real paths of the inputs and of the outputs so far); adds them to it."""
    for attempt in itertools.count(1):
        stem = file_name if attempt == 1 else f"{file_name}-{attempt}"
        paths = {suffix: os.path.join(output_dir, f"{stem}{suffix}.png") for suffix in suffixes}
        if not any(os.path.realpath(path) in taken for path in paths.values()):
            taken.update(os.path.realpath(path) for path in paths.values())
            return paths


def predict_file(serve, path):
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


def predict(paths, task, serve):
    """Runs the model on every path and writes the outputs; returns the summary dict.

    Raises:
      ValueError: a results file would replace an input.
    """
    result_files = {name: os.path.join(FLAGS.output_dir, name)
                    for name in (evaluator.KEYPOINT_RESULTS_FILE, evaluator.SEGMENTATION_RESULTS_FILE, IMAGES_FILE)}
    taken = {os.path.realpath(path) for path in paths}
    clashes = [path for path in result_files.values() if os.path.realpath(path) in taken]
    if clashes:
        raise ValueError(f"--output_dir {FLAGS.output_dir} would replace the input {clashes[0]}: choose another one")
    taken.update(os.path.realpath(path) for path in result_files.values())
    os.makedirs(FLAGS.output_dir, exist_ok=True)
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
        pictures = task.pictures(image, detections, FLAGS.min_score)
        written = overlay_paths(FLAGS.output_dir, os.path.basename(path), pictures, taken)
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
            "skipped_files": skipped, "detections": detections_total, "output_dir": FLAGS.output_dir}


def main():
    paths = image_paths(FLAGS.images)
    if not paths:
        raise ValueError(f"--images {FLAGS.images} matches no image file")
    # OSError / ValueError: no SavedModel, no task record, outputs that would replace inputs.
    loaded = tf.saved_model.load(FLAGS.saved_model)
    return predict(paths, registry.task_of_saved_model(loaded), loaded.signatures[serving.SERVING_DEFAULT])


if __name__ == "__main__":
    cli.run(main)
