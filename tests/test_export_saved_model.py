"""scripts/export_saved_model.py and the SavedModel contract of both tasks (docs/inference.md, docs/parts.md):
pinned signatures, the task record, agreement with the eager detector, mixed sizes, grey / RGBA / corrupt
inputs, no detections, the exported EMA weights; the pixel limit and the image maps' lattice (bounded memory)."""

import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import config, errors, keys, registry
from personlab_tf.skeleton import COCO17
from personlab_tf.inference import export, maps, serving
from personlab_tf.train import checkpoints
from personlab_tf.train.optimizer import build_optimizer

from inference_fixtures import MAX_SIDE, OUTPUT_STRIDE, TASKS, encode, exported_model, script_error, textured_image

SLOTS = 20
# The signatures' outputs, pinned: name -> (dtype, shape); B images, the largest H x W of the batch.
POSE_OUTPUTS = {
    keys.Detection.KEYPOINTS: (tf.float32, [None, SLOTS, COCO17.num_keypoints, 2]),
    keys.Detection.KEYPOINT_SCORES: (tf.float32, [None, SLOTS, COCO17.num_keypoints]),
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


def restore_detector(model_dir):
    """The exported pipeline run eagerly: the model restored with its EMA weights + the task's detector."""
    gin.clear_config()
    try:
        task = run_task(model_dir)
        model, _ = export.restore_inference_model(task, model_dir)
    finally:
        gin.clear_config()
    return task.build_detector(model.inference_model())


@pytest.fixture(scope="module")
def eager_detector(exported):
    return restore_detector(exported[1])


@pytest.fixture(scope="module")
def personlab_detector():
    """PersonLab's eager detector, for the tests of the core's serving module that need one task only."""
    return restore_detector(exported_model("personlab")[0])


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
    assert record[serving.MAX_PIXELS] == summary[serving.MAX_PIXELS] == serving.DEFAULT_MAX_PIXELS
    task = registry.task_of_saved_model(loaded)
    assert task.name == task_name and task.options.inference.max_side == MAX_SIDE
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
    assert result[keys.Detection.KEYPOINTS].shape == (1, SLOTS, COCO17.num_keypoints, 2)
    expected = serving.detect_image(eager_detector, tf.constant(image))
    assert int(expected[keys.Detection.NUM_DETECTIONS]) > 0  # random weights: plenty of detections to compare
    check_equal(result, expected)


def test_serving_image_matches_serving_default(loaded):
    image = textured_image(77, 64, seed=1)
    from_bytes = serve(loaded, [encode(image)])
    from_pixels = loaded.signatures[serving.SERVING_IMAGE](images=tf.constant(image[np.newaxis]))
    for key, value in from_pixels.items():
        assert_same(value.numpy(), from_bytes[key], key)


def test_a_batch_of_mixed_sizes_pads_the_image_maps(loaded):
    """Images smaller and larger than the frame (lattice scales 1 and below 1, maps.py) in one batch."""
    images = [encode(textured_image(50, 70, seed=2)), encode(textured_image(96, 60, seed=3), "JPEG"),
              encode(textured_image(280, 150, seed=7))]
    batch = serve(loaded, images)
    for key in image_maps(batch):
        assert batch[key].shape[-2:] == (280, 150), key
    np.testing.assert_array_equal(batch[keys.Detection.IMAGE_SIZE], [[50, 70], [96, 60], [280, 150]])
    for index, data in enumerate(images):
        expected = serving.image_outputs(serve(loaded, [data]))
        check_equal(batch, expected, index, atol=1e-6)


def test_image_maps_are_computed_on_a_lattice_no_larger_than_the_frame(personlab_detector):
    """The detector's image maps of a 300 x 450 image exported at larger side 129 are 86 x 129 (the frame's
    pixels over the image); the SavedModel gives each original pixel its nearest lattice pixel's value."""
    image = tf.constant(textured_image(300, 450, seed=8))
    found = personlab_detector.detect(image)
    scale = (MAX_SIDE - 1) / 449
    assert float(found[keys.Detection.LATTICE_SCALE]) == pytest.approx(scale)
    for key in image_maps(found):
        assert found[key].shape[-2:] == (86, 129), key
    at_pixels = serving.detect_image(personlab_detector, image)
    rows, columns = (np.floor(np.arange(size) * scale + 0.5).astype(int) for size in (300, 450))
    for key in image_maps(found):
        np.testing.assert_array_equal(at_pixels[key], np.asarray(found[key])[..., rows, :][..., columns], err_msg=key)


def test_grid_masks_through_the_lattice_match_the_masks_at_every_pixel():
    """PersonLab's grid masks resampled at every original pixel of a large image (the exact path) and
    resampled on the lattice then spread to the pixels differ only within half a frame pixel (1/2g original
    pixels) of a boundary of the exact mask."""
    rng = np.random.default_rng(0)
    grid = np.zeros([3, 17, 17], bool)
    for slot, (top, left, size) in enumerate([(2, 3, 6), (8, 1, 5), (5, 9, 7)]):
        grid[slot, top:top + size, left:left + size + 2] = True
        grid[slot] &= rng.random([17, 17]) > 0.1
    image_size = tf.constant([700, 1000])
    scale = tf.constant(128 / 999)                                # a 1000-pixel side in a frame of 129, stride 8
    exact = maps.masks_to_original(tf.constant(grid), scale, 8, image_size).numpy()
    lattice = maps.lattice_scale(scale)
    on_lattice = maps.masks_to_original(tf.constant(grid), scale / lattice, 8, maps.lattice_size(image_size, lattice))
    spread = maps.to_image(on_lattice, lattice, image_size).numpy()
    assert exact.any(axis=(1, 2)).all()
    reach = 2 * int(np.ceil(0.5 / float(lattice))) + 3               # a window of more than a frame pixel
    values = tf.constant(exact[..., np.newaxis], tf.float32)
    dilated = tf.nn.max_pool2d(values, reach, 1, "SAME").numpy()[..., 0] > 0
    eroded = -tf.nn.max_pool2d(-values, reach, 1, "SAME").numpy()[..., 0] > 0
    differ = exact != spread
    assert differ.any() and not (differ & (dilated == eroded)).any()   # only near a boundary
    assert differ.mean() < 0.02
    unit = maps.lattice_scale(tf.constant(2.0))                   # an image smaller than the frame: exact
    assert float(unit) == 1.0
    np.testing.assert_array_equal(maps.to_image(tf.constant(grid), unit, tf.constant([17, 17])).numpy(), grid)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "BMP"])
def test_the_header_gives_the_size_without_decoding(image_format):
    data = encode(textured_image(37, 53, seed=9), image_format)
    np.testing.assert_array_equal(serving.encoded_image_size(tf.constant(data)), [37, 53])
    if image_format == "PNG":
        forged = data[:24]                                       # the header alone: no pixel data to decode
        assert serving.encoded_image_size(tf.constant(forged)).numpy().tolist() == [37, 53]
    for other in (b"", b"\x89PN", b"RIFF0000WEBPVP8 "):
        assert serving.encoded_image_size(tf.constant(other)).numpy().tolist() == [0, 0]


@pytest.mark.slow
def test_images_above_the_pixel_limit_are_refused(personlab_detector, tmp_path):
    """A SavedModel exported with max_pixels 1200: 30 x 40 images pass, 40 x 40 ones and a PNG header claiming
    100000 x 100000 pixels (nothing behind it) are an InvalidArgument error, and the next call works."""
    serving.export(personlab_detector, str(tmp_path / "capped"), {"task": "personlab"}, max_pixels=1200)
    capped = tf.saved_model.load(str(tmp_path / "capped"))
    assert serving.read_metadata(capped)[serving.MAX_PIXELS] == 1200
    fits, too_large = textured_image(30, 40, seed=10), textured_image(40, 40, seed=11)
    assert serve(capped, [encode(fits)])[keys.Detection.IMAGE_SIZE].tolist() == [[30, 40]]
    header = bytearray(encode(too_large)[:24])
    header[16:24] = (100000).to_bytes(4, "big") * 2
    for data, size in ((encode(too_large, "JPEG"), "40 x 40"), (encode(too_large, "BMP"), "40 x 40"),
                       (bytes(header), "100000 x 100000")):
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            serve(capped, [encode(fits), data])
        assert f"image of {size} pixels is above the limit of 1200 pixels" in errors.one_line(raised.value)
    with pytest.raises(tf.errors.InvalidArgumentError, match="above the limit of 1200"):
        capped.signatures[serving.SERVING_IMAGE](images=tf.constant(too_large[np.newaxis]))
    assert serve(capped, [encode(fits, "JPEG")])[keys.Detection.IMAGE_SIZE].tolist() == [[30, 40]]


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
    assert task.build_detector(task.build_model(inference=True).inference_model()).radius == 12.0


def test_an_inference_option_of_another_task_is_refused(tmp_path):
    """The inference flags are one set (personlab_tf/cli.py) wherever a model is built for inference: export and
    evaluation of a checkpoint take and check them alike."""
    model_dir = exported_model("parts")[0]
    assert "multi_scale does not apply to the parts task" in script_error(
        "export_saved_model.py", "--model_dir", model_dir, "--export_dir", str(tmp_path / "x"), "--multi_scale")
    assert "decode_stride, mask_resolution does not apply to the parts task" in script_error(
        "evaluate.py", "--model_dir", model_dir, "--decode_stride", "4", "--mask_resolution", "grid",
        "--annotations", "unused.json", "--images", ".")


def test_a_wrong_gin_file_ends_with_one_line(tmp_path):
    model_dir = exported_model("personlab")[0]
    assert "error: Unable to open file: missing.gin" in script_error(
        "export_saved_model.py", "--model_dir", model_dir, "--export_dir", str(tmp_path / "x"), "--gin_file",
        "missing.gin")
    assert not (tmp_path / "x").exists()
