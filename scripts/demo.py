"""The main job on the built-in synthetic dataset: data -> training -> export -> evaluation -> pictures.

  python scripts/demo.py [--output_dir outputs/demo] [--num_steps N]     (what `make demo` runs)

Every stage runs the project's own command-line script, so the demo is also a worked example of them;
their output is shown as it comes. Stages whose results exist already are reused (the synthetic data,
the records, the tfds dataset) or resumed (training continues from its last checkpoint), so a demo that
was interrupted picks up where it stopped. The last stdout line is
`{"keypoints_AP": ..., "segm_AP": ..., "wall_s": ...}`.
"""

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", str(REPO / "outputs" / "demo"), "Where every output of the demo goes.")
flags.DEFINE_integer("train_images", 600, "Synthetic training images.")
flags.DEFINE_integer("val_images", 60, "Synthetic validation images.")
flags.DEFINE_integer("num_steps", None, "Training steps (default: gin/demo.gin's train.num_steps).")
flags.DEFINE_integer("num_pictures", 8, "Validation images drawn with their predictions.")
flags.DEFINE_integer("max_side", 641, "Larger side of the frame the exported model sees. The ~350 px validation "
                     "images are upscaled about 1.8x, which small figures need; docs/demo.md has the measured choice.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic data (validation uses seed + 1).")


class StageError(RuntimeError):
    """A stage's command failed; the message names the stage and its exit code."""


def run_stage(name, command):
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


def synthetic_data(root, split, num_images, seed):
    """The synthetic COCO-format split (reused when present with the requested size)."""
    folder = root / "synthetic" / split
    annotations = folder / "person_keypoints.json"
    if annotations.exists() and len(json.loads(annotations.read_text())["images"]) == num_images:
        print(f"=== synthetic {split}: reusing {folder}", flush=True)
    else:
        run_stage(f"synthetic {split}", [SCRIPTS / "make_synthetic_coco.py", "--output", folder,
                                         "--num_images", num_images, "--seed", seed])
    return folder


def records(root, data):
    """TFRecords of the synthetic training split (reused when present)."""
    prefix = root / "records" / "train"
    if glob.glob(f"{prefix}-*.tfrecord"):
        print(f"=== records: reusing {prefix}-*", flush=True)
    else:
        run_stage("records", [SCRIPTS / "create_tfrecords.py", "--annotations", data / "person_keypoints.json",
                              "--images", data / "images", "--output", prefix, "--num_shards", 4])
    return f"{prefix}-*.tfrecord"


def coco_tree(root, data):
    """The synthetic validation split laid out as a COCO 2017 tree for the tfds builder."""
    from personlab_tf.tfds_builders.coco_person import layout
    tree = root / "coco"
    if not layout.missing_paths(tree, layout.VALIDATION):
        return tree
    layout.arrange_coco_tree(tree, layout.VALIDATION, data / "person_keypoints.json", data / "images")
    return tree


def picture_inputs(root, data, count):
    """A folder linking the first `count` validation images, for scripts/predict.py."""
    folder = root / "picture_inputs"
    folder.mkdir(exist_ok=True)
    for path in sorted((data / "images").glob("*.jpg"))[:count]:
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path)
    return folder


def main(argv):
    del argv
    start = time.perf_counter()
    root = Path(FLAGS.output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    train_data = synthetic_data(root, "train", FLAGS.train_images, FLAGS.seed)
    val_data = synthetic_data(root, "val", FLAGS.val_images, FLAGS.seed + 1)
    train_files = records(root, train_data)
    manual_dir = coco_tree(root, val_data)
    model_dir, export_dir = root / "model", root / "saved_model"
    gin_args = ["--gin_file", REPO / "gin" / "demo.gin", "--gin_bindings", f"TRAIN_FILES='{train_files}'"]
    steps = ["--num_steps", FLAGS.num_steps] if FLAGS.num_steps else []
    try:
        run_stage("train", [SCRIPTS / "train.py", "--model_dir", model_dir] + gin_args + steps)
        run_stage("export", [SCRIPTS / "export_saved_model.py", "--model_dir", model_dir, "--export_dir", export_dir,
                             "--max_side", FLAGS.max_side] + gin_args)
        metrics = run_stage("evaluate", [SCRIPTS / "evaluate.py", "--saved_model", export_dir,
                                         "--data_dir", root / "tfds", "--manual_dir", manual_dir,
                                         "--split", "validation", "--output_dir", root / "evaluation"])
        run_stage("pictures", [SCRIPTS / "predict.py", "--saved_model", export_dir,
                               "--images", picture_inputs(root, val_data, FLAGS.num_pictures),
                               "--output_dir", root / "predictions"])
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    keypoints_ap, segm_ap = metrics["keypoints_AP"], metrics["segm_AP"]
    print("\nDemo outputs:")
    for what, where in (("synthetic data", root / "synthetic"), ("training records", root / "records"),
                        ("checkpoints and TensorBoard logs", model_dir), ("SavedModel", export_dir),
                        ("COCO results and metrics", root / "evaluation"),
                        ("pictures of predictions", root / "predictions")):
        print(f"  {what:<34} {where}")
    print(f"  keypoint AP {keypoints_ap:.3f}, person segmentation AP {segm_ap:.3f}")
    print(json.dumps({"keypoints_AP": round(keypoints_ap, 4), "segm_AP": round(segm_ap, 4),
                      "wall_s": round(time.perf_counter() - start, 1)}))
    return 0


if __name__ == "__main__":
    app.run(main)
