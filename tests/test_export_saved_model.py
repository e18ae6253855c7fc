"""scripts/export_saved_model.py and the SavedModel contract (DESIGN §6): signatures, agreement with the eager
model, mixed sizes, grey / RGBA / corrupt inputs, no detections, and the exported EMA weights."""

import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import config, keys
from personlab_tf.constants import NUM_KEYPOINTS
from personlab_tf.inference import detector, export, serving
from personlab_tf.model import personlab
from personlab_tf.train import checkpoints
from inference_fixtures import MAX_SIDE, OUTPUT_STRIDE, encode, exported_model, textured_image

SLOTS = 20


@pytest.fixture(scope="module")
def exported():
    return exported_model()


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[1])


@pytest.fixture(scope="module")
def restored(exported):
    """The checkpoint restored in this process, raw weights and optimizer averages (no EMA swap)."""
    model_dir = exported[0]
    gin.clear_config()
    config.parse_gin(export.default_gin_files(model_dir, []), [])
    try:
        model = personlab.build_model(output_stride=OUTPUT_STRIDE)
        optimizer = personlab.build_optimizer()
        checkpoints.restore_latest(checkpoints.build_checkpoint(model, optimizer), model_dir)
    finally:
        gin.clear_config()
    return model, optimizer


@pytest.fixture(scope="module")
def eager_detector(exported):
    """The exported pipeline run eagerly: the model restored with its EMA weights + Detector."""
    gin.clear_config()
    config.parse_gin(export.default_gin_files(exported[0], []), [])
    try:
        model, _ = export.restore_averaged_model(exported[0], OUTPUT_STRIDE)
    finally:
        gin.clear_config()
    return detector.Detector(model.inference_model(), OUTPUT_STRIDE, MAX_SIDE)


def serve(loaded, encoded_images):
    outputs = loaded.signatures[serving.SERVING_DEFAULT](images=tf.constant(encoded_images))
    return {key: value.numpy() for key, value in outputs.items()}


def assert_same(actual, expected, name=""):
    """Floats equal up to summation order (a few ulp), everything else exactly."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def check_equal(result, expected, index=0, atol=1e-4):
    """One image's slice of signature outputs equals a detector result (masks cropped to the image)."""
    count = int(expected[keys.NUM_DETECTIONS])
    assert int(result[keys.NUM_DETECTIONS][index]) == count
    for key in (keys.DETECTION_KEYPOINTS, keys.KEYPOINT_SCORES, keys.INSTANCE_SCORES):
        np.testing.assert_allclose(result[key][index], np.asarray(expected[key]), atol=atol)
    height, width = np.asarray(expected[keys.INSTANCE_MASKS]).shape[1:]
    np.testing.assert_array_equal(result[keys.IMAGE_SIZE][index], [height, width])
    mask = result[keys.INSTANCE_MASKS][index]
    np.testing.assert_array_equal(mask[:, :height, :width], np.asarray(expected[keys.INSTANCE_MASKS]))
    assert not mask[:, height:].any() and not mask[:, :, width:].any()


def test_export_summary(exported):
    _, export_dir, summary = exported
    assert summary["step"] == 3 and summary["output_stride"] == OUTPUT_STRIDE and summary["max_side"] == MAX_SIDE
    assert summary["signatures"] == [serving.SERVING_DEFAULT, serving.SERVING_IMAGE]
    assert os.path.exists(os.path.join(export_dir, "saved_model.pb"))


def test_saved_model_cli_lists_both_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--all", "--dir", exported[1]], capture_output=True, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in (serving.SERVING_DEFAULT, serving.SERVING_IMAGE):
        assert f"signature_def['{name}']" in shown.stdout
    for output in (keys.DETECTION_KEYPOINTS, keys.KEYPOINT_SCORES, keys.INSTANCE_SCORES, keys.NUM_DETECTIONS,
                   keys.INSTANCE_MASKS, keys.IMAGE_SIZE):
        assert f"outputs['{output}']" in shown.stdout
    assert "PyFunc" not in shown.stdout


def test_saved_model_cli_run_with_an_encoded_image(exported, tmp_path):
    """The docs/inference.md example: an object array of encoded bytes in a .npy file."""
    request = tmp_path / "request.npy"
    np.save(request, np.array([encode(textured_image(40, 50, seed=6), "JPEG")], dtype=object))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    ran = subprocess.run([cli, "run", "--dir", exported[1], "--tag_set", "serve", "--signature_def",
                          serving.SERVING_DEFAULT, "--inputs", f"images={request}", "--outdir", str(tmp_path / "out")],
                         capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{keys.IMAGE_SIZE}.npy"), [[40, 50]])
    assert np.load(tmp_path / "out" / f"{keys.INSTANCE_MASKS}.npy").shape == (1, SLOTS, 40, 50)


def test_serving_default_matches_the_eager_model(loaded, eager_detector):
    image = textured_image(90, 120)
    result = serve(loaded, [encode(image)])
    assert result[keys.DETECTION_KEYPOINTS].shape == (1, SLOTS, NUM_KEYPOINTS, 2)
    assert result[keys.INSTANCE_MASKS].shape == (1, SLOTS, 90, 120)
    expected = eager_detector.detect(tf.constant(image))
    assert int(expected[keys.NUM_DETECTIONS]) > 0  # random weights: plenty of detections to compare
    check_equal(result, expected)


def test_serving_image_matches_serving_default(loaded):
    image = textured_image(77, 64, seed=1)
    from_bytes = serve(loaded, [encode(image)])
    from_pixels = loaded.signatures[serving.SERVING_IMAGE](images=tf.constant(image[np.newaxis]))
    for key, value in from_pixels.items():
        assert_same(value.numpy(), from_bytes[key], key)


def test_a_batch_of_mixed_sizes_pads_the_masks(loaded):
    small, large = textured_image(50, 70, seed=2), textured_image(96, 60, seed=3)
    batch = serve(loaded, [encode(small), encode(large, "JPEG")])
    assert batch[keys.INSTANCE_MASKS].shape == (2, SLOTS, 96, 70)
    np.testing.assert_array_equal(batch[keys.IMAGE_SIZE], [[50, 70], [96, 60]])
    for index, data in enumerate([encode(small), encode(large, "JPEG")]):
        alone = serve(loaded, [data])
        expected = {key: value[0] for key, value in alone.items()}
        expected[keys.INSTANCE_MASKS] = expected[keys.INSTANCE_MASKS][:, :alone[keys.IMAGE_SIZE][0][0],
                                                                      :alone[keys.IMAGE_SIZE][0][1]]
        check_equal(batch, expected, index, atol=1e-6)


def test_grey_and_rgba_images(loaded):
    image = textured_image(64, 80, seed=4)
    grey = np.asarray(tf.image.rgb_to_grayscale(image)).astype(np.uint8)[..., 0]
    as_rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1)
    expected = loaded.signatures[serving.SERVING_IMAGE](images=tf.constant(as_rgb[np.newaxis]))
    for data in (encode(grey, "PNG"), encode(grey, "JPEG", mode="L")):
        result = serve(loaded, [data])
        np.testing.assert_array_equal(result[keys.IMAGE_SIZE], [[64, 80]])
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
    assert serve(loaded, [good])[keys.IMAGE_SIZE].tolist() == [[40, 40]]


def test_empty_batch(loaded):
    result = serve(loaded, tf.constant([], tf.string))
    assert result[keys.NUM_DETECTIONS].shape == (0,) and result[keys.INSTANCE_MASKS].shape[:2] == (0, SLOTS)


def test_an_image_without_people_gives_zero_detections(eager_detector, tmp_path):
    """A model that sees no keypoint anywhere (heatmap logits -30): empty, correctly shaped outputs."""
    model = eager_detector.model
    head = model.get_layer(f"{keys.HEATMAP_LOGITS}_head")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])
    try:
        serving.export(detector.Detector(model, OUTPUT_STRIDE, MAX_SIDE), str(tmp_path / "empty"))
    finally:
        head.set_weights([kernel, bias])
    result = serve(tf.saved_model.load(str(tmp_path / "empty")), [encode(np.zeros([48, 64, 3], np.uint8), "JPEG")])
    assert result[keys.NUM_DETECTIONS].tolist() == [0]
    assert result[keys.INSTANCE_MASKS].shape == (1, SLOTS, 48, 64) and not result[keys.INSTANCE_MASKS].any()
    assert not result[keys.DETECTION_KEYPOINTS].any() and not result[keys.INSTANCE_SCORES].any()


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
    # The auxiliary heads are not exported.
    assert not any("auxiliary" in v.path for v in exported_variables)


def test_export_refuses_a_decoding_radius_other_than_the_trained_one(tmp_path):
    def export_with(bindings):
        gin.clear_config()
        try:
            config.parse_gin([], bindings)
            export.export_checkpoint(str(tmp_path / "run"), str(tmp_path / "export"))
        finally:
            gin.clear_config()

    with pytest.raises(ValueError, match="disk radius 12.0"):
        export_with(["build_dataset.disk_radius = 12.0", "decoding_options.radius = 32.0"])
    # Unbound, the decoding radius is the training targets' (what a run's operative config records).
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_with(["build_dataset.disk_radius = 12.0"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_with(["build_dataset.disk_radius = 12.0", "decoding_options.radius = 12.0"])
    # One macro bound to both, as gin/demo.gin does.
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_with(["R = 12.0", "build_dataset.disk_radius = %R", "decoding_options.radius = %R"])
