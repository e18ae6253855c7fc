"""Part parsing end to end: two-stage training (scripts/train.py), export and the SavedModel's signatures."""

import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import config, keys
from personlab_tf.data import synthetic, writer
from personlab_tf.inference import export, serving
from personlab_tf.parts import decode, detector, part_sets
from inference_fixtures import REPO, encode, run_script, textured_image
from test_train import last_json, run

SMOKE = REPO / "gin" / "parts_smoke.gin"
MAX_SIDE = 129


@pytest.fixture(scope="module")
def parts_data(tmp_path_factory):
    """(data directory, records pattern) of 6 small synthetic part-parsing images."""
    root = tmp_path_factory.mktemp("parts")
    data = root / "data"
    synthetic.generate_dataset(str(data), 6, seed=3, min_side=112, max_side=144, scene=synthetic.PARTS_SCENE)
    writer.convert(str(data / synthetic.ANNOTATIONS_FILE), str(data / synthetic.IMAGES_DIR), str(root / "train"),
                   part_labels_dir=str(data / synthetic.PART_LABELS_DIR),
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
    second = train(root / "stage2", records, "build_parts_model.matching_loss = True",
                   f"train.init_checkpoint = '{root / 'stage1'}'", num_steps=2)
    return root, first, second


@pytest.mark.slow
def test_two_stage_training(stages):
    root, first, second = stages
    assert "on 2 replicas" in first.stdout
    losses = last_json(first.stdout)["losses"]
    assert {keys.PART_LOSS, keys.PROJECTION_LOSS, keys.HEATMAP_LOSS, keys.SHORT_LOSS, keys.LIMB_LOSS,
            keys.TOTAL_LOSS} <= set(losses) and keys.MATCHING_LOSS not in losses
    assert all(np.isfinite(value) for value in losses.values())
    assert f"starting from the weights of {root / 'stage1'}/ckpt-4" in second.stdout
    second_losses = last_json(second.stdout)["losses"]
    assert keys.MATCHING_LOSS in second_losses and np.isfinite(second_losses[keys.MATCHING_LOSS])
    assert tf.train.latest_checkpoint(str(root / "stage2")).endswith("ckpt-2")


@pytest.fixture(scope="module")
def exported(stages, tmp_path_factory):
    root, _, _ = stages
    export_dir = tmp_path_factory.mktemp("export") / "parts"
    _, summary = run_script("export_saved_model.py", "--model_dir", str(root / "stage2"), "--export_dir",
                            str(export_dir), "--max_side", str(MAX_SIDE))
    return root / "stage2", str(export_dir), summary


def eager_detector(model_dir):
    """The PartsDetector of a run's EMA weights, built in-process like the export."""
    gin.clear_config()
    config.parse_gin(export.default_gin_files(str(model_dir), []), [])
    try:
        from personlab_tf.parts import model as parts_model
        model = parts_model.build_parts_model()
        export.restore_averaged(model, str(model_dir))
        options = decode.parts_decode_options(radius=8.0)
    finally:
        gin.clear_config()
    return detector.PartsDetector(model.inference_model(), MAX_SIDE, options)


@pytest.mark.slow
def test_saved_model_matches_the_eager_detector(exported, parts_data):
    model_dir, export_dir, summary = exported
    assert summary["task"] == "parts" and summary["decode_options"]["radius"] == 8.0
    signatures = tf.saved_model.load(export_dir).signatures
    assert set(signatures) == {serving.SERVING_DEFAULT, serving.SERVING_IMAGE}
    data, _ = parts_data
    image = tf.io.decode_jpeg((data / synthetic.IMAGES_DIR / "000000000001.jpg").read_bytes())
    served = signatures[serving.SERVING_IMAGE](images=image[tf.newaxis])
    eager = eager_detector(model_dir).detect(image)
    height, width = image.shape[:2]
    assert served[keys.PART_MAP].shape == (1, height, width)
    assert served[keys.INSTANCE_PART_MAPS].shape == (1, 20, height, width)
    for key in (keys.NUM_DETECTIONS, keys.PART_MAP, keys.INSTANCE_PART_MAPS):
        np.testing.assert_array_equal(served[key][0], eager[key], err_msg=key)
    for key in (keys.DETECTION_KEYPOINTS, keys.KEYPOINT_SCORES, keys.INSTANCE_SCORES):
        np.testing.assert_allclose(served[key][0], eager[key], atol=1e-3, err_msg=key)


@pytest.mark.slow
def test_serving_default_takes_any_encoded_image_and_rejects_garbage(exported):
    _, export_dir, _ = exported
    function = tf.saved_model.load(export_dir).signatures[serving.SERVING_DEFAULT]
    picture = textured_image(50, 70)
    batch = [encode(picture), encode(picture, mode="RGBA"), encode(np.full((30, 40, 3), 128, np.uint8), mode="L")]
    outputs = function(images=tf.constant(batch))
    np.testing.assert_array_equal(outputs[keys.IMAGE_SIZE], [[50, 70], [50, 70], [30, 40]])
    assert outputs[keys.INSTANCE_PART_MAPS].shape == (3, 20, 50, 70)
    assert not outputs[keys.PART_MAP][2, 30:].numpy().any() and not outputs[keys.PART_MAP][2, :, 40:].numpy().any()
    with pytest.raises(tf.errors.InvalidArgumentError):
        function(images=tf.constant([b"not an image"]))
    empty = function(images=tf.zeros([0], tf.string))
    assert empty[keys.INSTANCE_PART_MAPS].shape[0] == 0


@pytest.mark.slow
def test_saved_model_cli_lists_both_signatures(exported):
    _, export_dir, _ = exported
    result = subprocess.run([str(REPO / ".venv" / "bin" / "saved_model_cli") if (REPO / ".venv").exists()
                             else "saved_model_cli", "show", "--dir", export_dir, "--all"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in (serving.SERVING_DEFAULT, serving.SERVING_IMAGE, keys.INSTANCE_PART_MAPS, keys.PART_MAP):
        assert name in result.stdout


@pytest.mark.slow
def test_oracle_of_the_synthetic_parts_split_parses_the_persons(tmp_path):
    """Ground-truth maps through the SavedModel's decoding: every person parsed (scripts/oracle_eval.py)."""
    data = tmp_path / "val"
    synthetic.generate_dataset(str(data), 4, seed=1, scene=synthetic.PARTS_SCENE)
    _, summary = run_script("oracle_eval.py", "--task", "parts", "--annotations", str(data / synthetic.ANNOTATIONS_FILE),
                            "--images", str(data / synthetic.IMAGES_DIR))
    assert set(summary) == {"APp_50", "APp_vol", "PCP50", "mIoU"}
    assert summary["APp_50"] >= 0.9 and summary["PCP50"] >= 0.9 and summary["mIoU"] >= 0.9


@pytest.mark.slow
def test_evaluate_parts_script(exported, parts_data, tmp_path):
    _, export_dir, _ = exported
    data, _ = parts_data
    _, summary = run_script("evaluate_parts.py", "--saved_model", export_dir, "--annotations",
                            str(data / synthetic.ANNOTATIONS_FILE), "--images", str(data / synthetic.IMAGES_DIR),
                            "--max_images", "3", "--output_dir", str(tmp_path / "eval"))
    assert summary["images"] == 3 and summary["instances"] > 0
    assert {"mIoU", "APp_50", "APp_vol", "PCP50", "APr_50", "APr_60", "APr_70", "APr_vol"} <= set(summary)
    assert 0.0 <= summary["mIoU"] <= 1.0
    assert (tmp_path / "eval" / "metrics.json").exists()
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate_parts.py"), "--saved_model",
                             str(tmp_path / "nowhere"), "--annotations", str(data / synthetic.ANNOTATIONS_FILE),
                             "--images", str(data / synthetic.IMAGES_DIR)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "error:" in result.stderr


@pytest.mark.slow
def test_predict_draws_the_part_maps(exported, parts_data, tmp_path):
    _, export_dir, _ = exported
    data, _ = parts_data
    _, summary = run_script("predict.py", "--saved_model", export_dir, "--images",
                            str(data / synthetic.IMAGES_DIR / "00000000000[12].jpg"), "--output_dir", str(tmp_path))
    assert summary["images_processed"] == 2
    for stem in ("000000000001", "000000000002"):
        assert (tmp_path / f"{stem}.png").exists() and (tmp_path / f"{stem}_parts.png").exists()
