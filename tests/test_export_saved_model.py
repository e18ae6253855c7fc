"""scripts/export_saved_model.py and the SavedModel contract of both tasks (docs/inference.md, docs/parts.md):
pinned signatures, the task record, agreement with the eager detector, mixed sizes, grey / RGBA / corrupt
inputs, no detections, and the exported EMA weights."""

import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import config, keys, registry
from personlab_tf.constants import NUM_KEYPOINTS
from personlab_tf.inference import export, serving
from personlab_tf.train import checkpoints
from personlab_tf.train.optimizer import build_optimizer

from inference_fixtures import MAX_SIDE, OUTPUT_STRIDE, REPO, TASKS, encode, exported_model, textured_image

SLOTS = 20
# The signatures' outputs, pinned: name -> (dtype, shape); B images, the largest H x W of the batch.
POSE_OUTPUTS = {
    keys.Detection.KEYPOINTS: (tf.float32, [None, SLOTS, NUM_KEYPOINTS, 2]),
    keys.Detection.KEYPOINT_SCORES: (tf.float32, [None, SLOTS, NUM_KEYPOINTS]),
    keys.Detection.INSTANCE_SCORES: (tf.float32, [None, SLOTS]),
    keys.Detection.NUM_DETECTIONS: (tf.int32, [None]),
    keys.Detection.IMAGE_SIZE: (tf.int32, [None, 2]),
}
SIGNATURE_OUTPUTS = {
    "personlab": {**POSE_OUTPUTS, keys.Detection.MASKS: (tf.bool, [None, SLOTS, None, None])},
    "parts": {**POSE_OUTPUTS, keys.Detection.PART_MAP: (tf.uint8, [None, None, None]),
              keys.Detection.INSTANCE_PART_MAPS: (tf.uint8, [None, SLOTS, None, None])},
}
SIGNATURE_INPUTS = {serving.SERVING_DEFAULT: (tf.string, [None]), serving.SERVING_IMAGE: (tf.uint8, [None, None, None, 3])}


@pytest.fixture(scope="module", params=TASKS)
def exported(request):
    return request.param, *exported_model(request.param)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[2])


def run_task(model_dir):
    """The task of the run's operative config, with the export's inference options."""
    registry.parse_gin(config.run_gin_files(model_dir, []), [])
    task = config.experiment()
    overrides = {"max_side": MAX_SIDE}
    if task.name == "personlab":
        overrides["output_stride"] = OUTPUT_STRIDE
    return task.with_inference(**overrides)


@pytest.fixture(scope="module")
def restored(exported):
    """The checkpoint restored in this process, raw weights and optimizer averages (no EMA swap)."""
    model_dir = exported[1]
    gin.clear_config()
    try:
        model = run_task(model_dir).build_model(inference=True)
        optimizer = build_optimizer()
        checkpoints.restore_latest(checkpoints.build_checkpoint(model, optimizer), model_dir)
    finally:
        gin.clear_config()
    return model, optimizer


@pytest.fixture(scope="module")
def eager_detector(exported):
    """The exported pipeline run eagerly: the model restored with its EMA weights + the task's detector."""
    gin.clear_config()
    try:
        task = run_task(exported[1])
        model, _ = export.restore_inference_model(task, exported[1])
    finally:
        gin.clear_config()
    return task.build_detector(model.inference_model())


def serve(loaded, encoded_images):
    outputs = loaded.signatures[serving.SERVING_DEFAULT](images=tf.constant(encoded_images))
    return {key: value.numpy() for key, value in outputs.items()}


def image_maps(outputs):
    """The image-shaped output keys present."""
    return [key for key in serving.IMAGE_MAP_KEYS if key in outputs]


def assert_same(actual, expected, name=""):
    """Floats equal up to summation order (a few ulp), everything else exactly."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def check_equal(result, expected, index=0, atol=1e-4):
    """One image's slice of signature outputs equals a detector result (image maps cropped to the image)."""
    count = int(expected[keys.Detection.NUM_DETECTIONS])
    assert int(result[keys.Detection.NUM_DETECTIONS][index]) == count
    for key in (keys.Detection.KEYPOINTS, keys.Detection.KEYPOINT_SCORES, keys.Detection.INSTANCE_SCORES):
        np.testing.assert_allclose(result[key][index], np.asarray(expected[key]), atol=atol)
    for key in image_maps(expected):
        height, width = np.asarray(expected[key]).shape[-2:]
        np.testing.assert_array_equal(result[keys.Detection.IMAGE_SIZE][index], [height, width])
        found = result[key][index]
        np.testing.assert_array_equal(found[..., :height, :width], np.asarray(expected[key]), err_msg=key)
        assert not found[..., height:, :].any() and not found[..., :, width:].any()


def test_signatures_are_pinned(exported, loaded):
    """Names, dtypes and shapes of both signatures' inputs and outputs: what TF Serving clients rely on."""
    task = exported[0]
    assert set(loaded.signatures) == set(SIGNATURE_INPUTS)
    for name, (dtype, shape) in SIGNATURE_INPUTS.items():
        function = loaded.signatures[name]
        (spec,) = function.structured_input_signature[1].values()
        assert (spec.name, spec.dtype, spec.shape.as_list()) == (serving.INPUT_NAME, dtype, shape)
        outputs = {key: (value.dtype, value.shape.as_list()) for key, value in function.structured_outputs.items()}
        assert outputs == SIGNATURE_OUTPUTS[task]


def test_export_summary_and_task_record(exported, loaded):
    task_name, _, export_dir, summary = exported
    assert summary["step"] == 3 and summary["task"] == task_name
    assert summary["inference"]["max_side"] == MAX_SIDE
    assert summary["signatures"] == [serving.SERVING_DEFAULT, serving.SERVING_IMAGE]
    assert os.path.exists(os.path.join(export_dir, "saved_model.pb"))
    record = serving.read_metadata(loaded)
    assert record["task"] == task_name and record["step"] == 3
    task = registry.task_of_saved_model(loaded)
    assert task.name == task_name and task.inference.max_side == MAX_SIDE
    assert json.loads(json.dumps(task.config())) == summary["config"]


def test_personlab_export_options():
    summary = exported_model("personlab")[2]
    assert summary["inference"]["output_stride"] == OUTPUT_STRIDE and not summary["inference"]["multi_scale"]
    assert summary["config"]["data"]["disk_radius"] == 32.0


def test_saved_model_cli_lists_both_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--all", "--dir", exported[2]], capture_output=True, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in (serving.SERVING_DEFAULT, serving.SERVING_IMAGE):
        assert f"signature_def['{name}']" in shown.stdout
    for output in SIGNATURE_OUTPUTS[exported[0]]:
        assert f"outputs['{output}']" in shown.stdout
    assert "PyFunc" not in shown.stdout


def test_saved_model_cli_run_with_an_encoded_image(exported, tmp_path):
    """The docs/inference.md example: an object array of encoded bytes in a .npy file."""
    request = tmp_path / "request.npy"
    np.save(request, np.array([encode(textured_image(40, 50, seed=6), "JPEG")], dtype=object))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    ran = subprocess.run([cli, "run", "--dir", exported[2], "--tag_set", "serve", "--signature_def",
                          serving.SERVING_DEFAULT, "--inputs", f"images={request}", "--outdir", str(tmp_path / "out")],
                         capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{keys.Detection.IMAGE_SIZE}.npy"), [[40, 50]])
    for key in image_maps(SIGNATURE_OUTPUTS[exported[0]]):
        assert np.load(tmp_path / "out" / f"{key}.npy").shape[-2:] == (40, 50)


def test_serving_default_matches_the_eager_model(loaded, eager_detector):
    image = textured_image(90, 120)
    result = serve(loaded, [encode(image)])
    assert result[keys.Detection.KEYPOINTS].shape == (1, SLOTS, NUM_KEYPOINTS, 2)
    expected = eager_detector.detect(tf.constant(image))
    assert int(expected[keys.Detection.NUM_DETECTIONS]) > 0  # random weights: plenty of detections to compare
    check_equal(result, expected)


def test_serving_image_matches_serving_default(loaded):
    image = textured_image(77, 64, seed=1)
    from_bytes = serve(loaded, [encode(image)])
    from_pixels = loaded.signatures[serving.SERVING_IMAGE](images=tf.constant(image[np.newaxis]))
    for key, value in from_pixels.items():
        assert_same(value.numpy(), from_bytes[key], key)


def test_a_batch_of_mixed_sizes_pads_the_image_maps(loaded):
    small, large = textured_image(50, 70, seed=2), textured_image(96, 60, seed=3)
    batch = serve(loaded, [encode(small), encode(large, "JPEG")])
    for key in image_maps(batch):
        assert batch[key].shape[-2:] == (96, 70), key
    np.testing.assert_array_equal(batch[keys.Detection.IMAGE_SIZE], [[50, 70], [96, 60]])
    for index, data in enumerate([encode(small), encode(large, "JPEG")]):
        expected = serving.image_outputs(serve(loaded, [data]))
        check_equal(batch, expected, index, atol=1e-6)


def test_grey_and_rgba_images(loaded):
    image = textured_image(64, 80, seed=4)
    grey = np.asarray(tf.image.rgb_to_grayscale(image)).astype(np.uint8)[..., 0]
    as_rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1)
    expected = loaded.signatures[serving.SERVING_IMAGE](images=tf.constant(as_rgb[np.newaxis]))
    for data in (encode(grey, "PNG"), encode(grey, "JPEG", mode="L")):
        result = serve(loaded, [data])
        np.testing.assert_array_equal(result[keys.Detection.IMAGE_SIZE], [[64, 80]])
        if data[:4] == b"\x89PNG":  # lossless: exactly the RGB result
            for key, value in expected.items():
                assert_same(result[key], value.numpy(), key)
    rgba = serve(loaded, [encode(image, mode="RGBA")])
    rgb = serve(loaded, [encode(image)])
    for key, value in rgb.items():
        assert_same(rgba[key], value, key)


def test_corrupt_bytes_raise_and_the_next_call_works(loaded):
    good = encode(textured_image(40, 40, seed=5))
    for bad in (b"not an image at all", good[:60], b""):
        with pytest.raises(tf.errors.InvalidArgumentError):
            serve(loaded, [bad])
    assert serve(loaded, [good])[keys.Detection.IMAGE_SIZE].tolist() == [[40, 40]]


def test_empty_batch(loaded):
    result = serve(loaded, tf.constant([], tf.string))
    assert result[keys.Detection.NUM_DETECTIONS].shape == (0,)
    for key in image_maps(result):
        assert result[key].shape[0] == 0


def test_an_image_without_people_gives_zero_detections(exported, eager_detector, tmp_path):
    """A model that sees no keypoint anywhere (heatmap logits -30): empty, correctly shaped outputs."""
    model = eager_detector.model
    head = model.get_layer("heatmap_logits_head" if exported[0] == "personlab" else "heatmap_head")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])
    try:
        serving.export(eager_detector, str(tmp_path / "empty"), {"task": exported[0]})
    finally:
        head.set_weights([kernel, bias])
    result = serve(tf.saved_model.load(str(tmp_path / "empty")), [encode(np.zeros([48, 64, 3], np.uint8), "JPEG")])
    assert result[keys.Detection.NUM_DETECTIONS].tolist() == [0]
    assert not result[keys.Detection.KEYPOINTS].any() and not result[keys.Detection.INSTANCE_SCORES].any()
    for key in image_maps(result):
        assert result[key].shape[-2:] == (48, 64)
    for key in (keys.Detection.MASKS, keys.Detection.INSTANCE_PART_MAPS):
        if key in result:
            assert not result[key].any()


def test_exported_weights_are_the_polyak_averages(loaded, restored):
    model, optimizer = restored
    averages = {id(v): a.numpy() for v, a in zip(model.trainable_variables,
                                                  optimizer._model_variables_moving_average)}
    raw = {id(v): v.numpy() for v in model.trainable_variables}
    exported_variables = model.inference_model().variables
    assert len(loaded.model_variables) == len(exported_variables)
    differing = checked = 0
    for variable, saved in zip(exported_variables, loaded.model_variables):
        if id(variable) in averages:
            np.testing.assert_allclose(saved.numpy(), averages[id(variable)], rtol=1e-6, atol=1e-7)
            differing += not np.allclose(saved.numpy(), raw[id(variable)])
            checked += 1
        else:  # batch norm statistics: not averaged, as trained
            np.testing.assert_array_equal(saved.numpy(), variable.numpy())
    assert checked == len([v for v in exported_variables if v.trainable])
    assert differing > checked // 2
    # Training-only weights (PersonLab's auxiliary heads, the part parser's uncertainty weights) are not exported.
    assert not any("auxiliary" in v.path or "uncertainty" in v.path for v in exported_variables)


def test_the_detector_decodes_with_the_training_radius():
    gin.clear_config()
    try:
        registry.parse_gin([], ["experiment.task = @PersonLabTask()", "PersonLabData.disk_radius = 12.0",
                                "PersonLabNetwork.backbone = 'resnet_tiny'"])
        task = config.experiment()
    finally:
        gin.clear_config()
    assert task.build_detector(task.build_model().inference_model()).radius == 12.0


def test_an_inference_option_of_another_task_is_refused(tmp_path):
    model_dir = exported_model("parts")[0]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "export_saved_model.py"), "--model_dir", model_dir,
                             "--export_dir", str(tmp_path / "x"), "--multi_scale"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "multi_scale does not apply to the parts task" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (["--gin_file", "missing.gin"], "Unable to open file: missing.gin"),
    (["--gin_bindings", "PersonLabNetwork.backbone = 'resnet_tin'"], "unknown backbone 'resnet_tin'"),
])
def test_a_wrong_gin_file_or_value_ends_with_one_line(tmp_path, args, message):
    model_dir = exported_model("personlab")[0]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "export_saved_model.py"), "--model_dir", model_dir,
                             "--export_dir", str(tmp_path / "x"), *args], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x").exists()
