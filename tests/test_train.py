"""The training command: gin files, two-replica and two-worker runs, kill and resume, EMA in checkpoints."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gin
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import config, registry
from personlab_tf.data import writer
from personlab_tf.train import checkpoints
from personlab_tf.train.optimizer import build_optimizer

from sample_factory import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "scripts" / "train.py"


@pytest.fixture(scope="module")
def train_records(tmp_path_factory):
    folder = SHARED_DATA / "coco_train_sample"
    prefix = str(tmp_path_factory.mktemp("records") / "train")
    writer.convert(str(folder / "person_keypoints.json"), str(folder / "images"), prefix, num_shards=2)
    return prefix + "-*"


def train_command(model_dir, records, *bindings, num_steps=6):
    command = [sys.executable, str(TRAIN_SCRIPT), "--gin_file", str(REPO / "gin" / "smoke.gin"),
               "--model_dir", str(model_dir), "--num_steps", str(num_steps),
               "--gin_bindings", f"TRAIN_FILES='{records}'", "--gin_bindings", "train.image_summary_every=3"]
    for binding in bindings:
        command += ["--gin_bindings", binding]
    return command


def run(command, env=None, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "gin").glob("*.gin")))
def test_every_shipped_gin_file_parses(name):
    gin.clear_config()
    try:
        registry.parse_gin([str(REPO / "gin" / name)], ["TRAIN_FILES = 'records/x-*'"])
        assert gin.query_parameter("train.train_files") is not None
        task = config.experiment()
        assert task.name in registry.TASKS
        assert task.network.backbone in ("resnet101", "resnet152", "resnet_tiny")
    finally:
        gin.clear_config()


@pytest.mark.slow
def test_smoke_training_on_two_replicas(tmp_path, train_records):
    model_dir = tmp_path / "model"
    result = run(train_command(model_dir, train_records, "train.logical_cpus = 2",
                               "train.steps_per_checkpoint = 3"))
    assert "on 2 replicas" in result.stdout
    summary = last_json(result.stdout)
    assert all(np.isfinite(v) for v in summary["losses"].values())
    assert {"heatmap_loss", "segmentation_loss", "short_offset_loss", "mid_offset_loss", "long_offset_loss",
            "loss"} <= set(summary["losses"])
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-6")
    assert "train.logical_cpus = 2" in (model_dir / config.OPERATIVE_CONFIG).read_text()
    assert list((model_dir / "train").glob("events.out.tfevents.*"))
    assert "step 6/6" in result.stdout and "ETA" in result.stdout


@pytest.mark.slow
def test_killed_training_resumes_at_the_last_checkpoint(tmp_path, train_records):
    model_dir = tmp_path / "model"
    command = train_command(model_dir, train_records, "train.steps_per_checkpoint = 2", num_steps=1000)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    try:
        while not list(model_dir.glob("ckpt-4.index")):
            assert time.time() < deadline and process.poll() is None, "no checkpoint before the deadline"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = checkpoints.checkpoint_step(tf.train.latest_checkpoint(str(model_dir)))
    assert 4 <= killed_at < 1000
    result = run(train_command(model_dir, train_records, "train.steps_per_checkpoint = 2", num_steps=killed_at + 2))
    assert f"resuming from {model_dir}/ckpt-{killed_at} at step {killed_at}" in result.stdout
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{killed_at + 2}")

    # The checkpoint holds the Polyak averages, and use_averaged_weights puts them in the model.
    gin.clear_config()
    registry.parse_gin([str(REPO / "gin" / "smoke.gin")], [f"TRAIN_FILES = '{train_records}'"])
    try:
        model, optimizer = config.experiment().build_model(), build_optimizer()
        checkpoint = checkpoints.build_checkpoint(model, optimizer)
        checkpoints.restore_latest(checkpoint, str(model_dir))
    finally:
        gin.clear_config()
    assert int(optimizer.iterations.numpy()) == killed_at + 2
    averages = [v.numpy() for v in optimizer._model_variables_moving_average]
    raw = [v.numpy() for v in model.trainable_variables]
    assert len(averages) == len(raw) and any(not np.allclose(a, r) for a, r in zip(averages, raw))
    checkpoints.use_averaged_weights(model, optimizer)
    for average, variable in zip(averages, model.trainable_variables):
        np.testing.assert_array_equal(variable.numpy(), average)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_worker_training_on_localhost(tmp_path, train_records):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        command = train_command(tmp_path / "model", train_records, "train.strategy = 'multi_worker_mirrored'",
                                num_steps=4)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=tf_config)
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env))
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    summaries = [last_json(stdout) for stdout, _ in outputs]
    assert summaries[0]["losses"] == summaries[1]["losses"]
    assert "on 2 replicas" in outputs[0][0]
    assert tf.train.latest_checkpoint(str(tmp_path / "model")).endswith("ckpt-4")
