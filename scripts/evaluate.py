"""Evaluates PersonLab on a `coco_person` tfds split with the COCO keypoint and segmentation metrics.

  python scripts/evaluate.py --saved_model exports/r101 --data_dir tfds [--manual_dir COCO_ROOT] \
      --split validation [--output_dir eval/r101] [--evaluator pycocotools|faster_coco_eval]
  python scripts/evaluate.py --model_dir runs/r101 [--gin_file ...] [--max_side 1401] [--multi_scale] \
      [--output_stride 8] --data_dir tfds ...

With `--manual_dir` (a local COCO 2017 tree, see personlab_tf/datasets/coco_person/layout.py) the tfds
dataset is built first if needed; nothing is downloaded. A SavedModel carries its own input size and
scales (set at export); with `--model_dir` the newest checkpoint's EMA weights run in-process with
`--max_side` / `--multi_scale`. The COCO ground truth is rebuilt from the tfds records. Results JSONs and
metrics.json go to `--output_dir`; the last stdout line is one JSON object with both metric sets (the
paper's rows: keypoints AP ... ARL, segmentation AP ... AR20 with 20 proposals per image).
"""

import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import app, flags
from tqdm import tqdm

from personlab_tf import config, keys
from personlab_tf.datasets import coco_person
from personlab_tf.evaluation import EVALUATORS, Evaluator, load_ground_truth
from personlab_tf.inference import detector, export, serving

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "SavedModel from scripts/export_saved_model.py.")
flags.DEFINE_string("model_dir", None, "Training directory: evaluate its newest checkpoint instead.")
flags.DEFINE_multi_string("gin_file", [], "With --model_dir: gin files (default: the run's operative config).")
flags.DEFINE_multi_string("gin_bindings", [], "With --model_dir: extra gin bindings.")
flags.DEFINE_integer("max_side", detector.MAX_SIDE, "With --model_dir: larger side of the resized image.")
flags.DEFINE_bool("multi_scale", False, "With --model_dir: the pyramid 601, 1201, 1801, 2401.")
flags.DEFINE_integer("output_stride", 8, "With --model_dir: output stride of the network.")
flags.DEFINE_string("data_dir", None, "tfds data directory holding (or receiving) coco_person.", required=True)
flags.DEFINE_string("manual_dir", None, "Local COCO 2017 tree to build the tfds dataset from, if needed.")
flags.DEFINE_string("split", "validation", "tfds split to evaluate.")
flags.DEFINE_string("output_dir", None, "Where the results JSONs and metrics.json go.")
flags.DEFINE_enum("evaluator", EVALUATORS[0], EVALUATORS, "COCO evaluation implementation.")
flags.DEFINE_integer("max_images", None, "Evaluate only the first N images of the split (quick checks).")


def saved_model_predictor(path):
    """encoded image bytes -> detections (numpy, masks cropped to the image) with a SavedModel."""
    function = tf.saved_model.load(path).signatures[serving.SERVING_DEFAULT]

    def predict(encoded):
        outputs = {k: v.numpy()[0] for k, v in function(**{serving.INPUT_NAME: tf.constant([encoded])}).items()}
        height, width = outputs.pop(keys.IMAGE_SIZE)
        outputs[keys.INSTANCE_MASKS] = outputs[keys.INSTANCE_MASKS][:, :height, :width]
        return outputs

    return predict


def checkpoint_predictor(model_dir):
    """encoded image bytes -> detections (numpy) with the EMA weights of a run's newest checkpoint."""
    config.parse_gin(export.default_gin_files(model_dir, FLAGS.gin_file), FLAGS.gin_bindings)
    model, _ = export.restore_averaged_model(model_dir, FLAGS.output_stride)
    scales = detector.PYRAMID if FLAGS.multi_scale else None
    run = detector.Detector(model.inference_model(), FLAGS.output_stride, max_side=FLAGS.max_side, scales=scales,
                            **export.decoding_options())
    detect = tf.function(lambda image: run.detect(image), autograph=False)

    def predict(encoded):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return {k: v.numpy() for k, v in detect(image).items()}

    return predict


def main(argv):
    del argv
    if bool(FLAGS.saved_model) == bool(FLAGS.model_dir):
        print("error: give exactly one of --saved_model and --model_dir", file=sys.stderr)
        return 1
    if FLAGS.manual_dir:
        builder = coco_person.prepare(FLAGS.manual_dir, FLAGS.data_dir)
    else:
        builder = tfds.builder("coco_person", data_dir=FLAGS.data_dir)
    if FLAGS.split not in builder.info.splits:
        print(f"error: split {FLAGS.split!r} is not in {FLAGS.data_dir} (built: {list(builder.info.splits)})",
              file=sys.stderr)
        return 1
    predict = saved_model_predictor(FLAGS.saved_model) if FLAGS.saved_model else checkpoint_predictor(FLAGS.model_dir)
    evaluator = Evaluator(load_ground_truth(builder, FLAGS.split), output_dir=FLAGS.output_dir,
                          evaluator=FLAGS.evaluator, only_added_images=FLAGS.max_images is not None)
    dataset = builder.as_dataset(split=FLAGS.split, decoders={"image": tfds.decode.SkipDecoding()})
    if FLAGS.max_images is not None:
        dataset = dataset.take(FLAGS.max_images)
    count = 0
    for example in tqdm(tfds.as_numpy(dataset), desc="evaluating", unit="image", file=sys.stderr,
                        total=FLAGS.max_images or builder.info.splits[FLAGS.split].num_examples):
        evaluator.add(int(example["image_id"]), predict(example["image"]))
        count += 1
    metrics = evaluator.results()
    summary = {"keypoints": metrics["keypoints"], "segmentation": metrics.get("segmentation", {}), "images": count}
    print(json.dumps(summary, default=lambda value: float(np.asarray(value))))
    return 0


if __name__ == "__main__":
    app.run(main)
