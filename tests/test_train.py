"""The training command: gin files, two-replica and two-worker runs, kill and resume, EMA in checkpoints; resuming
under faults (docs/operations.md): rolled back, truncated or foreign checkpoints, a changed configuration, bad
gin values, a truncated shard."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import config, errors, registry
from personlab_tf.data import pipeline, writer
from personlab_tf.tasks.personlab.task import PersonLabTask
from personlab_tf.train import checkpoints, trainer
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
        assert task.options.network.backbone in ("resnet101", "resnet152", "resnet_tiny")
    finally:
        gin.clear_config()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, train_records):
    """A two-replica smoke run of 6 steps with checkpoints ckpt-2, ckpt-4, ckpt-6: (model_dir, its stdout)."""
    model_dir = tmp_path_factory.mktemp("smoke_run") / "model"
    result = run(train_command(model_dir, train_records, "train.logical_cpus = 2", "train.steps_per_checkpoint = 2"))
    return model_dir, result.stdout


@pytest.mark.slow
def test_smoke_training_on_two_replicas(smoke_run):
    model_dir, stdout = smoke_run
    assert "on 2 replicas" in stdout
    summary = last_json(stdout)
    assert all(np.isfinite(v) for v in summary["losses"].values())
    assert {"heatmap_loss", "segmentation_loss", "short_offset_loss", "mid_offset_loss", "long_offset_loss",
            "loss"} <= set(summary["losses"])
    assert [os.path.basename(p) for p in checkpoints.checkpoint_paths(str(model_dir))] == ["ckpt-6", "ckpt-4", "ckpt-2"]
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-6")
    assert "train.logical_cpus = 2" in (model_dir / config.OPERATIVE_CONFIG).read_text()
    assert list((model_dir / "train").glob("events.out.tfevents.*"))
    assert "step 6/6" in stdout and "ETA" in stdout


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


# ---------------------------------------------------------------- faults: checkpoints, configuration, data

def tiny_checkpoint():
    """(checkpoint, optimizer) of a one-layer model with the training optimizer (EMA included)."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = build_optimizer(name="adam")
    return checkpoints.build_checkpoint(model, optimizer), optimizer


@pytest.fixture
def three_checkpoints(tmp_path):
    """tmp_path/run holding ckpt-2, ckpt-4, ckpt-6 of `tiny_checkpoint` (whose step counter is the checkpoint's
    step) and TensorFlow's state file, as training leaves them."""
    checkpoint, optimizer = tiny_checkpoint()
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "run"), max_to_keep=5)
    for step in (2, 4, 6):
        optimizer.iterations.assign(step)
        manager.save(checkpoint_number=step)
    return tmp_path / "run"


def restored_step(model_dir):
    """The step `checkpoints.restore_latest` restores from `model_dir` into a fresh model (None: none)."""
    checkpoint, optimizer = tiny_checkpoint()
    path = checkpoints.restore_latest(checkpoint, str(model_dir))
    assert path is None or checkpoints.checkpoint_step(path) == int(optimizer.iterations.numpy())
    return path and checkpoints.checkpoint_step(path)


def state_file_answer(model_dir):
    """The step TensorFlow's state file leads to (what resuming relied on before): None or "error"."""
    try:
        path = tf.train.latest_checkpoint(str(model_dir))
    except ValueError:
        return "error"
    return path and checkpoints.checkpoint_step(path)


def truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(Path(folder).rglob("*"))
            if path.is_file()}


FAULTS = {  # name -> (what happens to the directory, the checkpoint to resume from)
    "rolled_back_by_deleting_the_newest": (lambda d: [p.unlink() for p in d.glob("ckpt-6.*")], 4),
    "state_file_missing": (lambda d: (d / "checkpoint").unlink(), 6),
    "state_file_empty": (lambda d: (d / "checkpoint").write_text(""), 6),
    "state_file_garbage": (lambda d: (d / "checkpoint").write_text("model_checkpoint_path: {"), 6),
    "state_file_stale": (lambda d: (d / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n'), 6),
    "newest_data_truncated": (lambda d: truncate(d / "ckpt-6.data-00000-of-00001", 40), 4),
    "newest_index_truncated": (lambda d: truncate(d / "ckpt-6.index", 30), 4),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_resume_takes_the_newest_checkpoint_that_restores_whatever_the_state_file_says(three_checkpoints, fault,
                                                                                        caplog):
    damage, expected = FAULTS[fault]
    damage(three_checkpoints)
    assert state_file_answer(three_checkpoints) != expected  # the fault: the state file misleads
    assert restored_step(three_checkpoints) == expected
    if fault.startswith("newest_"):
        assert "ckpt-6 cannot be restored" in caplog.text  # the warning names it


def test_checkpoints_of_which_none_restores_are_an_error_and_stay(three_checkpoints):
    for path in three_checkpoints.glob("ckpt-*.data-*"):
        truncate(path, 40)
    before = snapshot(three_checkpoints)
    with pytest.raises(checkpoints.CheckpointError, match="none of the 3 checkpoints .* restores .*ckpt-6.*ckpt-2"):
        restored_step(three_checkpoints)
    assert snapshot(three_checkpoints) == before


@pytest.mark.parametrize("content", ["", "my notes on the run\n"])
def test_a_foreign_checkpoint_file_without_checkpoints_is_an_error(tmp_path, content):
    (tmp_path / "checkpoint").write_text(content)
    with pytest.raises(checkpoints.CheckpointError, match="is not a TensorFlow checkpoint state file"):
        restored_step(tmp_path)
    assert (tmp_path / "checkpoint").read_text() == content
    assert restored_step(tmp_path / "new") is None  # an empty or new directory: a fresh start


def test_the_recorded_state_lets_the_resumed_run_rotate_its_checkpoints(three_checkpoints):
    [path.unlink() for path in three_checkpoints.glob("ckpt-6.*")]
    (three_checkpoints / "checkpoint").write_text("")  # which CheckpointManager cannot even open
    checkpoint, optimizer = tiny_checkpoint()
    restored = checkpoints.restore_latest(checkpoint, str(three_checkpoints))
    checkpoints.record_state(str(three_checkpoints), restored)
    manager = tf.train.CheckpointManager(checkpoint, str(three_checkpoints), max_to_keep=3)
    assert [checkpoints.checkpoint_step(p) for p in manager.checkpoints] == [2, 4]
    for step in (6, 8):
        optimizer.iterations.assign(step)
        manager.save(checkpoint_number=step)
    assert [checkpoints.checkpoint_step(p) for p in checkpoints.checkpoint_paths(str(three_checkpoints))] == [8, 6, 4]


STORED_CONFIG = """TRAIN_FILES = 'records/a-*'
train.train_files = %TRAIN_FILES
train.num_steps = 100
PersonLabNetwork.backbone = 'resnet_tiny'
"""


def test_config_changes_compare_values_with_macros_resolved():
    current = STORED_CONFIG.replace("a-*", "b-*").replace("100", "200")
    assert config.config_changes(STORED_CONFIG, STORED_CONFIG) == {}
    assert config.config_changes(STORED_CONFIG, current) == {"train.num_steps": ("100", "200"),
                                                             "train.train_files": ("'records/a-*'", "'records/b-*'")}
    assert config.config_changes(STORED_CONFIG, current + "train.seed = 1\n")["train.seed"] == (None, "1")


def test_a_resumed_run_may_change_only_job_bindings(tmp_path, capsys):
    (tmp_path / config.OPERATIVE_CONFIG).write_text(STORED_CONFIG)
    trainer.check_resumed_config(str(tmp_path), STORED_CONFIG.replace("100", "200"))  # no checkpoint: no check
    (tmp_path / "ckpt-5.index").write_bytes(b"")
    trainer.check_resumed_config(str(tmp_path), STORED_CONFIG.replace("100", "200"))
    assert "resuming with changed bindings: train.num_steps 100 -> 200" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"differs .* in PersonLabNetwork.backbone \(.*'resnet_tiny' -> 'resnet101'"):
        trainer.check_resumed_config(str(tmp_path), STORED_CONFIG.replace("resnet_tiny", "resnet101"))
    # The compiled refinement computes what the plain one does: PersonLab lets a resumed run switch it.
    switched = STORED_CONFIG + "PersonLabNetwork.jit_refinement = True\n"
    with pytest.raises(ValueError, match=r"differs .* in PersonLabNetwork.jit_refinement \(.*\(absent\) -> True"):
        trainer.check_resumed_config(str(tmp_path), switched)
    trainer.check_resumed_config(str(tmp_path), switched, trainer.RESUMABLE_CHANGES + PersonLabTask.resumable_bindings)
    assert "PersonLabNetwork.jit_refinement (absent) -> True" in capsys.readouterr().out


def fail(command):
    """Runs a command that must fail; returns its last stderr line, the one-line error (no traceback)."""
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                            timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def copy_run(smoke_run, tmp_path):
    """A copy of the smoke run's model directory (ckpt-2, ckpt-4, ckpt-6) to damage."""
    model_dir = tmp_path / "model"
    shutil.copytree(smoke_run[0], model_dir)
    return model_dir


@pytest.mark.slow
def test_a_rolled_back_run_resumes_from_the_newest_checkpoint_left(smoke_run, train_records, tmp_path):
    model_dir = copy_run(smoke_run, tmp_path)
    [path.unlink() for path in model_dir.glob("ckpt-6.*")]
    stdout = run(train_command(model_dir, train_records, "train.steps_per_checkpoint = 2", num_steps=4)).stdout
    assert "resuming with changed bindings: train.logical_cpus 2 -> 0; train.num_steps 6 -> 4" in stdout
    assert f"resuming from {model_dir}/ckpt-4 at step 4" in stdout and "training already finished" in stdout
    assert tf.train.latest_checkpoint(str(model_dir)) == str(model_dir / "ckpt-4")


def leave_only_an_empty_checkpoint_file(model_dir):
    shutil.rmtree(model_dir)
    model_dir.mkdir()
    (model_dir / "checkpoint").write_text("")


DAMAGED_RUNS = {  # name -> (what happens to the run, extra binding, what the error says); in-process tests above
    # cover the other faults of restore_latest, which reach the script the same way.
    "network_changed": (lambda d: None, ("PersonLabNetwork.output_stride = 32",),
                        "the operative config differs from"),
    "empty_checkpoint_file_alone": (leave_only_an_empty_checkpoint_file, (),
                                    "is not a TensorFlow checkpoint state file"),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", sorted(DAMAGED_RUNS))
def test_an_unusable_model_dir_ends_with_one_line_and_stays_as_it_was(smoke_run, train_records, tmp_path, damage):
    model_dir = copy_run(smoke_run, tmp_path)
    change, bindings, message = DAMAGED_RUNS[damage]
    change(model_dir)
    before = snapshot(model_dir)
    assert message in fail(train_command(model_dir, train_records, "train.steps_per_checkpoint = 2", *bindings,
                                         num_steps=8))
    assert snapshot(model_dir) == before


def test_an_unquoted_glob_is_a_one_line_error_saying_to_quote_it():
    gin.clear_config()
    try:
        with pytest.raises(ValueError) as raised:
            registry.parse_gin([str(REPO / "gin" / "smoke.gin")], ["TRAIN_FILES = records/train-*"])
    finally:
        gin.clear_config()
    message = errors.one_line(raised.value)
    assert "'TRAIN_FILES = records/train-*'" in message and "are quoted: TRAIN_FILES = 'records/train-*'" in message


@pytest.mark.parametrize("binding, message", [
    ("PersonLabNetwork.backbone = 'resnet_tin'", "unknown backbone 'resnet_tin'; expected one of resnet50, resnet101, "
                                                 "resnet152, resnet_tiny"),
    ("train.strategy = 'mirored'", "unknown strategy 'mirored'; expected one of mirrored, multi_worker_mirrored, "
                                   "one_device"),
    ("build_optimizer.name = 'adamw'", "unknown optimizer 'adamw'; expected one of sgd, adam"),
])
def test_a_misspelled_choice_is_one_line_listing_the_valid_ones(tmp_path, binding, message):
    """What scripts/train.py prints (errors.one_line): the reason without gin's "In call to configurable" lines."""
    gin.clear_config()
    registry.parse_gin([str(REPO / "gin" / "smoke.gin")], ["TRAIN_FILES = 'records/none-*'", binding])
    try:
        with pytest.raises(ValueError) as raised:
            trainer.train(str(tmp_path / "model"))
    finally:
        gin.clear_config()
    assert "In call to configurable" in str(raised.value)  # gin's context, which the one line leaves out
    assert errors.one_line(raised.value) == message


@pytest.mark.slow
def test_a_truncated_shard_ends_training_with_one_line_naming_it(tmp_path, train_records):
    """(Shards without records: tests/test_data_pipeline.py.)"""
    damaged = tmp_path / "records"
    shutil.copytree(Path(train_records).parent, damaged)
    shard = sorted(damaged.glob("train-*"))[1]
    truncate(shard, 100)  # inside its first record
    last = fail(train_command(tmp_path / "model", str(damaged / "train-*")))
    assert f"TFRecord shard {shard} is truncated or corrupt" in last
    assert not checkpoints.checkpoint_paths(str(tmp_path / "model"))


def test_damaged_shard_error_names_the_first_shard_that_does_not_read(tmp_path, train_records):
    damaged = tmp_path / "records"
    shutil.copytree(Path(train_records).parent, damaged)
    shards = sorted(damaged.glob("train-*"))
    truncate(shards[1], shards[1].stat().st_size - 10)
    with pytest.raises(tf.errors.DataLossError) as raised:
        pipeline.count_records([str(path) for path in shards])
    error = pipeline.damaged_shard_error(str(damaged / "train-*"), raised.value)
    assert str(error).startswith(f"TFRecord shard {shards[1]} is truncated or corrupt (")
