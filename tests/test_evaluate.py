"""scripts/evaluate.py for both tasks: a SavedModel or a checkpoint over a coco_person split or a COCO JSON with
its images; the paper's metric rows, and unreadable images skipped and counted in the summary (also those a
cached tfds build skipped); a stale tfds dataset refused."""

import json

import pytest

from personlab_tf.data import coco_format, synthetic, synthetic_scene
from personlab_tf.evaluation import metrics
from personlab_tf.tfds_builders import coco_person
from personlab_tf.tfds_builders.coco_person import layout

import coco_samples
from coco_samples import make_sample_tree
from inference_fixtures import MAX_SIDE, TASKS, exported_model, run_script, script_error

HEADLINES = {"personlab": {"keypoints_AP", "segm_AP"}, "parts": {"APp_50", "APp_vol", "PCP50", "mIoU"}}


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
    assert from_saved_model["task"] == "personlab"
    assert from_saved_model["images_evaluated"] == 4 and from_saved_model["images_skipped"] == 0
    found = from_saved_model["metrics"]
    assert set(found["keypoints"]) == set(metrics.KEYPOINT_METRICS)
    assert {"AP", "AP50", "AP75", "APS", "APM", "APL", "AR1", "AR10", "AR20"} <= set(found["segmentation"])
    assert set(found["segmentation_keypoint_persons"]) == set(found["segmentation"])
    assert from_saved_model["keypoints_AP"] == found["keypoints"]["AP"]
    assert from_saved_model["segm_AP"] == found["segmentation"]["AP"]
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["keypoints"] == found["keypoints"]
    _, from_checkpoint = run_script("evaluate.py", "--model_dir", model_dir, "--max_side", str(MAX_SIDE),
                                    "--output_stride", "8", "--data_dir", data_dir, "--split", "validation")
    for group in ("keypoints", "segmentation", "segmentation_keypoint_persons"):
        for name, value in found[group].items():
            assert from_checkpoint["metrics"][group][name] == pytest.approx(value, abs=1e-6), (group, name)


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of --saved_model and --model_dir"),
    (["--saved_model", "x"], "SavedModel file does not exist at: x"),
    (["--saved_model", "EXPORTED", "--split", "train"], "split 'train' is not in"),
    (["--saved_model", "EXPORTED", "--annotations", "TRUNCATED_JSON", "--images", "."], "is not valid JSON"),
    (["--saved_model", "EXPORTED", "--max_side", "513"], "--max_side: inference options of a run (--model_dir)"),
])
def test_bad_arguments_end_with_one_line(tfds_dirs, tmp_path, args, message):
    manual_dir, data_dir = tfds_dirs
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps({"images": [{"id": 1}] * 50})[:100])  # a JSON file cut short
    values = {"EXPORTED": exported_model()[1], "TRUNCATED_JSON": str(truncated)}
    args = [values.get(arg, arg) for arg in args]
    assert message in script_error("evaluate.py", "--data_dir", str(data_dir), "--manual_dir", str(manual_dir), *args)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_a_coco_json_with_either_task_and_a_truncated_image(task, tmp_path):
    data = tmp_path / "data"
    synthetic.generate_dataset(str(data), 3, seed=4, min_side=96, max_side=128,
                               scene=synthetic_scene.PARTS_SCENE if task == "parts" else synthetic_scene.COCO_SCENE)
    truncated = data / coco_format.IMAGES_DIR / "000000000002.jpg"
    truncated.write_bytes(truncated.read_bytes()[:400])   # the header survives, the pixels do not
    process, summary = run_script("evaluate.py", "--saved_model", exported_model(task)[1], "--annotations",
                                  str(data / coco_format.ANNOTATIONS_FILE), "--images", str(data / coco_format.IMAGES_DIR),
                                  "--output_dir", str(tmp_path / "eval"))
    assert summary["task"] == task and HEADLINES[task] <= set(summary)
    assert summary["images_evaluated"] == 2 and summary["images_skipped"] == 1
    assert summary["input_warnings"] == {"corrupt_image": 1} and "image id 2" in process.stderr
    assert (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.slow
def test_a_cached_tfds_split_reports_what_its_build_skipped_and_a_changed_json_is_refused(tmp_path):
    dataset = coco_samples.load_sample(layout.VALIDATION)
    dataset["images"].append(dict(dataset["images"][0], id=999, file_name="missing.jpg"))
    annotations = tmp_path / "val.json"
    annotations.write_text(json.dumps(dataset))
    manual_dir, data_dir = tmp_path / "coco", tmp_path / "tfds"
    images = coco_samples.sample_images_dir(layout.VALIDATION)
    layout.arrange_coco_tree(manual_dir, layout.VALIDATION, annotations, images)
    coco_person.prepare(manual_dir, data_dir)  # an earlier run built it; this one reads the cache alone
    _, summary = run_script("evaluate.py", "--saved_model", exported_model()[1], "--data_dir", data_dir)
    assert summary["images_evaluated"] == 4 and summary["images_skipped"] == 1 and summary["skipped_image_ids"] == [999]
    assert summary["input_warnings"] == {"missing_image": 1}
    assert summary["annotations_sha256"] == coco_person.annotations_fingerprint(annotations)

    del dataset["annotations"][0]
    annotations.write_text(json.dumps(dataset))
    assert "does not match" in script_error("evaluate.py", "--saved_model", exported_model()[1], "--data_dir",
                                            str(data_dir), "--manual_dir", str(manual_dir))
