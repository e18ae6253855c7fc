"""scripts/evaluate_tracking.py and personlab_tf/video/evaluation.py on a small synthetic clip: the oracle's and a
SavedModel's detections tracked and scored against the clip's identities; sweeps; track_video.py --annotations."""

import json

import pytest

from personlab_tf.data import synthetic_video

from inference_fixtures import exported_model, run_script, script_error

FRAMES = 5
# The tiny untrained model scores below the tracker's defaults: track every detection.
EVERY = ("--gin_bindings", "TrackerOptions.min_score = 0.0", "--gin_bindings", "TrackerOptions.birth_score = 0.0")
ORACLE = ("--oracle", "none", "--task", "personlab", "--gin_bindings", "PersonLabInference.max_side = 161")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 5-frame 96 x 128 clip (seed 50, clip 3: people walking in, crossing) and its persons with pixels."""
    folder = tmp_path_factory.mktemp("clips") / "clip_000"
    synthetic_video.generate_clip(str(folder), seed=50, index=3, num_frames=FRAMES, size=(96, 128))
    truth = json.loads((folder / "person_keypoints.json").read_text())
    persons = [a for a in truth["annotations"] if not a["iscrowd"] and a["area"] > 0]
    return folder, persons


def test_perfect_maps_are_tracked_and_scored_against_every_visible_person(clip):
    folder, persons = clip
    process, headline = run_script("evaluate_tracking.py", "--clips", str(folder.parent), *ORACLE,
                                   "--sweep", "birth_score=1.0", "--sweep", "velocity=False")
    every = json.loads(process.stdout.strip().splitlines()[-2])
    configured = every["variants"]["configured"]["overall"]
    assert (headline["clips"], headline["frames"]) == (1, FRAMES)
    assert configured["num_frames"] == FRAMES and configured["num_objects"] == len(persons)
    assert configured["num_unique_objects"] == len({a["track_id"] for a in persons})
    assert headline["mota"] == configured["mota"] and configured["num_predictions"] > 0
    # No detection reaches a birth score of 1: no track, every person missed, MOTA exactly 0.
    nothing = every["variants"]["birth_score=1.0"]["overall"]
    assert (nothing["mota"], nothing["num_misses"], nothing["num_predictions"]) == (0.0, len(persons), 0)
    assert every["variants"]["velocity=False"]["options"]["velocity"] is False
    assert "configuration" in process.stderr and "velocity=False" in process.stderr   # the table


def test_a_saved_model_is_tracked_on_the_clips_video(clip):
    folder, persons = clip
    _, export_dir, _ = exported_model("personlab")
    _, headline = run_script("evaluate_tracking.py", "--clips", str(folder), "--saved_model", export_dir, *EVERY)
    assert (headline["clips"], headline["frames"]) == (1, FRAMES)
    _, summary = run_script("track_video.py", "--saved_model", export_dir, "--video", str(folder / "video.mp4"),
                            "--annotations", str(folder / "person_keypoints.json"),
                            "--output_dir", str(folder.parent / "tracked"), "--nooverlay", *EVERY)
    metrics = json.loads((folder.parent / "tracked" / "tracking_metrics.json").read_text())
    assert metrics["num_frames"] == FRAMES and metrics["num_objects"] == len(persons)
    assert metrics["num_predictions"] > 0   # the tiny model's detections are tracked: the agreement below is not 0 = 0
    # The same model, frames and tracker: evaluate_tracking.py and track_video.py agree.
    assert (summary["mota"], summary["idf1"], summary["num_switches"]) == (
        headline["mota"], headline["idf1"], headline["num_switches"])


@pytest.mark.parametrize("args, message", [
    (("--oracle", "none", "--saved_model", "x"), "either --saved_model or --oracle"),
    (("--oracle", "none", "--task", "personlab", "--sweep", "speed=1,2"), "--sweep 'speed=1,2': expected NAME="),
    (("--oracle", "none", "--task", "personlab", "--sweep", "max_missed=a"), "'a' is not a number"),
])
def test_unusable_arguments_end_with_one_line(clip, args, message):
    folder, _ = clip
    assert message in script_error("evaluate_tracking.py", "--clips", str(folder), *args)


def test_a_folder_without_clips_or_a_still_dataset_is_refused(tmp_path):
    line = script_error("evaluate_tracking.py", "--clips", str(tmp_path), "--oracle", "none", "--task", "personlab")
    assert line == f"error: {tmp_path}: no clip (a folder with person_keypoints.json) in it"
    (tmp_path / "person_keypoints.json").write_text(json.dumps({"images": [{"id": 1}], "annotations": []}))
    line = script_error("evaluate_tracking.py", "--clips", str(tmp_path), "--oracle", "none", "--task", "personlab")
    assert line == f"error: {tmp_path / 'person_keypoints.json'}: image 1 has no 'frame': not a video's ground truth"
