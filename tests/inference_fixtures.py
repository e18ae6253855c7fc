"""Tiny trained-looking checkpoints of both tasks and their SavedModels, made once per test session, and
test images.

A checkpoint: the task's network on `resnet_tiny` (PersonLab at output stride 16 with auxiliary heads; the
part parser with an FPN of width 16), three SGD steps on random gradients (EMA momentum 0.5, so the Polyak
averages differ clearly from the raw weights), saved the way training saves (model + optimizer), with the
run's `operative_config.gin`. The export runs the real script, larger side 129 (PersonLab at output
stride 8).
"""

import atexit
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gin
import numpy as np
import tensorflow as tf
from PIL import Image

from personlab_tf import config, registry
from personlab_tf.train import checkpoints
from personlab_tf.train.optimizer import build_optimizer

REPO = Path(__file__).resolve().parents[1]
MAX_SIDE = 129
OUTPUT_STRIDE = 8
TASKS = ("personlab", "parts")
# The gin bindings of each task's tiny run.
TRAIN_BINDINGS = {
    "personlab": ("experiment.task = @PersonLabTask()", "PersonLabNetwork.backbone = 'resnet_tiny'",
                  "PersonLabNetwork.output_stride = 16", "PersonLabNetwork.allow_random_init = True",
                  "build_optimizer.ema_momentum = 0.5"),
    "parts": ("experiment.task = @PartsTask()", "PartsNetwork.backbone = 'resnet_tiny'", "PartsNetwork.width = 16",
              "PartsNetwork.freeze_batch_norm = False", "PartsData.disk_radius = 8.0",
              "build_optimizer.ema_momentum = 0.5"),
}
# The export flags of each task.
EXPORT_FLAGS = {"personlab": ("--max_side", str(MAX_SIDE), "--output_stride", str(OUTPUT_STRIDE)),
                "parts": ("--max_side", str(MAX_SIDE))}
_CACHE = {}


def _run(name, args):
    """scripts/<name> with `args` in a subprocess of the test interpreter (repository on PYTHONPATH)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=900)


def run_script(name, *args):
    """Runs scripts/<name> with the test interpreter; returns (CompletedProcess, last stdout line as JSON)."""
    process = _run(name, args)
    assert process.returncode == 0, process.stderr[-3000:]
    return process, json.loads(process.stdout.strip().splitlines()[-1])


def script_error(name, *args):
    """Runs scripts/<name> expecting it to refuse its input: exit code 1, no traceback, one `error: ` line,
    the last of stderr; returns that line."""
    process = _run(name, args)
    assert process.returncode == 1 and "Traceback" not in process.stderr, process.stderr[-3000:]
    errors = [line for line in process.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and process.stderr.strip().splitlines()[-1] == errors[0], process.stderr[-3000:]
    return errors[0]


def make_checkpoint(model_dir, task="personlab", steps=3, seed=0):
    """Writes a checkpoint of `task` after `steps` random-gradient SGD steps and the operative gin config."""
    gin.clear_config()
    registry.parse_gin([], TRAIN_BINDINGS[task])
    try:
        model = config.experiment().build_model()
        optimizer = build_optimizer()
        checkpoint = checkpoints.build_checkpoint(model, optimizer)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            optimizer.apply_gradients([(tf.constant(rng.normal(0.0, 10.0, v.shape), tf.float32), v)
                                       for v in model.trainable_variables])
        tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=2).save(checkpoint_number=steps)
        with open(os.path.join(model_dir, config.OPERATIVE_CONFIG), "w") as f:
            f.write(gin.operative_config_str())
    finally:
        gin.clear_config()


def exported_model(task="personlab"):
    """(model_dir, export_dir, export summary) of the session's checkpoint and SavedModel of `task` (made once)."""
    if task not in _CACHE:
        root = tempfile.mkdtemp(prefix=f"{task}_export_test_")
        atexit.register(shutil.rmtree, root, True)
        model_dir, export_dir = os.path.join(root, "run"), os.path.join(root, "export")
        make_checkpoint(model_dir, task)
        _, summary = run_script("export_saved_model.py", "--model_dir", model_dir, "--export_dir", export_dir,
                                *EXPORT_FLAGS[task])
        _CACHE[task] = (model_dir, export_dir, summary)
    return _CACHE[task]


def textured_image(height, width, seed=0):
    """[H, W, 3] uint8 smooth random colours (compresses well and survives JPEG roughly)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def encode(image, image_format="PNG", mode=None):
    """Encodes a numpy image with PIL (mode converts first, e.g. "L" or "RGBA")."""
    picture = Image.fromarray(image)
    if mode:
        picture = picture.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, image_format)
    return buffer.getvalue()
