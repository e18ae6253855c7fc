"""Tracking measured on clips with ground-truth identities: MOTA, IDF1, identity switches (docs/video.md).

    python scripts/evaluate_tracking.py --clips outputs/clips --saved_model outputs/demo/saved_model \
        [--sweep "oks_weight=0,0.5,1"] [--gin_bindings "TrackerOptions.max_missed = 5"]
    python scripts/evaluate_tracking.py --clips outputs/clips --oracle none|realistic --task personlab \
        [--gin_bindings "PersonLabInference.max_side = 641"]

`--clips` is one clip folder or a folder of them (scripts/make_synthetic_video.py). The detections of every
frame come from `--saved_model` on the clip's `video.mp4`, or from the task's oracle (`--oracle none`: perfect
maps, the tracker's upper bound; `realistic`: maps degraded as a trained network errs, docs/decoding.md); they
are computed once, then the tracker (options by gin) runs on them. Each `--sweep NAME=V1,V2,...` varies one
TrackerOptions field over the values with the others as configured; every configuration's overall figures are
printed as a table on stderr. The line before the last holds every metric of every configuration; the last
line is the configured tracker's overall MOTA, IDF1 and identity switches, with the clips and frames.
"""

import ast
import dataclasses
import json
import sys
from typing import List, Optional, Sequence, Tuple

import tensorflow as tf
from absl import flags

from personlab_tf import cli, registry
from personlab_tf.video import evaluation, pipeline
from personlab_tf.video.tracker import TrackerOptions

FLAGS = flags.FLAGS
flags.DEFINE_string("clips", None, "A clip folder or a folder of clip folders.", required=True)
flags.DEFINE_string("saved_model", None, "SavedModel whose detections are tracked.")
flags.DEFINE_enum("oracle", None, ["none", "realistic"], "Track the task's oracle detections instead (map noise).")
flags.DEFINE_enum("task", None, sorted(registry.TASKS), "With --oracle: the task, when no gin file binds one.")
flags.DEFINE_integer("noise_seed", 0, "With --oracle realistic: the seed of the degradation.")
cli.define_gin_flags("Gin files (tracker options; with --oracle the task's too)", "TrackerOptions.max_missed = 5")
flags.DEFINE_multi_string("sweep", [], "NAME=V1,V2,...: also evaluate TrackerOptions.NAME at each value.")

HEADLINE = ("mota", "idf1", "num_switches")


def sweep_options(base: TrackerOptions, sweeps: Sequence[str]) -> List[Tuple[str, TrackerOptions]]:
    """[(label, options)]: the configured options, then one per swept value.

    Raises:
      ValueError: a sweep that is not NAME=V1,V2,... of a TrackerOptions field.
    """
    names = {field.name for field in dataclasses.fields(TrackerOptions)}
    variants = [("configured", base)]
    for sweep in sweeps:
        name, _, values = sweep.partition("=")
        name = name.strip()
        if name not in names or not values:
            raise ValueError(f"--sweep {sweep!r}: expected NAME=V1,V2,... with NAME one of {', '.join(sorted(names))}")
        for text in values.split(","):
            try:
                value = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                raise ValueError(f"--sweep {sweep!r}: {text.strip()!r} is not a number or literal") from None
            variants.append((f"{name}={value!r}", dataclasses.replace(base, **{name: value})))
    return variants


def rate(value: Optional[float]) -> str:
    """A metric for the table, 7 wide; "-" where it is undefined (no person in the clips)."""
    return f"{value:7.4f}" if value is not None else f"{'-':>7}"


def main():
    if (FLAGS.saved_model is None) == (FLAGS.oracle is None):
        raise ValueError("give either --saved_model or --oracle")
    paths = evaluation.clip_dirs(FLAGS.clips)
    if FLAGS.oracle:
        task = cli.task_of_gin(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.task,
                               f"{paths[0]}/{evaluation.CLIP_ANNOTATIONS}")
    else:
        cli.parse_gin()
    variants = sweep_options(TrackerOptions(), FLAGS.sweep)
    if FLAGS.oracle:
        seed = None if FLAGS.oracle == "none" else FLAGS.noise_seed
        clips = [evaluation.oracle_clip(path, task, seed) for path in paths]
    else:
        loaded = tf.saved_model.load(FLAGS.saved_model)
        task = registry.task_of_saved_model(loaded)
        detect = pipeline.saved_model_detector(loaded, task)
        clips = [evaluation.network_clip(path, detect) for path in paths]
    measured = {}
    print(f"{'configuration':<28} {'MOTA':>7} {'IDF1':>7} {'IDsw':>5} {'FP':>5} {'FN':>5}", file=sys.stderr)
    for label, options in variants:
        overall = evaluation.evaluate(clips, task.skeleton, options)["overall"]
        measured[label] = {"options": dataclasses.asdict(options), "overall": overall}
        print(f"{label:<28} {rate(overall['mota'])} {rate(overall['idf1'])} {overall['num_switches']:5d} "
              f"{overall['num_false_positives']:5d} {overall['num_misses']:5d}", file=sys.stderr)
    print(json.dumps({"source": FLAGS.saved_model or f"oracle:{FLAGS.oracle}", "variants": measured}))
    headline = measured["configured"]["overall"]
    return {**{name: headline[name] for name in HEADLINE}, "clips": len(clips),
            "frames": sum(len(clip.detections) for clip in clips)}


if __name__ == "__main__":
    cli.run(main, also=(tf.errors.OpError,))
