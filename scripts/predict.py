"""Runs an exported SavedModel of either task on image files.

    python scripts/predict.py --saved_model exports/r101 --images 'photos/*.jpg' --output_dir out/

`--images` is a file, a directory (its .jpg/.jpeg/.png files) or a glob. For every image the
`serving_default` signature gets the file bytes. Written to `--output_dir`:
- `keypoint_results.json`, `segmentation_results.json`: COCO results (keypoints; masks as compressed
  RLE), made by personlab_tf/evaluation/results.py; the image id is the file name's number when every
  file name is a number (COCO names), else the position in the sorted list, starting at 1;
- `images.json`: id, file_name, height, width of every image processed;
- `<file stem>.png`: the image with coloured instance masks, skeletons and scores; a part parser's
  SavedModel (its task is recorded in it) also draws `<file stem>_parts.png`, the category-level part map,
  and its instances' masks are the supports of their part maps.
A file that cannot be read or decoded is skipped with a warning naming it, and counted. The last
stdout line is a JSON summary.
"""

import glob
import json
import os
import sys

import tensorflow as tf
from absl import app, flags, logging

from personlab_tf import keys, registry
from personlab_tf.evaluation import evaluator, results
from personlab_tf.inference import overlay, serving

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel directory (scripts/export_saved_model.py).", required=True)
flags.DEFINE_string("images", None, "An image file, a directory of images, or a glob.", required=True)
flags.DEFINE_string("output_dir", None, "Where results JSONs and overlay PNGs go.", required=True)
flags.DEFINE_float("min_score", 0.1, "Overlays: detections scoring below are not drawn (the JSONs keep all).")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
IMAGES_FILE = "images.json"


def image_paths(pattern):
    """Sorted image paths of a file, a directory (its .jpg/.jpeg/.png files) or a glob."""
    if os.path.isdir(pattern):
        return sorted(os.path.join(pattern, name) for name in os.listdir(pattern)
                      if name.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(path for path in glob.glob(pattern) if os.path.isfile(path))


def image_ids(paths):
    """COCO image ids: the file names' numbers if all are distinct numbers, else 1, 2, ..."""
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    if all(stem.isdigit() for stem in stems) and len({int(stem) for stem in stems}) == len(stems):
        return [int(stem) for stem in stems]
    return list(range(1, len(paths) + 1))


def predict_file(serve, path):
    """(decoded RGB image, numpy detections of the image with its maps cropped to it) of one file.

    Raises:
      OSError: unreadable file; tf.errors.InvalidArgumentError: bytes that do not decode.
    """
    with open(path, "rb") as f:
        data = f.read()
    detections = serving.image_outputs(serve(**{serving.INPUT_NAME: tf.constant([data])}))
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False).numpy()
    return image, detections


def main(argv):
    del argv
    paths = image_paths(FLAGS.images)
    loaded = tf.saved_model.load(FLAGS.saved_model)
    task = registry.task_of_saved_model(loaded)
    serve = loaded.signatures[serving.SERVING_DEFAULT]
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    keypoint_list, segmentation_list, images, skipped = [], [], [], []
    detections_total = 0
    for image_id, path in zip(image_ids(paths), paths):
        try:
            image, detections = predict_file(serve, path)
        except (OSError, tf.errors.InvalidArgumentError) as error:
            message = getattr(error, "message", str(error)).strip().splitlines()[0]
            logging.warning("skipping %s: %s", path, message)
            skipped.append(path)
            continue
        detections[keys.Detection.MASKS] = task.instance_masks(detections)
        keypoint_list += results.keypoint_results(image_id, detections)
        segmentation_list += results.segmentation_results(image_id, detections)
        images.append({"id": image_id, "file_name": os.path.basename(path), "height": image.shape[0],
                       "width": image.shape[1]})
        count = int(detections[keys.Detection.NUM_DETECTIONS])
        detections_total += count
        stem = os.path.splitext(os.path.basename(path))[0]
        for suffix, picture in task.pictures(image, detections, FLAGS.min_score).items():
            overlay.write_png(os.path.join(FLAGS.output_dir, f"{stem}{suffix}.png"), picture)
        print(f"{path}: {count} detections", file=sys.stderr)
    for name, content in ((evaluator.KEYPOINT_RESULTS_FILE, keypoint_list),
                          (evaluator.SEGMENTATION_RESULTS_FILE, segmentation_list), (IMAGES_FILE, images)):
        with open(os.path.join(FLAGS.output_dir, name), "w") as f:
            json.dump(content, f)
    print(json.dumps({"images_found": len(paths), "images_processed": len(images), "images_skipped": len(skipped),
                      "skipped_files": skipped, "detections": detections_total,
                      "output_dir": FLAGS.output_dir}))


if __name__ == "__main__":
    app.run(main)
