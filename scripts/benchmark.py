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

import json
import os
import statistics
import subprocess
import sys
from typing import Any, Dict

from absl import app, flags

from personlab_tf import cli
from personlab_tf.evaluation import selection
from personlab_tf.tasks.parts import benchmark as parts_benchmark
from personlab_tf.tasks.personlab import benchmark as personlab_benchmark
from personlab_tf.train import benchmark as train_benchmark
from personlab_tf.video import benchmark as video_benchmark

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 30, "Timed runs per setting (the median is reported).")
flags.DEFINE_list("people", ["1", "5", "15", "30"], "targets: person counts to time.")
flags.DEFINE_integer("crop_size", 801, "targets: crop side in pixels.")
flags.DEFINE_integer("target_stride", 8, "targets: target stride.")
flags.DEFINE_integer("image_height", 480, "targets: synthetic image height.")
flags.DEFINE_integer("image_width", 640, "targets: synthetic image width.")
flags.DEFINE_integer("train_steps", 10, "train: timed steps per configuration (after the warm-up steps).")
flags.DEFINE_list("train_variants", list(train_benchmark.TRAIN_VARIANTS),
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

ACCURACY = ("keypoints_AP", "segm_AP")


def benchmark_decode() -> Dict[str, Any]:
    """tasks/personlab/benchmark.decode_benchmark of the flags' variants, and the AP of the DECODE_VARIANTS
    --decode_accuracy_variants names (`decode_accuracy`)."""
    variants = personlab_benchmark.DECODE_VARIANTS
    named = list(variants) if FLAGS.decode_accuracy_variants == ["all"] else FLAGS.decode_accuracy_variants
    unknown = sorted(set(named) - set(variants))
    if unknown:   # before anything is timed
        raise app.UsageError(f"unknown decode variants {unknown}; expected {sorted(variants)} or 'all'")
    summary = personlab_benchmark.decode_benchmark(FLAGS.decode_variants, FLAGS.decode_people, FLAGS.decode_repeats,
                                                   named)
    if named:
        summary.update(decode_accuracy(named, summary["decode_ms"]))
    return summary


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
        bindings = [item for binding in personlab_benchmark.variant_bindings(name) for item in ("--gin_bindings", binding)]
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
        stride, masks, _ = personlab_benchmark.DECODE_VARIANTS[name]
        costs[name] = timings.get(f"full_s{stride}_{masks}", {}).get(people)
    timed = {name: cost for name, cost in costs.items() if cost is not None}
    chosen = selection.cheapest_within({name: scores[name] for name in timed}, timed, FLAGS.decode_tolerance)
    shortfalls = {name: round(value, 4) for name, value in selection.worst_shortfalls(scores).items()}
    return {"accuracy": scores, "worst_shortfall": shortfalls, "full_ms": {"people": people, **costs},
            "chosen": chosen}


BENCHMARKS = {
    "targets": lambda: personlab_benchmark.targets_benchmark(FLAGS.crop_size, FLAGS.target_stride, FLAGS.people,
                                                             FLAGS.image_height, FLAGS.image_width, FLAGS.repeats),
    "train": lambda: train_benchmark.train_benchmark(FLAGS.train_images, FLAGS.train_steps, FLAGS.demo_steps,
                                                     FLAGS.train_variants),
    "decode": benchmark_decode,
    "serve": lambda: personlab_benchmark.serve_benchmark(FLAGS.serve_backbone, FLAGS.serve_output_stride,
                                                         FLAGS.serve_repeats),
    "matching": lambda: parts_benchmark.matching_benchmark(FLAGS.matching_matrices, FLAGS.matching_repeats,
                                                           FLAGS.matching_lp_settings),
    "video": lambda: video_benchmark.video_benchmark(FLAGS.video_saved_model, FLAGS.video_sizes, FLAGS.video_frames,
                                                     FLAGS.video_rounds),
}
MODES = tuple(BENCHMARKS)


def main(arguments):
    if len(arguments) != 1 or arguments[0] not in MODES:
        raise app.UsageError(f"usage: benchmark.py {{{'|'.join(MODES)}}} [flags]")
    return BENCHMARKS[arguments[0]]()


if __name__ == "__main__":
    cli.run(main, arguments=True)
