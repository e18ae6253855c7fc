"""A task's main job on the built-in synthetic dataset: data -> training -> export -> evaluation -> pictures.

  python scripts/demo.py [--output_dir outputs/demo] [--num_steps N]            (what `make demo` runs)
  python scripts/demo.py --task parts [--num_steps N] [--matching_steps M]      (what `make demo-parts` runs)

`--task personlab` (default): COCO-like synthetic people, gin/demo.gin, the COCO metrics over a tfds split;
it ends with a synthetic video (`make_synthetic_video.py`: people walking, crossing, entering and leaving)
tracked by the exported model (`track_video.py`; docs/video.md): `video_tracked/video_tracked.mp4`; the last
stdout line is `{"keypoints_AP": ..., "segm_AP": ..., "MOTA": ..., "IDF1": ..., "wall_s": ...}`.
`--task parts`: the part-parsing scenes (`make_synthetic_coco.py --scene parts`), records with their part
labels, two training stages (gin/parts_demo.gin, then gin/parts_demo_matching.gin from the first stage's
weights), the part metrics over the validation JSON; the last stdout line is
`{"APp_50": ..., "APp_vol": ..., "PCP50": ..., "mIoU": ..., "wall_s": ...}` (docs/parts.md).

Every stage runs the project's own command-line script, so the demo is also a worked example of them;
their output is shown as it comes. Stages whose results exist already are reused (the synthetic data,
the records, the tfds dataset) or resumed (training continues from its last checkpoint), so a demo that
was interrupted picks up where it stopped.
"""

import dataclasses
import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import flags

from personlab_tf import cli

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
GIN = REPO / "gin"


@dataclasses.dataclass(frozen=True)
class Demo:
    """What the demo runs for one task.

    Attributes:
      output_dir: default output folder under outputs/.
      scene: `make_synthetic_coco.py --scene`.
      stages: gin files of the training stages; each stage after the first starts from the previous one's
        weights (`train.init_checkpoint`).
      max_side: default larger side of the exported model's frame.
      headline: the evaluation summary's figures printed on the last line.
      video_frames: default frames of the closing synthetic video (0: none).
    """

    output_dir: str
    scene: str
    stages: Tuple[str, ...]
    max_side: int
    headline: Tuple[str, ...]
    video_frames: int


DEMOS = {
    # 641: the ~350 px validation images upscaled about 1.8x, which small figures need (docs/demo.md).
    "personlab": Demo("demo", "coco", ("demo.gin",), 641, ("keypoints_AP", "segm_AP"), 60),
    # 385: about 1x the 256-448 px images, the magnifications the part parser sees in training (docs/parts.md).
    "parts": Demo("demo_parts", "parts", ("parts_demo.gin", "parts_demo_matching.gin"), 385,
                  ("APp_50", "APp_vol", "PCP50", "mIoU"), 0),
}
PART_SET = "synthetic"  # the part classes of the synthetic people (personlab_tf/tasks/parts/part_sets.py)

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "personlab", sorted(DEMOS), "The task to demonstrate.")
flags.DEFINE_string("output_dir", None, "Where every output of the demo goes (default: outputs/demo for PersonLab, "
                    "outputs/demo_parts for part parsing).")
flags.DEFINE_integer("train_images", 600, "Synthetic training images.")
flags.DEFINE_integer("val_images", 60, "Synthetic validation images.")
flags.DEFINE_integer("num_steps", None, "Steps of the first (PersonLab: the only) training stage (default: its gin "
                     "file's train.num_steps).")
flags.DEFINE_integer("matching_steps", None, "Part parsing: steps of the second stage, with the matching loss "
                     "(default: gin/parts_demo_matching.gin's).")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings for every training stage and the export "
                          "(e.g. a smaller model for a quick check).")
flags.DEFINE_integer("num_pictures", 8, "Validation images drawn with their predictions.")
flags.DEFINE_integer("max_side", None, "Larger side of the frame the exported model sees (default: 641 for "
                     "PersonLab, 385 for part parsing; docs/demo.md and docs/parts.md have the measured choices).")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic data (validation uses seed + 1, the video seed + 2).")
flags.DEFINE_integer("video_frames", None, "Frames of the closing synthetic video tracked by the exported model "
                     "(default: 60 for PersonLab, 0 = none for part parsing, whose demo keeps to its 20 minutes).")


class StageError(ValueError):
    """A stage's command failed; the message names the stage and its exit code (one line, cli.run)."""


def run_stage(name: str, command: Sequence[Any]) -> Optional[Dict[str, Any]]:
    """Runs one stage's command, streaming its output; returns the JSON of its last stdout line (or None)."""
    print(f"\n=== {name}: {' '.join(str(c) for c in command)}", flush=True)
    start = time.perf_counter()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    process = subprocess.Popen([sys.executable] + [str(c) for c in command], stdout=subprocess.PIPE, text=True,
                               env=env, cwd=REPO)
    last = ""
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.strip():
            last = line.strip()
    if process.wait():
        raise StageError(f"stage '{name}' failed with exit code {process.returncode}")
    print(f"=== {name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    try:
        return json.loads(last)
    except ValueError:
        return None


def synthetic_data(root: Path, split: str, num_images: int, seed: int, scene: str) -> Path:
    """The synthetic COCO-format split (reused when present with the requested size)."""
    folder = root / "synthetic" / split
    annotations = folder / "person_keypoints.json"
    if annotations.exists() and len(json.loads(annotations.read_text())["images"]) == num_images:
        print(f"=== synthetic {split}: reusing {folder}", flush=True)
    else:
        run_stage(f"synthetic {split}", [SCRIPTS / "make_synthetic_coco.py", "--output", folder,
                                         "--num_images", num_images, "--seed", seed, "--scene", scene])
    return folder


def records(root: Path, data: Path, with_parts: bool) -> str:
    """TFRecords of the synthetic training split, with its part labels for part parsing (reused when present)."""
    prefix = root / "records" / "train"
    if glob.glob(f"{prefix}-*.tfrecord"):
        print(f"=== records: reusing {prefix}-*", flush=True)
    else:
        parts = ["--part_labels", data / "part_labels", "--part_set", PART_SET] if with_parts else []
        run_stage("records", [SCRIPTS / "create_tfrecords.py", "--annotations", data / "person_keypoints.json",
                              "--images", data / "images", "--output", prefix, "--num_shards", 4] + parts)
    return f"{prefix}-*.tfrecord"


def coco_tree(root: Path, data: Path) -> Path:
    """The synthetic validation split laid out as a COCO 2017 tree for the tfds builder."""
    from personlab_tf.tfds_builders.coco_person import layout
    tree = root / "coco"
    if not layout.missing_paths(tree, layout.VALIDATION):
        return tree
    layout.arrange_coco_tree(tree, layout.VALIDATION, data / "person_keypoints.json", data / "images")
    return tree


def picture_inputs(root: Path, data: Path, count: int) -> Path:
    """A folder linking the first `count` validation images, for scripts/predict.py."""
    folder = root / "picture_inputs"
    folder.mkdir(exist_ok=True)
    for path in sorted((data / "images").glob("*.jpg"))[:count]:
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path)
    return folder


def tracked_video(root: Path, export_dir: Path, num_frames: int, seed: int) -> Dict[str, Any]:
    """A synthetic clip with ground-truth identities (reused when present), tracked by the exported model;
    returns scripts/track_video.py's summary (MOTA, IDF1, identity switches against the clip's truth)."""
    from personlab_tf.data import coco_format, synthetic_video
    clip = root / "video" / synthetic_video.clip_folder(0)
    annotations = clip / coco_format.ANNOTATIONS_FILE
    if annotations.exists() and len(json.loads(annotations.read_text())["images"]) == num_frames:
        print(f"=== synthetic video: reusing {clip}", flush=True)
    else:
        run_stage("synthetic video", [SCRIPTS / "make_synthetic_video.py", "--output", root / "video",
                                      "--num_clips", 1, "--num_frames", num_frames, "--seed", seed])
    return run_stage("tracked video", [SCRIPTS / "track_video.py", "--saved_model", export_dir,
                                       "--video", clip / synthetic_video.VIDEO_FILE, "--annotations", annotations,
                                       "--output_dir", root / "video_tracked"])


def train_stages(demo: Demo, root: Path, bindings: Sequence[str],
                 steps: Sequence[Optional[int]]) -> Tuple[List[Path], List[Any]]:
    """Runs the training stages, each after the first from the previous one's weights.

    Returns:
      (the stages' model_dirs, the gin arguments of the last stage, which the export reuses).
    """
    model_dirs, arguments = [], []
    for index, (gin_file, num_steps) in enumerate(zip(demo.stages, steps)):
        single = len(demo.stages) == 1
        model_dir = root / ("model" if single else f"model_stage{index + 1}")
        arguments = ["--gin_file", GIN / gin_file]
        arguments += [item for binding in bindings for item in ("--gin_bindings", binding)]
        if model_dirs:
            arguments += ["--gin_bindings", f"train.init_checkpoint = '{model_dirs[-1]}'"]
        run_stage("train" if single else f"train stage {index + 1} ({gin_file})",
                  [SCRIPTS / "train.py", "--model_dir", model_dir] + arguments
                  + (["--num_steps", num_steps] if num_steps else []))
        model_dirs.append(model_dir)
    return model_dirs, arguments


def main():
    start = time.perf_counter()
    demo = DEMOS[FLAGS.task]
    parts = FLAGS.task == "parts"
    if FLAGS.matching_steps is not None and not parts:
        raise ValueError("--matching_steps is the second stage of --task parts; PersonLab trains in one stage")
    root = Path(FLAGS.output_dir or REPO / "outputs" / demo.output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    train_data = synthetic_data(root, "train", FLAGS.train_images, FLAGS.seed, demo.scene)
    val_data = synthetic_data(root, "val", FLAGS.val_images, FLAGS.seed + 1, demo.scene)
    train_files = records(root, train_data, with_parts=parts)
    bindings = [f"TRAIN_FILES='{train_files}'"] + FLAGS.gin_bindings
    export_dir, evaluation_dir = root / "saved_model", root / "evaluation"
    if parts:
        data_flags = ["--annotations", val_data / "person_keypoints.json", "--images", val_data / "images"]
    else:
        data_flags = ["--data_dir", root / "tfds", "--manual_dir", coco_tree(root, val_data), "--split", "validation"]
    model_dirs, gin_args = train_stages(demo, root, bindings, (FLAGS.num_steps, FLAGS.matching_steps))
    run_stage("export", [SCRIPTS / "export_saved_model.py", "--model_dir", model_dirs[-1],
                         "--export_dir", export_dir, "--max_side", FLAGS.max_side or demo.max_side] + gin_args)
    metrics = run_stage("evaluate", [SCRIPTS / "evaluate.py", "--saved_model", export_dir,
                                     "--output_dir", evaluation_dir] + data_flags)
    run_stage("pictures", [SCRIPTS / "predict.py", "--saved_model", export_dir,
                           "--images", picture_inputs(root, val_data, FLAGS.num_pictures),
                           "--output_dir", root / "predictions"])
    video_frames = demo.video_frames if FLAGS.video_frames is None else FLAGS.video_frames
    video = tracked_video(root, export_dir, video_frames, FLAGS.seed + 2) if video_frames else None
    print("\nDemo outputs:")
    for what, where in (("synthetic data", root / "synthetic"), ("training records", root / "records"),
                        ("checkpoints and TensorBoard logs", "  ".join(str(path) for path in model_dirs)),
                        ("SavedModel", export_dir), ("results and metrics", evaluation_dir),
                        ("pictures of predictions", root / "predictions")):
        print(f"  {what:<34} {where}")
    headline = {key: round(float(metrics[key]), 4) for key in demo.headline}
    if video:
        print(f"  {'tracked video (open it)':<34} {video['overlay']}")
        headline.update({name: None if video[key] is None else round(float(video[key]), 4)
                         for name, key in (("MOTA", "mota"), ("IDF1", "idf1"))})  # None: no person in the clip
    print("  " + ", ".join(f"{key} {value:.3f}" for key, value in headline.items() if value is not None))
    return {**headline, "wall_s": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    cli.run(main)
