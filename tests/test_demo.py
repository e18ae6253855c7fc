"""scripts/demo.py: the part-parsing demo end to end at toy size (every stage through its script, the closing
tracked video included), and its flag checks. The full-size demos are measured in docs/demo.md and docs/parts.md."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from inference_fixtures import REPO

DEMO = REPO / "scripts" / "demo.py"
# A parts_smoke.gin-sized network for seconds of training (the demo's gin files give everything else).
TOY_BINDINGS = ("PartsData.crop_size = 129", "PartsNetwork.width = 16", "train.global_batch_size = 2",
                "InputOptions.shuffle_buffer = 4", "train.steps_per_checkpoint = 2")


def run_demo(*args, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(DEMO), *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=timeout)


@pytest.mark.slow
def test_parts_demo_runs_every_stage(tmp_path):
    bindings = [item for binding in TOY_BINDINGS for item in ("--gin_bindings", binding)]
    result = run_demo("--task", "parts", "--output_dir", str(tmp_path), "--train_images", "4", "--val_images", "2",
                      "--num_steps", "2", "--matching_steps", "1", "--num_pictures", "1", "--max_side", "129",
                      "--video_frames", "4", *bindings)
    assert result.returncode == 0, result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"APp_50", "APp_vol", "PCP50", "mIoU", "MOTA", "IDF1", "wall_s"}
    assert all(isinstance(value, float) for value in last.values())   # a clip with people: MOTA and IDF1 defined
    assert tf.train.latest_checkpoint(str(tmp_path / "model_stage1")).endswith("ckpt-2")
    assert tf.train.latest_checkpoint(str(tmp_path / "model_stage2")).endswith("ckpt-1")
    assert f"starting from the weights of {tmp_path / 'model_stage1'}/ckpt-2" in result.stdout
    assert (tmp_path / "saved_model" / "saved_model.pb").exists()
    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert metrics["images"] == 2
    assert (tmp_path / "predictions" / "000000000001.jpg.png").exists()      # scripts/predict.py: file name + .png
    assert (tmp_path / "predictions" / "000000000001.jpg_parts.png").exists()
    # the closing video: a 4-frame synthetic clip tracked by the exported model, scored against its identities
    tracking = json.loads((tmp_path / "video_tracked" / "tracking_metrics.json").read_text())
    assert tracking["num_frames"] == 4 and tracking["num_objects"] > 0
    assert (last["MOTA"], last["IDF1"]) == (round(tracking["mota"], 4), round(tracking["idf1"], 4))
    assert len(json.loads((tmp_path / "video_tracked" / "frames.json").read_text())) == 4
    assert (tmp_path / "video_tracked" / "video_tracked.mp4").exists()


def test_matching_steps_belong_to_the_parts_demo(tmp_path):
    result = run_demo("--output_dir", str(tmp_path), "--matching_steps", "5", timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: --matching_steps")
    assert not any(tmp_path.iterdir())
