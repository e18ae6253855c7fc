"""Benchmarks. Usage: `python scripts/benchmark.py MODE [flags]`; the last stdout line is one JSON object.

Modes:
  targets  median milliseconds per training sample (decode + augment + targets) for synthetic
           images with 1, 5, 15 and 30 people, crop 801 x 801, target stride 8.
  train    training steps/s of gin/smoke.gin and of ResNet-101 at 801 x 801, output stride 16, batch 1,
           and the fraction of step time spent waiting for the input pipeline.
"""

import json
import os
import statistics
import sys
import tempfile
import time

import gin
import tensorflow as tf
from absl import app, flags

from personlab_tf import config, keys
from personlab_tf.data import pipeline, synthetic, writer
from personlab_tf.model import personlab
from personlab_tf.train import trainer  # noqa: F401  (registers train with gin)

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 30, "Timed runs per setting (the median is reported).")
flags.DEFINE_list("people", ["1", "5", "15", "30"], "targets: person counts to time.")
flags.DEFINE_integer("crop_size", 801, "targets: crop side in pixels.")
flags.DEFINE_integer("target_stride", 8, "targets: target stride.")
flags.DEFINE_integer("image_height", 480, "targets: synthetic image height.")
flags.DEFINE_integer("image_width", 640, "targets: synthetic image width.")
flags.DEFINE_integer("train_steps", 10, "train: timed steps per configuration (after 3 warm-up steps).")
flags.DEFINE_integer("train_images", 16, "train: synthetic images in the benchmark's training records.")

MODES = ("targets", "train")


def median_ms(function, repeats, warmup=3):
    """Median wall time of `function()` in milliseconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def synthetic_record(num_persons, height, width, seed):
    """One serialized record of a synthetic image with `num_persons` people, made by the real writer."""
    with tempfile.TemporaryDirectory() as directory:
        synthetic.generate_dataset(directory, 1, seed, num_persons=num_persons, size=(height, width))
        prefix = os.path.join(directory, "records")
        writer.convert(os.path.join(directory, synthetic.ANNOTATIONS_FILE),
                       os.path.join(directory, synthetic.IMAGES_DIR), prefix)
        return next(iter(tf.data.TFRecordDataset(writer.shard_paths(prefix, 1)))).numpy()


def benchmark_targets():
    """Milliseconds per sample of the training map (one core's worth: no parallel calls)."""
    example = tf.function(lambda serialized, seed: pipeline.sample_to_example(
        serialized, seed, True, FLAGS.crop_size, FLAGS.target_stride, 32.0, {}))
    results = {}
    for count in FLAGS.people:
        record = tf.constant(synthetic_record(int(count), FLAGS.image_height, FLAGS.image_width, int(count)))
        seeds = iter(range(10**6))

        def run():
            _, targets = example(record, tf.constant([0, next(seeds)], tf.int64))
            targets[keys.HEATMAPS].numpy()

        results[count] = round(median_ms(run, FLAGS.repeats), 2)
        print(f"{count:>3} people: {results[count]:.1f} ms/sample", file=sys.stderr)
    return {"targets_ms": results}


def synthetic_train_records(directory, num_images):
    """Writes a synthetic training set of `num_images` 640x480 images as TFRecords; returns their glob."""
    data = os.path.join(directory, "synthetic")
    synthetic.generate_dataset(data, num_images, seed=0, min_side=480, max_side=640)
    prefix = os.path.join(directory, "records")
    writer.convert(os.path.join(data, synthetic.ANNOTATIONS_FILE), os.path.join(data, synthetic.IMAGES_DIR),
                   prefix, num_shards=2)
    return prefix + "-*"


def time_training(records, gin_file, bindings, num_steps, warmup=3):
    """Steps/s (median) and input-wait fraction of the training step of a gin configuration.

    Each step: wait for the next batch from the prefetching pipeline, then run one compiled training
    step on one device. The wait fraction is total wait / total step time over the timed steps.
    """
    gin.clear_config()
    config.parse_gin([gin_file], [f"TRAIN_FILES = '{records}'"] + bindings)
    batch_size = gin.query_parameter("train.global_batch_size")
    dataset = pipeline.build_dataset(records, batch_size, training=True, seed=0)
    model = personlab.build_model()
    model.compile(optimizer=personlab.build_optimizer())
    step = tf.function(model.train_step)
    iterator = iter(dataset)
    waits, totals = [], []
    for index in range(warmup + num_steps):
        start = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        float(step(batch)[keys.TOTAL_LOSS])
        if index >= warmup:
            waits.append(fetched - start)
            totals.append(time.perf_counter() - start)
    gin.clear_config()
    return {"steps_per_s": round(1.0 / statistics.median(totals), 3),
            "input_wait_fraction": round(sum(waits) / sum(totals), 4), "batch_size": batch_size}


def benchmark_train():
    """gin/smoke.gin as shipped, and ResNet-101 at 801 x 801 with output stride 16 and batch 1."""
    gin_dir = config.GIN_DIR
    with tempfile.TemporaryDirectory() as directory:
        records = synthetic_train_records(directory, FLAGS.train_images)
        results = {
            "smoke": time_training(records, str(gin_dir / "smoke.gin"), [], FLAGS.train_steps),
            "resnet101_801_os16": time_training(records, str(gin_dir / "personlab_resnet101.gin"),
                                                ["train.global_batch_size = 1"], FLAGS.train_steps),
        }
    for name, result in results.items():
        print(f"{name}: {result}", file=sys.stderr)
    return {"train": results}


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise app.UsageError(f"usage: benchmark.py {{{'|'.join(MODES)}}} [flags]")
    summary = {"targets": benchmark_targets, "train": benchmark_train}[argv[1]]()
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
