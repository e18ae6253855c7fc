"""The training benchmarks of scripts/benchmark.py train (docs/training.md): the full PersonLab step against the
bare backbone step per precision / XLA variant, gin/smoke.gin's step and its input wait, and the demo's step with
the refinement plain and compiled; on synthetic training records, one device."""

import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import gin
import tensorflow as tf

from personlab_tf import config, keys, registry
from personlab_tf.data import coco_format, synthetic, writer
from personlab_tf.task import Task
from personlab_tf.train import trainer
from personlab_tf.train.optimizer import build_optimizer


def synthetic_train_records(directory: str, num_images: int) -> str:
    """Writes a synthetic training set of `num_images` 640x480 images as TFRecords; returns their glob."""
    data = os.path.join(directory, "synthetic")
    synthetic.generate_dataset(data, num_images, seed=0, min_side=480, max_side=640)
    prefix = os.path.join(directory, "records")
    writer.convert(os.path.join(data, coco_format.ANNOTATIONS_FILE), os.path.join(data, coco_format.IMAGES_DIR),
                   prefix, num_shards=2)
    return prefix + "-*"


def gin_training_step(gin_file: str, records: str, bindings: Sequence[str] = ()) -> Tuple[Task, Callable]:
    """(task, tf.function of the model's train_step) of the experiment of gin/`gin_file` with `bindings`, on
    `records`, the optimizer compiled in; the gin config stays parsed (the caller clears it)."""
    gin.clear_config()
    registry.parse_gin([str(config.GIN_DIR / gin_file)], [f"TRAIN_FILES = '{records}'", *bindings])
    task = config.experiment()
    model = task.build_model()
    model.compile(optimizer=build_optimizer())
    return task, tf.function(model.train_step)


def time_smoke(records: str, num_steps: int, warmup: int = 3) -> Dict[str, float]:
    """Steps/s (median) and input-wait fraction of gin/smoke.gin's training step on one device."""
    task, step = gin_training_step("smoke.gin", records)
    waits, totals = fetch_and_step(task.build_dataset(records, 2, training=True, seed=0), step, warmup, num_steps)
    gin.clear_config()
    return {"steps_per_s": round(1.0 / statistics.median(totals), 3),
            "input_wait_fraction": round(sum(waits) / sum(totals), 4)}


def fetch_and_step(dataset: tf.data.Dataset, step: Callable, warmup: int,
                   num_steps: int) -> Tuple[List[float], List[float]]:
    """(waits, totals) in seconds of `num_steps` steps after `warmup`: fetch the next batch of the prefetching
    pipeline, then run `step` on it to completion."""
    iterator = iter(dataset)
    waits, totals = [], []
    for index in range(warmup + num_steps):
        start = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        float(step(batch)[keys.Loss.TOTAL])
        if index >= warmup:
            waits.append(fetched - start)
            totals.append(time.perf_counter() - start)
    return waits, totals


def time_demo(records: str, num_steps: int, warmup: int = 3) -> Dict[str, float]:
    """gin/demo.gin's training step with the Eq. 2 / Eq. 5 refinement plain and compiled (jit_refinement).

    Both models take each batch of the demo's input pipeline in turn (the order alternating), so a machine
    shared with other jobs slows both alike. Returns steps/s of each (medians) and `ratio`, the compiled
    step's median time over the plain one's.
    """
    steps = []
    for compiled in (False, True):
        task, step = gin_training_step("demo.gin", records, [f"PersonLabNetwork.jit_refinement = {compiled}"])
        steps.append(step)
    iterator = iter(task.build_dataset(records, gin.query_parameter("train.global_batch_size"), training=True,
                                       seed=0))
    times = ([], [])
    for index in range(warmup + num_steps):
        batch = next(iterator)
        for which in (index % 2, 1 - index % 2):
            start = time.perf_counter()
            float(steps[which](batch)[keys.Loss.TOTAL])
            if index >= warmup:
                times[which].append(time.perf_counter() - start)
    gin.clear_config()
    plain, compiled = (statistics.median(values) for values in times)
    return {"plain_steps_per_s": round(1.0 / plain, 3), "compiled_refinement_steps_per_s": round(1.0 / compiled, 3),
            "ratio": round(compiled / plain, 3)}


# Variants of train_benchmark: (mixed precision policy, XLA).
TRAIN_VARIANTS = {"float32": (None, False), "mixed_bfloat16": ("mixed_bfloat16", False), "xla": (None, True),
                  "mixed_bfloat16_xla": ("mixed_bfloat16", True)}


def time_variant(records: str, policy: Optional[str], jit_compile: bool, num_steps: int,
                 warmup: int = 2) -> Dict[str, float]:
    """The full PersonLab step and the bare backbone step of ResNet-101 (801 x 801, os 16, batch 1).

    The full step is the model's train_step (heads, refinement, losses, SGD with momentum and Polyak
    averaging) on batches of the real input pipeline; the bare step is the backbone's forward and backward
    pass on the same images: the gradients of the mean of its output with respect to every trainable weight,
    returned as tensors of the weights' shapes (no optimizer), as every training step consumes them; under XLA
    a step that only sums them is cheaper (docs/training.md). The two run in turn, so a machine shared with
    other jobs slows both alike.
    """
    gin.clear_config()
    registry.parse_gin([str(config.GIN_DIR / "personlab_resnet101.gin")],
                       [f"TRAIN_FILES = '{records}'", "PersonLabNetwork.allow_random_init = True"])
    task = config.experiment()
    with trainer.precision_policy(policy):
        model = task.build_model()
        model.compile(optimizer=build_optimizer(), jit_compile=jit_compile)
    full = tf.function(model.train_step, jit_compile=jit_compile)
    backbone = model.backbone

    @tf.function(jit_compile=jit_compile)
    def bare(images):
        with tf.GradientTape() as tape:
            features, _ = backbone(images, training=True)
            loss = tf.reduce_mean(tf.cast(features, tf.float32))
        return loss, tape.gradient(loss, backbone.trainable_variables)

    iterator = iter(task.build_dataset(records, 1, training=True, seed=0))
    waits, full_times, bare_times = [], [], []
    for index in range(warmup + num_steps):
        start = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        float(full(batch)[keys.Loss.TOTAL])
        done = time.perf_counter()
        float(bare(batch[0][keys.Sample.IMAGE])[0])
        if index >= warmup:
            waits.append(fetched - start)
            full_times.append(done - start)
            bare_times.append(time.perf_counter() - done)
    gin.clear_config()
    full_rate, bare_rate = 1.0 / statistics.median(full_times), 1.0 / statistics.median(bare_times)
    return {"full_steps_per_s": round(full_rate, 4), "backbone_steps_per_s": round(bare_rate, 4),
            "ratio": round(bare_rate / full_rate, 3), "input_wait_fraction": round(sum(waits) / sum(full_times), 4)}


def train_benchmark(num_images: int, train_steps: int, demo_steps: int,
                    variants: Sequence[str] = tuple(TRAIN_VARIANTS)) -> Dict[str, Any]:
    """{"train": results}: gin/smoke.gin's steps/s and input wait (`time_smoke`, `train_steps` steps), the demo's
    step with its refinement plain and compiled (`time_demo`, `demo_steps` steps), and ResNet-101's full vs bare
    step for each of `variants` (TRAIN_VARIANTS, `time_variant`), on `num_images` synthetic training images."""
    with tempfile.TemporaryDirectory() as directory:
        records = synthetic_train_records(directory, num_images)
        results = {"smoke": time_smoke(records, train_steps), "demo": time_demo(records, demo_steps)}
        print(f"demo: {results['demo']}", file=sys.stderr, flush=True)
        for name in variants:
            policy, jit_compile = TRAIN_VARIANTS[name]
            results[name] = time_variant(records, policy, jit_compile, train_steps)
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    return {"train": results}
