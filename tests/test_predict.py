"""scripts/predict.py for both tasks: COCO results JSONs, overlay PNGs (and part maps), bad files skipped and
counted with their reason; outputs that never replace an input; unusable arguments in one line."""

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from personlab_tf.skeleton import COCO17

from inference_fixtures import TASKS, encode, exported_model, run_script, script_error, textured_image
from sample_factory import SHARED_DATA


@pytest.mark.parametrize("task", TASKS)
def test_predict_writes_results_and_overlays_and_skips_bad_files(task, tmp_path):
    _, export_dir, _ = exported_model(task)
    images = tmp_path / "images"
    images.mkdir()
    real = SHARED_DATA / "coco_val_sample" / "images" / "000000000785.jpg"
    (images / "000000000785.jpg").write_bytes(real.read_bytes())
    (images / "000000000001.png").write_bytes(encode(textured_image(60, 80), mode="RGBA"))
    (images / "000000000002.jpg").write_bytes(b"\xff\xd8\xff broken jpeg")
    out = tmp_path / "out"
    process, summary = run_script("predict.py", "--saved_model", export_dir, "--images", str(images / "*"),
                                  "--output_dir", str(out))
    assert summary["images_found"] == 3 and summary["images_processed"] == 2 and summary["images_skipped"] == 1
    assert summary["skipped_files"] == [str(images / "000000000002.jpg")]
    warning = next(line for line in process.stderr.splitlines() if "skipping" in line)
    assert "000000000002.jpg: " in warning  # the warning names the file and the decoder's reason
    assert "Graph execution error" not in process.stderr and "JPEG" in warning.split("000000000002.jpg: ")[1]

    listed = {entry["id"]: entry for entry in json.loads((out / "images.json").read_text())}
    assert listed[785]["width"] == 640 and listed[785]["height"] == 425 and listed[1]["height"] == 60
    keypoints = json.loads((out / "keypoint_results.json").read_text())
    segments = json.loads((out / "segmentation_results.json").read_text())
    assert len(keypoints) == len(segments) == summary["detections"] > 0
    for entry in keypoints:
        assert entry["image_id"] in (1, 785) and len(entry["keypoints"]) == 3 * COCO17.num_keypoints
    for entry in segments:
        height, width = listed[entry["image_id"]]["height"], listed[entry["image_id"]]["width"]
        assert entry["segmentation"]["size"] == [height, width]
        assert mask_utils.decode(dict(entry["segmentation"], counts=entry["segmentation"]["counts"].encode())).shape \
            == (height, width)

    suffixes = ("", "_parts") if task == "parts" else ("",)
    for name, shape in (("000000000785.jpg", (425, 640, 3)), ("000000000001.png", (60, 80, 3))):
        for suffix in suffixes:
            assert np.asarray(Image.open(out / f"{name}{suffix}.png")).shape == shape
    assert sorted(path.name for path in out.glob("*.png")) == sorted(
        f"{name}{suffix}.png" for name in ("000000000785.jpg", "000000000001.png") for suffix in suffixes)


@pytest.mark.slow
def test_outputs_never_replace_an_input_nor_each_other(tmp_path):
    """--output_dir the input folder, two inputs of one stem and an input named like an overlay."""
    _, export_dir, _ = exported_model("personlab")
    images = tmp_path / "images"
    images.mkdir()
    inputs = {"a.jpg": encode(textured_image(40, 50, seed=1), "JPEG"), "a.png": encode(textured_image(30, 20, seed=2)),
              "a.jpg.png": encode(textured_image(24, 36, seed=3))}
    for name, data in inputs.items():
        (images / name).write_bytes(data)
    _, summary = run_script("predict.py", "--saved_model", export_dir, "--images", str(images), "--output_dir",
                            str(images))
    assert summary["images_processed"] == 3
    assert {name: (images / name).read_bytes() for name in inputs} == inputs  # no input overwritten
    overlays = {entry["file_name"]: entry["overlays"] for entry in json.loads((images / "images.json").read_text())}
    assert overlays == {"a.jpg": ["a.jpg-2.png"], "a.jpg.png": ["a.jpg.png.png"], "a.png": ["a.png.png"]}
    for name, (overlay_name,) in overlays.items():
        assert Image.open(images / overlay_name).size == Image.open(images / name).size


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--saved_model", "MISSING", "--images", "IMAGES"], "SavedModel file does not exist at: "),
    (["--saved_model", "EXPORTED", "--images", "NOTHING"], "matches no image file"),
    (["--saved_model", "EXPORTED", "--images", "RESULTS_FILE", "--output_dir", "FOLDER"], "would replace the input"),
])
def test_unusable_arguments_end_with_one_line(tmp_path, args, message):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(encode(textured_image(20, 20), "JPEG"))
    (folder / "images.json").write_bytes(encode(textured_image(20, 20)))  # an image with a results file's name
    values = {"MISSING": str(tmp_path / "missing"), "EXPORTED": exported_model("personlab")[1], "IMAGES": str(folder),
              "NOTHING": str(tmp_path / "nothing" / "*.jpg"), "RESULTS_FILE": str(folder / "images.json"),
              "FOLDER": str(folder)}
    args = [values.get(arg, arg) for arg in args]
    if "--output_dir" not in args:
        args += ["--output_dir", str(tmp_path / "out")]
    assert message in script_error("predict.py", *args)
    assert (folder / "images.json").read_bytes() == encode(textured_image(20, 20))
