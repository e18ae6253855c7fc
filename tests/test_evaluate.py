"""scripts/evaluate.py: a SavedModel or a checkpoint over a coco_person split, the paper's metric rows."""

import json
import os
import subprocess
import sys

import pytest

from personlab_tf.datasets.coco_person import layout
from personlab_tf.evaluation import metrics
from coco_samples import make_sample_tree
from inference_fixtures import MAX_SIDE, REPO, exported_model, run_script


@pytest.fixture(scope="module")
def tfds_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    return make_sample_tree(root / "coco", splits=(layout.VALIDATION,)), root / "tfds"


@pytest.mark.slow
def test_saved_model_and_checkpoint_give_the_same_metrics(tmp_path, tfds_dirs):
    manual_dir, data_dir = tfds_dirs
    model_dir, export_dir, _ = exported_model()
    _, from_saved_model = run_script("evaluate.py", "--saved_model", export_dir, "--data_dir", data_dir,
                                     "--manual_dir", manual_dir, "--split", "validation",
                                     "--output_dir", tmp_path / "eval")
    assert from_saved_model["images"] == 4
    assert set(from_saved_model["keypoints"]) == set(metrics.KEYPOINT_METRICS)
    assert {"AP", "AP50", "AP75", "APS", "APM", "APL", "AR1", "AR10", "AR20"} <= set(from_saved_model["segmentation"])
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["keypoints"] == from_saved_model["keypoints"]
    _, from_checkpoint = run_script("evaluate.py", "--model_dir", model_dir, "--max_side", str(MAX_SIDE),
                                    "--data_dir", data_dir, "--split", "validation")
    for group in ("keypoints", "segmentation"):
        for name, value in from_saved_model[group].items():
            assert from_checkpoint[group][name] == pytest.approx(value, abs=1e-6), (group, name)


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of --saved_model and --model_dir"),
    (["--saved_model", "x", "--split", "train"], "split 'train' is not in"),
])
def test_bad_arguments_end_with_one_line(tfds_dirs, args, message):
    manual_dir, data_dir = tfds_dirs
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), "--data_dir", str(data_dir),
                             "--manual_dir", str(manual_dir), *args], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
