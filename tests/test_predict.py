"""scripts/predict.py for both tasks: COCO results JSONs, overlay PNGs (and part maps), bad files skipped and
counted."""

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from personlab_tf.constants import NUM_KEYPOINTS

from inference_fixtures import TASKS, encode, exported_model, run_script, textured_image
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
    assert "000000000002.jpg" in process.stderr  # the warning names the file

    listed = {entry["id"]: entry for entry in json.loads((out / "images.json").read_text())}
    assert listed[785]["width"] == 640 and listed[785]["height"] == 425 and listed[1]["height"] == 60
    keypoints = json.loads((out / "keypoint_results.json").read_text())
    segments = json.loads((out / "segmentation_results.json").read_text())
    assert len(keypoints) == len(segments) == summary["detections"] > 0
    for entry in keypoints:
        assert entry["image_id"] in (1, 785) and len(entry["keypoints"]) == 3 * NUM_KEYPOINTS
    for entry in segments:
        height, width = listed[entry["image_id"]]["height"], listed[entry["image_id"]]["width"]
        assert entry["segmentation"]["size"] == [height, width]
        assert mask_utils.decode(dict(entry["segmentation"], counts=entry["segmentation"]["counts"].encode())).shape \
            == (height, width)

    suffixes = ("", "_parts") if task == "parts" else ("",)
    for stem, shape in (("000000000785", (425, 640, 3)), ("000000000001", (60, 80, 3))):
        for suffix in suffixes:
            assert np.asarray(Image.open(out / f"{stem}{suffix}.png")).shape == shape
    assert not (out / "000000000002.png").exists()
