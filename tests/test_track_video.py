"""scripts/track_video.py with the session's tiny SavedModels: results with frame and track id, frames.json and an
overlay video of the input's size and length; damaged videos read as far as they go and counted; unusable input
in one line; outputs that never replace the input."""

import json

import numpy as np
import pytest

from personlab_tf.data import synthetic_video
from personlab_tf.video import io

from inference_fixtures import TASKS, exported_model, run_script, script_error, textured_image

FRAMES = 6


def write_clip(path, frames=FRAMES, height=72, width=96):
    """A short H.264 clip of smooth textures drifting right (the tiny models find something in them)."""
    base = textured_image(height, width + 4 * frames, seed=3)
    return io.write_video(str(path), [base[:, 4 * i:4 * i + width] for i in range(frames)], fps=8)


@pytest.mark.parametrize("task", TASKS)
def test_a_video_gives_results_frames_and_an_overlay_video(task, tmp_path):
    _, export_dir, _ = exported_model(task)
    write_clip(tmp_path / "walk.mp4")
    out = tmp_path / "out"
    # The tiny untrained models score below the tracker's defaults: track every detection.
    process, summary = run_script("track_video.py", "--saved_model", export_dir, "--video", str(tmp_path / "walk.mp4"),
                                  "--output_dir", str(out), "--gin_bindings", "TrackerOptions.min_score = 0.0",
                                  "--gin_bindings", "TrackerOptions.birth_score = 0.0")
    assert (summary["frames_expected"], summary["frames_read"], summary["frames_unread"],
            summary["frames_processed"]) == (FRAMES, FRAMES, 0, FRAMES)
    assert summary["overlay"] == str(out / "walk_tracked.mp4")
    assert "frame/s" in process.stderr   # the progress bar's rate
    frames = json.loads((out / "frames.json").read_text())
    assert [frame["frame"] for frame in frames] == list(range(FRAMES))
    assert all((frame["height"], frame["width"]) == (72, 96) for frame in frames)
    segments = json.loads((out / "segmentation_results.json").read_text())
    keypoints = json.loads((out / "keypoint_results.json").read_text())
    assert len(segments) == len(keypoints) == summary["detections"] == sum(f["detections"] for f in frames)
    for result in segments + keypoints:
        assert result["image_id"] == result["frame"] + 1 and isinstance(result["track_id"], int)
    per_frame = {}
    for result in segments:
        per_frame.setdefault(result["frame"], []).append(result["track_id"])
    assert {frame["frame"]: frame["track_ids"] for frame in frames if frame["track_ids"]} == per_frame
    tracked = {i for ids in per_frame.values() for i in ids if i >= 0}
    assert summary["detections"] > 0 and summary["tracks"] == len(tracked) > 0   # the tiny model finds people
    with io.VideoSource(summary["overlay"]) as overlay:
        assert overlay.size == (72, 96) and overlay.fps == 8.0
        assert len(list(overlay.frames())) == FRAMES


def test_a_truncated_video_is_tracked_as_far_as_it_goes(tmp_path):
    _, export_dir, _ = exported_model("personlab")
    rng = np.random.default_rng(0)
    io.write_video(str(tmp_path / "full.mp4"), [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(20)],
                   fps=10)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) // 2])
    process, summary = run_script("track_video.py", "--saved_model", export_dir, "--video", str(tmp_path / "cut.mp4"),
                                  "--output_dir", str(tmp_path / "out"), "--nooverlay")
    assert summary["frames_expected"] == 20 and 5 <= summary["frames_read"] <= 15
    assert summary["frames_read"] + summary["frames_unread"] == 20 == summary["frames_processed"] + summary["frames_unread"]
    assert summary["overlay"] is None and not list((tmp_path / "out").glob("*.mp4"))
    assert f"warning: {summary['frames_unread']} of 20 frames of {tmp_path / 'cut.mp4'} could not be read" in process.stderr
    assert "cut.mp4" in summary["problems"][0]


def test_outputs_never_replace_the_input(tmp_path):
    """An input in --output_dir named like an overlay stays as it was; one named like a results file is refused
    before anything is written."""
    _, export_dir, _ = exported_model("personlab")
    write_clip(tmp_path / "walk_tracked.mp4", frames=2)
    before = (tmp_path / "walk_tracked.mp4").read_bytes()
    _, summary = run_script("track_video.py", "--saved_model", export_dir, "--video", str(tmp_path / "walk_tracked.mp4"),
                            "--output_dir", str(tmp_path))
    assert summary["overlay"] == str(tmp_path / "walk_tracked_tracked.mp4")
    assert (tmp_path / "walk_tracked.mp4").read_bytes() == before
    write_clip(tmp_path / "frames.json", frames=2)   # a video whose name is a results file's
    before = (tmp_path / "frames.json").read_bytes()
    line = script_error("track_video.py", "--saved_model", export_dir, "--video", str(tmp_path / "frames.json"),
                        "--output_dir", str(tmp_path))
    assert "would replace the input" in line and (tmp_path / "frames.json").read_bytes() == before


@pytest.mark.parametrize("make, message", [
    (lambda path: None, "no such file or folder"),
    (lambda path: path.write_bytes(b"\x00\x01 not a video" * 50), "cannot open as video"),
    (lambda path: (write_clip(path, frames=2), path.write_bytes(path.read_bytes().replace(b"avc1", b"zzz9"))),
     "unknown video codec"),
])
def test_unusable_videos_end_with_one_line(tmp_path, make, message):
    _, export_dir, _ = exported_model("personlab")
    make(tmp_path / "in.mp4")
    line = script_error("track_video.py", "--saved_model", export_dir, "--video", str(tmp_path / "in.mp4"),
                        "--output_dir", str(tmp_path / "out"))
    assert line.startswith(f"error: {tmp_path / 'in.mp4'}: ") and message in line
    assert not (tmp_path / "out").exists()


def test_max_frames_stops_and_scores_only_the_frames_processed(tmp_path):
    _, export_dir, _ = exported_model("personlab")
    clip = tmp_path / "clip"
    synthetic_video.generate_clip(str(clip), seed=50, index=3, num_frames=8, size=(96, 128))
    _, summary = run_script("track_video.py", "--saved_model", export_dir, "--video", str(clip / "video.mp4"),
                            "--annotations", str(clip / "person_keypoints.json"), "--max_frames", "3",
                            "--output_dir", str(tmp_path / "out"))
    assert (summary["frames_processed"], summary["frames_read"], summary["frames_unread"]) == (3, 3, 0)
    metrics = json.loads((tmp_path / "out" / "tracking_metrics.json").read_text())
    truth = json.loads((clip / "person_keypoints.json").read_text())
    first_three = {image["id"] for image in truth["images"] if image["frame"] < 3}
    assert metrics["num_frames"] == 3
    assert metrics["num_objects"] == sum(a["image_id"] in first_three and a["area"] > 0 for a in truth["annotations"])
    with io.VideoSource(summary["overlay"]) as overlay:
        assert len(list(overlay.frames())) == 3
    assert "must be >= 1" in script_error("track_video.py", "--saved_model", export_dir, "--video",
                                          str(clip / "video.mp4"), "--output_dir", str(tmp_path / "x"),
                                          "--max_frames", "0")
