"""Benchmarks. Usage: `python scripts/benchmark.py MODE [flags]`; the last stdout line is one JSON object.

Modes:
  targets  median milliseconds per training sample (decode + augment + targets) for synthetic
           images with 1, 5, 15 and 30 people, crop 801 x 801, target stride 8.
  train    the training step of PersonLab's ResNet-101 at 801 x 801, output stride 16, batch 1 (the paper's
           per-GPU setup) against the bare backbone forward + backward on the same input (a trivial loss,
           no optimizer): steps/s of both and their ratio, for float32, mixed_bfloat16 and XLA (and
           bfloat16 + XLA), run in turn step by step (medians); plus the share of the full step's time spent
           waiting for the input pipeline, and gin/smoke.gin's steps/s; and the demo's step (gin/demo.gin)
           with the refinement plain and compiled by XLA (PersonLabNetwork.jit_refinement), in turn on the
           same batches: steps/s of both and the ratio of their step times.
  decode   median milliseconds of decoding perfect maps (tasks/personlab/synthetic_maps) of an 801 x 529 image
           at output stride 8 with 5 and 30 people, as the detector runs it (maps upsampled to the decoding
           stride): the poses-only path (Hough voting, seeds, greedy poses, scores, NMS) and the full
           decode of the SavedModel (the same plus instance masks at the original resolution,
           tasks/personlab/detector.detections_from_maps), for each --decode_variants pair of decode stride
           and mask resolution ("poses", "full": the PersonLabInference defaults), each in a tf.function.
  serve    end-to-end latency of a SavedModel (encoded JPEG in, detections with masks out) against the
           bare backbone forward at the same size: ResNet-101, output stride 16, 801 x 529, random
           weights, exported to a temporary directory with max_side 801; and the inference network's
           forward (backbone and heads) plain and compiled by XLA on the same image; interleaved runs, medians
           (and each forward's first call: tracing, plus XLA's compilation, which every new image size repeats).
  video    frames/s of the video path (scripts/track_video.py: decoding the MP4, the SavedModel's serving_image,
           the tracker, results, overlay drawn and encoded) with reading, inference and writing overlapped in
           threads, the same path one stage after the other, and the same frames predicted as separate
           images the way scripts/predict.py does (JPEG files -> serving_default -> results, overlay PNGs), on
           a synthetic clip (data/synthetic_video.py) of each --video_sizes, the three ways interleaved,
           medians of --video_rounds; and the median milliseconds per frame of each stage, run in turn.
  matching the part parser's limb matching (personlab_tf/tasks/parts/matching.py), for each matcher of
           matching.MATCHERS (and the LP without acceleration): how often its matching equals the Hungarian
           assignment (scipy) on 1000 random score matrices of sizes 1..20 x 1..20, U(0, 1) scores; and the
           median milliseconds of the whole limb matching of one image (decode.limb_connections: the
           connection scores and the matching of the 18 limbs, 20 candidates per keypoint type, random
           limb heatmaps of a 801 x 529 frame at stride 4) and of the matcher alone on those 18 x 20 x 20
           scores, interleaved; `matching_agreement` and `ms_per_image` are the default decoding matcher's.
           --matching_lp_settings adds LP settings (agreement and time alone) to the comparison.
"""

import dataclasses
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict

import gin
import numpy as np
import tensorflow as tf
from absl import app, flags
from scipy.optimize import linear_sum_assignment

from personlab_tf import cli, config, keys, registry
from personlab_tf.task import Task
from personlab_tf.skeleton import COCO17
from personlab_tf.data import coco_format, synthetic, synthetic_video, writer
from personlab_tf.evaluation import results, selection
from personlab_tf.evaluation.timing import interleaved_medians, median_ms
from personlab_tf.inference import overlay, serving
from personlab_tf.tasks.parts import assignment_check, matching
from personlab_tf.tasks.parts.decode import PartsDecoding, limb_connections
from personlab_tf.tasks.personlab import detector, oracle, synthetic_maps
from personlab_tf.tasks.personlab.decode import decode
from personlab_tf.tasks.personlab.model import PersonLabNetwork
from personlab_tf.tasks.personlab.targets import PersonLabData
from personlab_tf.tasks.personlab.task import PersonLabTask
from personlab_tf.train import trainer
from personlab_tf.train.optimizer import build_optimizer
from personlab_tf.video import io as video_io
from personlab_tf.video import pipeline as video_pipeline
from personlab_tf.video.tracker import Tracker

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 30, "Timed runs per setting (the median is reported).")
flags.DEFINE_list("people", ["1", "5", "15", "30"], "targets: person counts to time.")
flags.DEFINE_integer("crop_size", 801, "targets: crop side in pixels.")
flags.DEFINE_integer("target_stride", 8, "targets: target stride.")
flags.DEFINE_integer("image_height", 480, "targets: synthetic image height.")
flags.DEFINE_integer("image_width", 640, "targets: synthetic image width.")
flags.DEFINE_integer("train_steps", 10, "train: timed steps per configuration (after the warm-up steps).")
flags.DEFINE_list("train_variants", list(("float32", "mixed_bfloat16", "xla", "mixed_bfloat16_xla")),
                  "train: the variants to time (float32, mixed_bfloat16, xla, mixed_bfloat16_xla).")
flags.DEFINE_integer("train_images", 16, "train: synthetic images in the benchmark's training records.")
flags.DEFINE_integer("demo_steps", 40, "train: timed steps of the demo's step, each way (after the warm-up steps).")

flags.DEFINE_list("decode_people", ["5", "30"], "decode: person counts to time.")
flags.DEFINE_list("decode_variants", ["8:grid", "8:hybrid", "8:image", "4:grid", "4:hybrid"],
                  "decode: decode stride:mask resolution pairs to time (the maps are at stride 8; the "
                  "defaults' pair is always added).")
flags.DEFINE_integer("decode_repeats", 60, "decode: timed runs per setting (interleaved, median).")
flags.DEFINE_list("decode_accuracy_variants", [], "decode: variants of DECODE_VARIANTS whose AP to measure beside "
                  "their time (empty: none; 'all': every one) on the instruments given below.")
flags.DEFINE_string("decode_oracle_annotations", None, "decode: the realistic oracle's COCO JSON (e.g. "
                    "../shared/data/coco_train_sample/person_keypoints.json).")
flags.DEFINE_string("decode_oracle_images", None, "decode: its images.")
flags.DEFINE_list("decode_oracle_seeds", ["0", "1"], "decode: the oracle's noise seeds (their APs averaged).")
flags.DEFINE_multi_string("decode_oracle_bindings", [], "decode: gin bindings of the oracle's frame and noise "
                          "(e.g. \"PersonLabInference.max_side = 1401\", \"MapNoise.severity = 0.5\").")
flags.DEFINE_string("decode_model_dir", None, "decode: a trained run (e.g. make demo's outputs/demo/model).")
flags.DEFINE_string("decode_model_annotations", None, "decode: the COCO JSON the network is evaluated on.")
flags.DEFINE_string("decode_model_images", None, "decode: its images.")
flags.DEFINE_integer("decode_model_max_side", 641, "decode: the network's frame (the demo's export).")
flags.DEFINE_float("decode_tolerance", 0.005, "decode: the default is the cheapest variant within this much AP "
                   "of the best on every instrument and metric.")
flags.DEFINE_integer("serve_repeats", 10, "serve: timed runs of each of serving and backbone (interleaved).")
flags.DEFINE_string("serve_backbone", "resnet101", "serve: backbone of the exported model.")
flags.DEFINE_integer("serve_output_stride", 16, "serve: output stride of the exported model.")

flags.DEFINE_integer("matching_matrices", 1000, "matching: random score matrices of the agreement test.")
flags.DEFINE_integer("matching_repeats", 10, "matching: timed solver calls per setting (median).")
flags.DEFINE_list("matching_lp_settings", [], "matching: more LP settings to measure as matchers, "
                  "PGD_STEPSxDYKSTRA_SWEEPSxSTEP_SIZE, e.g. 100x10x0.1.")

flags.DEFINE_string("video_saved_model", "outputs/demo/saved_model", "video: the SavedModel (default: make demo's).")
flags.DEFINE_integer("video_frames", 40, "video: frames of the synthetic clip (10 frames/s).")
flags.DEFINE_list("video_sizes", ["360x480", "720x1280"], "video: frame sizes (HEIGHTxWIDTH) of the clips timed.")
flags.DEFINE_integer("video_rounds", 5, "video: timed runs of each way (interleaved, median).")

MODES = ("targets", "train", "decode", "serve", "matching", "video")
DECODE_HEIGHT, DECODE_WIDTH, DECODE_STRIDE = 529, 801, 8
# The decoding variants of docs/decoding.md §7: name -> (decode stride, mask resolution, extra gin bindings).
# Eq. 5's variants change the refinement (no weights), not the decoding's cost.
DECODE_VARIANTS = {
    **{f"s{stride}_{masks}": (stride, masks, ()) for stride in (8, 4, 2) for masks in ("grid", "hybrid", "image")},
    "s4_hybrid_eq5_1_2": (4, "hybrid", ("PersonLabNetwork.refine_long_steps = (1, 2)",)),
    "s4_hybrid_eq5_0_2": (4, "hybrid", ("PersonLabNetwork.refine_long_steps = (0, 2)",)),
    "s4_hybrid_eq5_gate_1": (4, "hybrid", ("PersonLabNetwork.refine_long_gate = 1.0",)),
}
ACCURACY = ("keypoints_AP", "segm_AP")


def synthetic_record(num_persons, height, width, seed):
    """One serialized record of a synthetic image with `num_persons` people, made by the real writer."""
    with tempfile.TemporaryDirectory() as directory:
        synthetic.generate_dataset(directory, 1, seed, num_persons=num_persons, size=(height, width))
        prefix = os.path.join(directory, "records")
        writer.convert(os.path.join(directory, coco_format.ANNOTATIONS_FILE),
                       os.path.join(directory, coco_format.IMAGES_DIR), prefix)
        return next(iter(tf.data.TFRecordDataset(writer.shard_paths(prefix, 1)))).numpy()


def benchmark_targets():
    """Milliseconds per sample of the training map (one core's worth: no parallel calls)."""
    task = PersonLabTask(data=PersonLabData(FLAGS.crop_size, FLAGS.target_stride))
    example = tf.function(lambda serialized, seed: task.make_example(serialized, seed, True))
    results = {}
    for count in FLAGS.people:
        record = tf.constant(synthetic_record(int(count), FLAGS.image_height, FLAGS.image_width, int(count)))
        seeds = iter(range(10**6))

        def run():
            _, targets = example(record, tf.constant([0, next(seeds)], tf.int64))
            targets[keys.Map.HEATMAPS].numpy()

        results[count] = round(median_ms(run, FLAGS.repeats), 2)
        print(f"{count:>3} people: {results[count]:.1f} ms/sample", file=sys.stderr)
    return {"targets_ms": results}


def synthetic_train_records(directory, num_images):
    """Writes a synthetic training set of `num_images` 640x480 images as TFRecords; returns their glob."""
    data = os.path.join(directory, "synthetic")
    synthetic.generate_dataset(data, num_images, seed=0, min_side=480, max_side=640)
    prefix = os.path.join(directory, "records")
    writer.convert(os.path.join(data, coco_format.ANNOTATIONS_FILE), os.path.join(data, coco_format.IMAGES_DIR),
                   prefix, num_shards=2)
    return prefix + "-*"


def gin_training_step(gin_file, records, bindings=()):
    """(task, tf.function of the model's train_step) of the experiment of gin/`gin_file` with `bindings`, on
    `records`, the optimizer compiled in; the gin config stays parsed (the caller clears it)."""
    gin.clear_config()
    registry.parse_gin([str(config.GIN_DIR / gin_file)], [f"TRAIN_FILES = '{records}'", *bindings])
    task = config.experiment()
    model = task.build_model()
    model.compile(optimizer=build_optimizer())
    return task, tf.function(model.train_step)


def time_smoke(records, num_steps, warmup=3):
    """Steps/s (median) and input-wait fraction of gin/smoke.gin's training step on one device."""
    task, step = gin_training_step("smoke.gin", records)
    waits, totals = fetch_and_step(task.build_dataset(records, 2, training=True, seed=0), step, warmup, num_steps)
    gin.clear_config()
    return {"steps_per_s": round(1.0 / statistics.median(totals), 3),
            "input_wait_fraction": round(sum(waits) / sum(totals), 4)}


def fetch_and_step(dataset, step, warmup, num_steps):
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


def time_demo(records, num_steps, warmup=3):
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


# Variants of benchmark_train: (mixed precision policy, XLA).
TRAIN_VARIANTS = {"float32": (None, False), "mixed_bfloat16": ("mixed_bfloat16", False), "xla": (None, True),
                  "mixed_bfloat16_xla": ("mixed_bfloat16", True)}


def time_variant(records, policy, jit_compile, num_steps, warmup=2):
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


def benchmark_train():
    """ResNet-101 full vs bare step per variant, gin/smoke.gin, and the demo's step with its refinement plain
    and compiled."""
    with tempfile.TemporaryDirectory() as directory:
        records = synthetic_train_records(directory, FLAGS.train_images)
        results = {"smoke": time_smoke(records, FLAGS.train_steps), "demo": time_demo(records, FLAGS.demo_steps)}
        print(f"demo: {results['demo']}", file=sys.stderr, flush=True)
        for name in FLAGS.train_variants:
            policy, jit_compile = TRAIN_VARIANTS[name]
            results[name] = time_variant(records, policy, jit_compile, FLAGS.train_steps)
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    return {"train": results}


def benchmark_decode():
    """Decoding of perfect 801 x 529 maps at output stride 8 (one image, tf.functions) as the detector runs it
    (maps upsampled to the decoding grid): poses only and the full decode with masks, for every
    (decode stride, mask resolution) of --decode_variants. "poses" and "full" are the defaults' times."""
    skeleton = synthetic_maps.SKELETON
    specs = oracle.map_specs(skeleton)
    radius = 32.0
    size = tf.constant([DECODE_HEIGHT, DECODE_WIDTH])
    default = detector.PersonLabInference(output_stride=DECODE_STRIDE)
    # The defaults' pair is always timed: "poses" and "full" report it.
    named = list(DECODE_VARIANTS) if FLAGS.decode_accuracy_variants == ["all"] else FLAGS.decode_accuracy_variants
    unknown = sorted(set(named) - set(DECODE_VARIANTS))
    if unknown:   # before anything is timed
        raise app.UsageError(f"unknown decode variants {unknown}; expected {sorted(DECODE_VARIANTS)} or 'all'")
    measured = [f"{DECODE_VARIANTS[name][0]}:{DECODE_VARIANTS[name][1]}" for name in named]
    pairs = dict.fromkeys(FLAGS.decode_variants + measured + [f"{default.grid_stride}:{default.mask_resolution}"])
    variants = [variant.split(":") for variant in pairs]
    paths = {}
    for stride, resolution in variants:
        stride = int(stride)

        def grid(maps, stride=stride):
            upsampled = detector.upsample_maps({key: value[tf.newaxis] for key, value in maps.items()}, DECODE_STRIDE,
                                               stride)
            return {key: value[0] for key, value in upsampled.items()}

        paths[f"poses_s{stride}"] = tf.function(
            lambda maps, stride=stride, grid=grid: decode(grid(maps), stride, radius, skeleton, with_masks=False),
            input_signature=[specs])
        # The detector's own path from the maps on its decoding grid (no network: the maps are given).
        full = detector.Detector(None, radius, skeleton, dataclasses.replace(
            default, decode_stride=stride, mask_resolution=resolution))
        paths[f"full_s{stride}_{resolution}"] = tf.function(
            lambda maps, grid=grid, full=full: full.detect_grid_maps(
                {key: value[tf.newaxis] for key, value in grid(maps).items()}, 1.0, size),
            input_signature=[specs])
    functions, counts = {}, {}
    for people in FLAGS.decode_people:
        persons = synthetic_maps.scene_keypoints(int(people), DECODE_HEIGHT, DECODE_WIDTH, seed=int(people))
        maps = {key: tf.constant(value) for key, value in synthetic_maps.perfect_maps(
            persons, DECODE_HEIGHT, DECODE_WIDTH, DECODE_STRIDE).items()}
        counts[people] = int(paths[f"poses_s{default.grid_stride}"](maps)[keys.Detection.NUM_DETECTIONS])
        for path, function in paths.items():
            output = keys.Detection.MASKS if path.startswith("full") else keys.Detection.NUM_DETECTIONS
            functions[(path, people)] = lambda maps=maps, function=function, output=output: function(maps)[output].numpy()
    medians = interleaved_medians(functions, FLAGS.decode_repeats)
    results = {path: {people: round(medians[(path, people)], 2) for people in FLAGS.decode_people} for path in paths}
    results["poses"] = results[f"poses_s{default.grid_stride}"]
    results["full"] = results[f"full_s{default.grid_stride}_{default.mask_resolution}"]
    for people in FLAGS.decode_people:
        print(f"{people:>3} people ({counts[people]} detected): "
              + ", ".join(f"{path} {results[path][people]:.1f} ms" for path in paths), file=sys.stderr)
    summary = {"decode_ms": results, "defaults": {"decode_stride": default.grid_stride,
                                                  "mask_resolution": default.mask_resolution}}
    if named:
        summary.update(decode_accuracy(named, results))
    return summary


def variant_bindings(name: str) -> list:
    """The gin bindings of a DECODE_VARIANTS entry."""
    stride, masks, extra = DECODE_VARIANTS[name]
    return [f"PersonLabInference.decode_stride = {stride}", f"PersonLabInference.mask_resolution = '{masks}'",
            *extra]


def script_headline(name: str, arguments: list) -> Dict[str, Any]:
    """The JSON last stdout line of scripts/<name> run with `arguments` (its stderr passed through on failure)."""
    process = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), name), *arguments],
                             capture_output=True, text=True)
    if process.returncode:
        raise RuntimeError(f"{name} failed: {process.stderr.strip().splitlines()[-1:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def decode_accuracy(names: list, timings: Dict[str, Dict[str, float]]) -> Dict[str, Any]:
    """Keypoint and segmentation AP of each variant on the realistic oracle (scripts/oracle_eval.py, the mean
    over --decode_oracle_seeds) and on a trained network (scripts/evaluate.py --model_dir), each given; the
    variants' full-decode ms at the most people timed; each variant's worst shortfall from the best score; and
    the default the rule of docs/decoding.md §7 picks (evaluation/selection.py; None when no variant is
    within --decode_tolerance of the best on every score)."""
    scores: Dict[str, Dict[str, float]] = {name: {} for name in names}
    for name in names:
        bindings = [item for binding in variant_bindings(name) for item in ("--gin_bindings", binding)]
        if FLAGS.decode_oracle_annotations:
            runs = [script_headline("oracle_eval.py", [
                "--task", "personlab", "--annotations", FLAGS.decode_oracle_annotations,
                "--images", FLAGS.decode_oracle_images, "--map_noise", "realistic", "--noise_seed", seed, *bindings,
                *[item for binding in FLAGS.decode_oracle_bindings for item in ("--gin_bindings", binding)]])
                for seed in FLAGS.decode_oracle_seeds]
            scores[name].update({f"oracle {metric}": round(statistics.mean(run[metric] for run in runs), 4)
                                 for metric in ACCURACY})
        if FLAGS.decode_model_dir:
            run = script_headline("evaluate.py", [
                "--model_dir", FLAGS.decode_model_dir, "--max_side", str(FLAGS.decode_model_max_side),
                "--annotations", FLAGS.decode_model_annotations, "--images", FLAGS.decode_model_images, *bindings])
            scores[name].update({f"network {metric}": round(run[metric], 4) for metric in ACCURACY})
        print(f"{name}: {scores[name]}", file=sys.stderr, flush=True)
    people = max(FLAGS.decode_people, key=int)
    costs = {}
    for name in names:
        stride, masks, _ = DECODE_VARIANTS[name]
        costs[name] = timings.get(f"full_s{stride}_{masks}", {}).get(people)
    timed = {name: cost for name, cost in costs.items() if cost is not None}
    chosen = selection.cheapest_within({name: scores[name] for name in timed}, timed, FLAGS.decode_tolerance)
    shortfalls = {name: round(value, 4) for name, value in selection.worst_shortfalls(scores).items()}
    return {"accuracy": scores, "worst_shortfall": shortfalls, "full_ms": {"people": people, **costs},
            "chosen": chosen}


def jpeg_bytes(height, width, seed=0):
    """An encoded JPEG of a smooth random picture."""
    rng = np.random.default_rng(seed)
    small = tf.constant(rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3)), tf.float32)
    picture = tf.cast(tf.image.resize(small[tf.newaxis], [height, width])[0], tf.uint8)
    return tf.io.encode_jpeg(picture, quality=90).numpy()


def benchmark_serve():
    """SavedModel latency (encoded JPEG -> detections) vs the bare backbone forward at 801 x 529, and the
    inference network's forward plain vs compiled by XLA (`xla_ratio`: compiled over plain)."""
    network = PersonLabNetwork(FLAGS.serve_backbone, FLAGS.serve_output_stride, auxiliary_heads=False)
    task = PersonLabTask(network=network, inference=detector.PersonLabInference(FLAGS.serve_output_stride,
                                                                                max_side=DECODE_WIDTH))
    model = task.build_model(inference=True)
    inference = model.inference_model()
    run = task.build_detector(inference)
    backbone = tf.function(model.backbone, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    pixels = tf.cast(tf.io.decode_jpeg(jpeg_bytes(DECODE_HEIGHT, DECODE_WIDTH)), tf.float32)[tf.newaxis]

    def forward_call(jit):
        """The inference forward on `pixels`, plain or compiled by XLA, its outputs fetched."""
        function = tf.function(lambda images: inference(images, training=False), jit_compile=jit)
        return lambda: [t.numpy() for t in function(pixels).values()]

    forward = {jit: forward_call(jit) for jit in (False, True)}
    first_ms = {jit: median_ms(call, repeats=1, warmup=0) for jit, call in forward.items()}
    request = tf.constant([jpeg_bytes(DECODE_HEIGHT, DECODE_WIDTH)])
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        serving.export(run, directory, {"task": task.name, "config": task.config()})
        print(f"exported in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        serve = tf.saved_model.load(directory).signatures[serving.SERVING_DEFAULT]
        outputs = serve(images=request)
        print(f"{int(outputs[keys.Detection.NUM_DETECTIONS][0])} detections, "
              f"masks {outputs[keys.Detection.MASKS].shape}", file=sys.stderr)
        medians = interleaved_medians({
            "serve": lambda: serve(images=request)[keys.Detection.MASKS].numpy(),
            "backbone": lambda: [t.numpy() for t in backbone(pixels)],
            "forward": forward[False],
            "forward_xla": forward[True],
        }, FLAGS.serve_repeats)
    return {"serve_ms": round(medians["serve"], 1), "backbone_ms": round(medians["backbone"], 1),
            "ratio": round(medians["serve"] / medians["backbone"], 3), "forward_ms": round(medians["forward"], 1),
            "forward_xla_ms": round(medians["forward_xla"], 1),
            "xla_ratio": round(medians["forward_xla"] / medians["forward"], 3),
            "forward_first_call_ms": round(first_ms[False], 1), "forward_xla_first_call_ms": round(first_ms[True], 1)}


def limb_matching_inputs(seed=1):
    """Random inputs of one image's limb matching: limb heatmaps of an 801 x 529 frame at stride 4 and 20
    candidates per keypoint type, uniformly spread over it (every connection score near 0.5, all usable)."""
    rng = np.random.default_rng(seed)
    height, width, stride = DECODE_HEIGHT // 4 + 1, DECODE_WIDTH // 4 + 1, 4
    limb_maps = tf.constant(rng.random((height, width, len(COCO17.limbs))), tf.float32)
    positions = tf.constant(rng.random((COCO17.num_keypoints, 20, 2)) * [DECODE_WIDTH - 1, DECODE_HEIGHT - 1],
                            tf.float32)
    return limb_maps, positions, tf.ones([COCO17.num_keypoints, 20], tf.bool), stride


def benchmark_matching():
    """Each matcher's agreement with the Hungarian assignment and milliseconds per image."""
    scores, valid = assignment_check.random_score_matrices(FLAGS.matching_matrices, 20, seed=0)
    settings = {"lp_plain_pgd": dataclasses.replace(matching.EVALUATION, accelerated=False)}
    for spec in FLAGS.matching_lp_settings:
        steps, sweeps, step_size = spec.split("x")
        settings[f"lp_{spec}"] = matching.SolverSettings(int(steps), int(sweeps), float(step_size))
    matchers = dict(matching.MATCHERS, **{name: lambda s, v, lp=lp: matching.round_assignment(
        matching.solve_assignment(s, v, lp)) for name, lp in settings.items()})
    agreements = {}
    for name, matcher in matchers.items():
        matchings = tf.function(matcher)(scores, valid).numpy()
        agreements[name] = assignment_check.agreement(matchings, scores, valid, linear_sum_assignment)
        print(f"agreement with the Hungarian assignment ({name}): {agreements[name]:.3f}", file=sys.stderr)
    limb_maps, positions, candidates, stride = limb_matching_inputs()
    limb_scores = tf.constant(np.random.default_rng(1).random((len(COCO17.limbs), 20, 20)), tf.float32)
    every = tf.ones(limb_scores.shape, tf.bool)
    functions = {}
    for name, matcher in matching.MATCHERS.items():
        options = PartsDecoding(matcher=name)
        whole = tf.function(lambda options=options: limb_connections(limb_maps, positions, candidates, stride,
                                                                     COCO17.limbs, options)[0])
        alone = tf.function(lambda matcher=matcher: matcher(limb_scores, every))
        functions[(name, "ms_per_image")] = lambda whole=whole: whole().numpy()
        functions[(name, "solver_ms_per_image")] = lambda alone=alone: alone().numpy()
    for name in FLAGS.matching_lp_settings:
        alone = tf.function(lambda matcher=matchers[f"lp_{name}"]: matcher(limb_scores, every))
        functions[(f"lp_{name}", "solver_ms_per_image")] = lambda alone=alone: alone().numpy()
    training = tf.function(lambda: matching.solve_assignment(limb_scores, every, matching.TRAINING))
    functions[("training_lp", "solver_ms_per_image")] = lambda: training().numpy()
    medians = interleaved_medians(functions, FLAGS.matching_repeats)
    results = {name: {"agreement": agreement} for name, agreement in agreements.items()}
    results["training_lp"] = {}
    for (name, what), value in medians.items():
        results[name][what] = round(value, 2)
    default = PartsDecoding().matcher
    for name, result in results.items():
        print(f"{name}: {result}", file=sys.stderr)
    return {"matcher": default, "matching_agreement": agreements[default],
            "ms_per_image": results[default]["ms_per_image"], "matchers": results, "matrices": FLAGS.matching_matrices,
            "settings": {"training": dataclasses.asdict(matching.TRAINING),
                         "evaluation": dataclasses.asdict(matching.EVALUATION)}}


def separate_images(serve: Any, task: Task, image_dir: str, output_dir: str) -> int:
    """scripts/predict.py's work on every JPEG of `image_dir`: the file's bytes through `serving_default`, the
    decoded image, COCO results, the overlay PNG. Returns the number of images."""
    paths = sorted(glob.glob(os.path.join(image_dir, "*.jpg")))
    for image_id, path in enumerate(paths, 1):
        with open(path, "rb") as f:
            data = f.read()
        detections = serving.image_outputs(serve(**{serving.INPUT_NAME: tf.constant([data])}))
        image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        detections[keys.Detection.MASKS] = task.instance_masks(detections)
        results.keypoint_results(image_id, detections, task.skeleton)
        results.segmentation_results(image_id, detections, task.skeleton.category_id)
        for suffix, picture in task.pictures(image, detections).items():
            overlay.write_png(os.path.join(output_dir, f"{os.path.basename(path)}{suffix}.png"), picture)
    return len(paths)


def video_path(loaded: Any, task: Task, video: str, output_dir: str, overlap: bool) -> int:
    """The video command's work (scripts/track_video.py) on `video`; returns the number of frames."""
    with video_io.VideoSource(video) as source, \
            video_io.VideoWriter(os.path.join(output_dir, "tracked.mp4"), source.fps) as out:
        recorder = video_pipeline.Recorder(task.skeleton, out)
        return video_pipeline.run(source.frames(), video_pipeline.saved_model_detector(loaded, task),
                                  Tracker(task.skeleton), recorder, overlap=overlap)


def video_stage_ms(loaded: Any, task: Task, video: str, output_dir: str) -> Dict[str, float]:
    """Median milliseconds per frame of each stage of the video path run one after the other: decoding the
    frame, the SavedModel, the tracker, the COCO results, drawing the overlay, encoding it."""
    detect = video_pipeline.saved_model_detector(loaded, task)
    tracker = Tracker(task.skeleton)
    times = {name: [] for name in ("decode", "inference", "tracker", "results", "overlay", "encode")}

    def timed(name, function):
        start = time.perf_counter()
        value = function()
        times[name].append((time.perf_counter() - start) * 1e3)
        return value

    with video_io.VideoSource(video) as source, \
            video_io.VideoWriter(os.path.join(output_dir, "stages.mp4"), source.fps) as out:
        frames = source.frames()
        while True:
            read = timed("decode", lambda: next(frames, None))
            if read is None:
                times["decode"].pop()   # the end of the stream, not a frame
                break
            index, image = read
            detections = timed("inference", lambda: detect(image))
            tracked = video_pipeline.TrackedFrame(index, image, detections,
                                                  timed("tracker", lambda: tracker.update(detections)))
            timed("results", lambda: video_pipeline.frame_results(tracked, task.skeleton))
            picture = timed("overlay", lambda: video_pipeline.overlay_frame(tracked, task.skeleton, overlay.MIN_SCORE))
            timed("encode", lambda: out.write(picture))
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def benchmark_video() -> Dict[str, Any]:
    if not os.path.isdir(FLAGS.video_saved_model):
        raise app.UsageError(f"video: no SavedModel at {FLAGS.video_saved_model} (run make demo, or give "
                             "--video_saved_model)")
    loaded = tf.saved_model.load(FLAGS.video_saved_model)
    task = registry.task_of_saved_model(loaded)
    serve = loaded.signatures[serving.SERVING_DEFAULT]
    measured = {}
    for size in FLAGS.video_sizes:
        height, width = (int(side) for side in size.split("x"))
        with tempfile.TemporaryDirectory() as directory:
            clip = os.path.join(directory, "clip")
            synthetic_video.generate_clip(clip, seed=0, index=0, num_frames=FLAGS.video_frames, size=(height, width))
            video = os.path.join(clip, synthetic_video.VIDEO_FILE)
            image_dir = os.path.join(clip, coco_format.IMAGES_DIR)
            ways = {
                "video_overlapped": lambda out: video_path(loaded, task, video, out, overlap=True),
                "video_sequential": lambda out: video_path(loaded, task, video, out, overlap=False),
                "separate_images": lambda out: separate_images(serve, task, image_dir, out),
            }
            seconds = {name: [] for name in ways}
            for way in ways.values():  # warm-up: tracing of both signatures at this size
                way(tempfile.mkdtemp(dir=directory))
            for round_ in range(FLAGS.video_rounds):
                for name, way in ways.items():
                    out = tempfile.mkdtemp(dir=directory)
                    start = time.perf_counter()
                    frames = way(out)
                    seconds[name].append(time.perf_counter() - start)
                    print(f"{size} round {round_ + 1} {name}: {frames / seconds[name][-1]:.2f} frames/s",
                          file=sys.stderr)
            stages = video_stage_ms(loaded, task, video, directory)
        rates = {name: round(frames / statistics.median(times), 2) for name, times in seconds.items()}
        measured[size] = {"frames_per_s": rates, "stage_ms": stages,
                          "overlapped_over_separate": round(rates["video_overlapped"] / rates["separate_images"], 3),
                          "overlapped_over_sequential": round(rates["video_overlapped"] / rates["video_sequential"], 3)}
        print(f"{size}: {measured[size]}", file=sys.stderr)
    first = measured[FLAGS.video_sizes[0]]
    return {"frames": FLAGS.video_frames, "overlapped_over_separate": first["overlapped_over_separate"],
            "overlapped_over_sequential": first["overlapped_over_sequential"], "sizes": measured,
            "saved_model": FLAGS.video_saved_model, "cpus": os.cpu_count()}


def main(arguments):
    if len(arguments) != 1 or arguments[0] not in MODES:
        raise app.UsageError(f"usage: benchmark.py {{{'|'.join(MODES)}}} [flags]")
    return {"targets": benchmark_targets, "train": benchmark_train, "decode": benchmark_decode,
            "serve": benchmark_serve, "matching": benchmark_matching, "video": benchmark_video}[arguments[0]]()


if __name__ == "__main__":
    cli.run(main, arguments=True)
