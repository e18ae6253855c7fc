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

import tensorflow as tf
from absl import flags

from personlab_tf import cli, registry
from personlab_tf.inference import overlay, predict, serving

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel directory (scripts/export_saved_model.py).", required=True)
flags.DEFINE_string("images", None, "An image file, a directory of images, or a glob.", required=True)
flags.DEFINE_string("output_dir", None, "Where results JSONs and overlay PNGs go.", required=True)
flags.DEFINE_float("min_score", overlay.MIN_SCORE, "Overlays: detections scoring below are not drawn (the JSONs keep all).")


def main():
    paths = predict.image_paths(FLAGS.images)
    if not paths:
        raise ValueError(f"--images {FLAGS.images} matches no image file")
    # OSError / ValueError: no SavedModel, no task record, outputs that would replace inputs.
    loaded = tf.saved_model.load(FLAGS.saved_model)
    serve = loaded.signatures[serving.SERVING_DEFAULT]
    return predict.predict_images(paths, registry.task_of_saved_model(loaded), serve, FLAGS.output_dir, FLAGS.min_score)


if __name__ == "__main__":
    cli.run(main)
