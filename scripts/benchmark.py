"""Benchmarks. Usage: `python scripts/benchmark.py MODE [flags]`; the last stdout line is one JSON object.

Modes:
  targets  median milliseconds per training sample (decode + augment + targets) for synthetic
           images with 1, 5, 15 and 30 people, crop 801 x 801, target stride 8.
"""

import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from personlab_tf import keys
from personlab_tf.data import pipeline, synthetic, writer

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 30, "Timed runs per setting (the median is reported).")
flags.DEFINE_list("people", ["1", "5", "15", "30"], "targets: person counts to time.")
flags.DEFINE_integer("crop_size", 801, "targets: crop side in pixels.")
flags.DEFINE_integer("target_stride", 8, "targets: target stride.")
flags.DEFINE_integer("image_height", 480, "targets: synthetic image height.")
flags.DEFINE_integer("image_width", 640, "targets: synthetic image width.")

MODES = ("targets",)


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


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise app.UsageError(f"usage: benchmark.py {{{'|'.join(MODES)}}} [flags]")
    summary = {"targets": benchmark_targets}[argv[1]]()
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
