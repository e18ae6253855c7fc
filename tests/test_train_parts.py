"""Part parsing's two-stage training (scripts/train.py): stage 1 on two replicas, stage 2 with the matching loss
from stage 1's weights. Export, evaluation, prediction and the oracle of both tasks are tested in
test_export_saved_model.py, test_evaluate.py, test_predict.py and test_oracle_eval.py."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import coco_format, synthetic, synthetic_scene, writer
from personlab_tf.tasks.parts import part_sets

from inference_fixtures import REPO
from test_train import last_json, run

SMOKE = REPO / "gin" / "parts_smoke.gin"
MAX_SIDE = 129


@pytest.fixture(scope="module")
def parts_data(tmp_path_factory):
    """(data directory, records pattern) of 6 small synthetic part-parsing images."""
    root = tmp_path_factory.mktemp("parts")
    data = root / "data"
    synthetic.generate_dataset(str(data), 6, seed=3, min_side=112, max_side=144, scene=synthetic_scene.PARTS_SCENE)
    writer.convert(str(data / coco_format.ANNOTATIONS_FILE), str(data / coco_format.IMAGES_DIR), str(root / "train"),
                   part_labels_dir=str(data / coco_format.PART_LABELS_DIR),
                   num_part_classes=part_sets.SYNTHETIC.num_classes)
    return data, str(root / "train-*")


def train(model_dir, records, *bindings, num_steps=4):
    command = [sys.executable, str(REPO / "scripts" / "train.py"), "--gin_file", str(SMOKE), "--model_dir",
               str(model_dir), "--num_steps", str(num_steps), "--gin_bindings", f"TRAIN_FILES='{records}'",
               "--gin_bindings", "train.steps_per_checkpoint = 2", "--gin_bindings", "train.image_summary_every = 2"]
    for binding in bindings:
        command += ["--gin_bindings", binding]
    return run(command)


@pytest.fixture(scope="module")
def stages(parts_data, tmp_path_factory):
    """Stage 1 on two replicas, then stage 2 with the matching loss from stage 1's weights."""
    _, records = parts_data
    root = tmp_path_factory.mktemp("runs")
    first = train(root / "stage1", records, "train.logical_cpus = 2")
    second = train(root / "stage2", records, "PartsNetwork.matching_loss = True",
                   f"train.init_checkpoint = '{root / 'stage1'}'", num_steps=2)
    return root, first, second


@pytest.mark.slow
def test_two_stage_training(stages):
    root, first, second = stages
    assert "on 2 replicas" in first.stdout
    losses = last_json(first.stdout)["losses"]
    assert {keys.Loss.PART, keys.Loss.PROJECTION, keys.Loss.HEATMAP, keys.Loss.SHORT, keys.Loss.LIMB,
            keys.Loss.TOTAL} <= set(losses) and keys.Loss.MATCHING not in losses
    assert all(np.isfinite(value) for value in losses.values())
    assert f"starting from the weights of {root / 'stage1'}/ckpt-4" in second.stdout
    second_losses = last_json(second.stdout)["losses"]
    assert keys.Loss.MATCHING in second_losses and np.isfinite(second_losses[keys.Loss.MATCHING])
    assert tf.train.latest_checkpoint(str(root / "stage2")).endswith("ckpt-2")
