"""Tests of the synthetic walking-people clips (personlab_tf.data.synthetic_video).

One tiny clip (96 x 128 frames at 5 fps, 10 frames) of seed 50, index 3, chosen for what the tests need: six
figures walking both ways, three of which walk in, a figure in front hiding part of another in most frames and
all of one in one frame (`test_the_test_clip_has_what_the_tests_need`).
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from personlab_tf.data import coco_format, synthetic, synthetic_body, synthetic_drawing, synthetic_video
from personlab_tf.skeleton import COCO17
from personlab_tf.video import io as video_io

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED, INDEX = 50, 3
SIZE = (96, 128)
FPS = 5.0
NUM_FRAMES = 10
LEFT_HIP, RIGHT_HIP = COCO17.keypoints.index("left_hip"), COCO17.keypoints.index("right_hip")
LEFT_ANKLE, RIGHT_ANKLE = COCO17.keypoints.index("left_ankle"), COCO17.keypoints.index("right_ankle")
JSON_PRECISION = 0.006  # keypoints are written rounded to 0.01 px


def _generate(path, num_frames=NUM_FRAMES, seed=SEED):
    return synthetic_video.generate_clip(str(path), seed, INDEX, num_frames, SIZE, FPS)


def _files(path):
    """{relative path: bytes} of every file written under `path`."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(folder, summary, COCO, the clip sampled again, [NUM_FRAMES] render_frame dicts) of the test clip."""
    path = tmp_path_factory.mktemp("clip")
    summary = _generate(path)
    clip = synthetic_video.sample_clip(SEED, INDEX, SIZE, FPS)
    frames = [synthetic_video.render_frame(clip, frame) for frame in range(NUM_FRAMES)]
    return path, summary, COCO(str(path / coco_format.ANNOTATIONS_FILE)), clip, frames


def _keypoints(annotation):
    """[K, 3] float (x, y, v) of a COCO annotation."""
    return np.array(annotation["keypoints"], float).reshape(-1, 3)


def _by_track(coco):
    """{track_id: {frame: annotation}}."""
    frame_of = {image["id"]: image["frame"] for image in coco.dataset["images"]}
    tracks = {}
    for annotation in coco.dataset["annotations"]:
        tracks.setdefault(annotation["track_id"], {})[frame_of[annotation["image_id"]]] = annotation
    return tracks


def test_the_test_clip_has_what_the_tests_need(written):
    _, summary, _, clip, _ = written
    assert summary["frames"] == summary["video_frames"] == NUM_FRAMES
    assert summary["figures"] == len(clip.walkers) == 6 and summary["tracks"] == 5  # one never comes in
    assert summary["entries"] == 3 and summary["hidden"] == 1 and summary["frames_with_occlusion"] >= 5
    assert summary["annotations"] >= 35
    assert {np.sign(walker.velocity) for walker in clip.walkers} == {-1.0, 1.0}


def test_coco_layout_frames_and_track_ids(written):
    path, _, coco, clip, _ = written
    images = coco.dataset["images"]
    assert [image["id"] for image in images] == list(range(1, NUM_FRAMES + 1))
    assert [image["frame"] for image in images] == list(range(NUM_FRAMES))
    assert {image["video_id"] for image in images} == {INDEX}
    for image in images:
        assert (image["height"], image["width"]) == SIZE
        assert (path / coco_format.IMAGES_DIR / image["file_name"]).is_file()
        assert (path / coco_format.PART_LABELS_DIR / image["file_name"].replace(".jpg", ".png")).is_file()
    assert sorted(walker.track_id for walker in clip.walkers) == list(range(1, len(clip.walkers) + 1))
    for image in images:
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        track_ids = [annotation["track_id"] for annotation in annotations]
        assert len(set(track_ids)) == len(track_ids)
        for annotation in annotations:
            assert annotation["iscrowd"] == 0 and annotation["area"] > 0
            assert annotation["id"] // synthetic.ANNOTATION_ID_STRIDE == image["id"]
    assert coco.dataset["categories"][0]["keypoints"] == list(COCO17.keypoints)


def test_hip_centre_moves_by_the_velocity_and_the_lower_ankle_stays_on_the_ground(written):
    _, _, coco, clip, _ = written
    tracks = _by_track(coco)
    checked_steps = checked_ankles = bobbing = 0
    for walker in clip.walkers:
        hips = {}
        for frame, annotation in tracks.get(walker.track_id, {}).items():
            keypoints = _keypoints(annotation)
            if keypoints[LEFT_HIP, 2] and keypoints[RIGHT_HIP, 2]:
                hips[frame] = (keypoints[LEFT_HIP, :2] + keypoints[RIGHT_HIP, :2]) / 2
                assert hips[frame][0] == pytest.approx(walker.start_x + walker.velocity * frame, abs=JSON_PRECISION)
                assert hips[frame] == pytest.approx(synthetic_video.hip_centre(walker, frame), abs=JSON_PRECISION)
            if keypoints[LEFT_ANKLE, 2] and keypoints[RIGHT_ANKLE, 2]:
                lower = max(keypoints[LEFT_ANKLE, 1], keypoints[RIGHT_ANKLE, 1])
                assert lower == pytest.approx(walker.ground_y, abs=JSON_PRECISION)
                checked_ankles += 1
        for frame in hips:
            if frame + 1 in hips:
                assert hips[frame + 1][0] - hips[frame][0] == pytest.approx(walker.velocity, abs=2 * JSON_PRECISION)
                checked_steps += 1
        if len(hips) >= 4:  # the body bobs a little as the legs swing
            rows = [hip[1] for hip in hips.values()]
            assert 0.1 < max(rows) - min(rows) < 0.06 * walker.height_px
            bobbing += 1
    assert checked_steps >= 15 and checked_ankles >= 15 and bobbing >= 3


def test_nearer_figures_are_drawn_later_lower_and_larger(written):
    _, _, _, clip, _ = written
    grounds = [walker.ground_y for walker in clip.walkers]
    assert grounds == sorted(grounds)
    for walker in clip.walkers:
        depth_scale = walker.ground_y - clip.horizon_y
        assert synthetic_video.STATURE[0] <= walker.height_px / depth_scale <= synthetic_video.STATURE[1]


def test_a_figure_is_in_the_frame_only_once_it_reaches_it(written):
    _, _, coco, clip, frames = written
    tracks = _by_track(coco)
    width = SIZE[1]
    outside = 0
    for n, walker in enumerate(clip.walkers):
        margin = synthetic_video.ENTRY_MARGIN * walker.height_px
        for frame in range(NUM_FRAMES):
            x = synthetic_video.hip_centre(walker, frame)[0]
            if x < -margin or x > width - 1 + margin:
                assert frames[frame]["drawn_areas"][n] == 0 and frame not in tracks.get(walker.track_id, {})
                outside += 1
    assert outside >= 5
    entering = [n for n in range(len(clip.walkers))
                if frames[0]["drawn_areas"][n] == 0 and any(frame["drawn_areas"][n] for frame in frames)]
    assert len(entering) == 3
    annotated = 0
    for n in entering:
        first = min(frame for frame in range(NUM_FRAMES) if frames[frame]["drawn_areas"][n])
        # Once it has come in, it stays in (a straight walk), annotated unless a figure in front hides it all.
        assert all(frames[frame]["drawn_areas"][n] for frame in range(first, NUM_FRAMES))
        seen = sorted(tracks.get(clip.walkers[n].track_id, {}))
        assert all(frame >= first for frame in seen)
        annotated += bool(seen)
    assert annotated == 2


def test_a_figure_in_front_hides_part_of_the_one_behind(written):
    _, _, coco, clip, frames = written
    occluded = [(frame, n) for frame, rendered in enumerate(frames) for n in range(len(clip.walkers))
                if 0 < rendered["visible_areas"][n] < rendered["drawn_areas"][n]]
    assert occluded
    for frame, n in occluded:
        walker = clip.walkers[n]
        alone = synthetic_video.render_frame(dataclasses.replace(clip, walkers=(walker,)), frame)
        [annotation] = alone["annotations"]
        assert annotation["area"] == frames[frame]["drawn_areas"][n]
        in_clip = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=frame + 1)) if a["track_id"] == walker.track_id]
        assert in_clip[0]["area"] == frames[frame]["visible_areas"][n] < annotation["area"]
        # Only figures drawn after it (nearer) can hide it.
        assert any(frames[frame]["drawn_areas"][m] for m in range(n + 1, len(clip.walkers)))


def test_a_wholly_hidden_figure_has_no_annotation(written):
    _, _, coco, clip, frames = written
    hidden = [(frame, n) for frame, rendered in enumerate(frames) for n in range(len(clip.walkers))
              if rendered["drawn_areas"][n] > 0 and rendered["visible_areas"][n] == 0]
    assert len(hidden) == 1
    for frame, n in hidden:
        track_ids = {a["track_id"] for a in coco.loadAnns(coco.getAnnIds(imgIds=frame + 1))}
        assert clip.walkers[n].track_id not in track_ids


def test_labelled_keypoints_lie_on_their_person_s_mask(written):
    _, _, coco, _, _ = written
    counts = {1: 0, 2: 0}
    for annotation in coco.dataset["annotations"]:
        mask = coco.annToMask(annotation).astype(bool)
        assert mask.sum() == annotation["area"]
        for x, y, v in _keypoints(annotation):
            if v:
                column, row = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
                assert mask[row, column] == (v == 2)
                counts[int(v)] += 1
        assert annotation["num_keypoints"] == int(np.count_nonzero(_keypoints(annotation)[:, 2]))
    assert counts[2] > 100 and counts[1] > 0


def test_clothes_keep_their_pattern_from_frame_to_frame(written):
    """The largest figure drawn alone (no camera noise) at its first and last frames wholly in view: the chest
    pixels at the same offsets from its (rounded) hip centre have the same colours."""
    _, _, _, clip, frames = written
    n = int(np.argmax([walker.height_px for walker in clip.walkers]))
    walker = clip.walkers[n]
    in_view = [frame for frame in range(NUM_FRAMES)
               if frames[frame]["drawn_areas"][n] == _drawn(walker, frame, SIZE)[1].sum()]
    assert len(in_view) >= 2
    offsets = [(dx, dy) for dy in range(int(-0.22 * walker.height_px), int(-0.12 * walker.height_px))
               for dx in range(-int(0.04 * walker.height_px), int(0.04 * walker.height_px) + 1)]
    colours, torso = [], []
    for frame in (in_view[0], in_view[-1]):
        image, _, body_parts = _drawn(walker, frame, SIZE)
        x, y = np.round(synthetic_video.hip_centre(walker, frame)).astype(int)
        colours.append(np.array([image[y + dy, x + dx] for dx, dy in offsets]))
        torso.append(np.array([body_parts[y + dy, x + dx] == synthetic_body.TORSO_PART for dx, dy in offsets]))
    chest = torso[0] & torso[1]
    assert chest.sum() >= 10
    assert np.array_equal(colours[0][chest], colours[1][chest])


def _drawn(walker, frame, size):
    """(image [H, W, 3] uint8, owner == 0 [H, W] bool, body parts [H, W] uint8) of `walker` drawn alone on black
    at `frame`, without camera noise."""
    image, owner = np.zeros(size + (3,), np.uint8), np.full(size, -1, np.int16)
    body_parts = np.zeros(size, np.uint8)
    synthetic_drawing.draw_figure(image, owner, body_parts, synthetic_video.walker_figure(walker, frame, COCO17), 0,
                                  None)
    return image, owner == 0, body_parts


def test_same_seed_gives_identical_files_and_frames_do_not_depend_on_the_clip_length(tmp_path, written):
    path = written[0]
    again, short, other = tmp_path / "again", tmp_path / "short", tmp_path / "other"
    _generate(again)
    assert _files(again) == _files(path)
    _generate(short, num_frames=3)
    for image_id in (1, 2, 3):
        name = f"{coco_format.IMAGES_DIR}/{image_id:012d}.jpg"
        assert (short / name).read_bytes() == (path / name).read_bytes()
    short_annotations = json.loads((short / coco_format.ANNOTATIONS_FILE).read_text())["annotations"]
    all_annotations = json.loads((path / coco_format.ANNOTATIONS_FILE).read_text())["annotations"]
    assert short_annotations == [a for a in all_annotations if a["image_id"] <= 3]
    _generate(other, num_frames=3, seed=SEED + 1)
    assert (other / f"{coco_format.IMAGES_DIR}/{1:012d}.jpg").read_bytes() != (
        path / f"{coco_format.IMAGES_DIR}/{1:012d}.jpg").read_bytes()


def test_video_decodes_to_the_frames(written):
    path, _, coco, _, frames = written
    decoded = list(video_io.read_frames(str(path / synthetic_video.VIDEO_FILE)))
    assert len(decoded) == NUM_FRAMES
    luma = [_luma(rendered["image"]) for rendered in frames]
    for index, frame in enumerate(decoded):
        assert frame.shape == SIZE + (3,)
        distances = [np.abs(_luma(frame) - other).mean() for other in luma]
        assert distances[index] < 3 and int(np.argmin(distances)) == index  # H.264 keeps luma, in order


def _luma(image):
    """[H, W] float grey levels of an RGB image, smoothed (the video's chroma is subsampled, its noise lost)."""
    return cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(float), (5, 5), 0)


@pytest.mark.parametrize("options, message", [
    ({"num_frames": 0}, "at least one frame"),
    ({"size": (95, 128)}, "must be even"),
    ({"fps": 0.0}, "fps must be positive"),
    ({"min_persons": 3, "max_persons": 2}, "min_persons <= max_persons"),
])
def test_bad_options_raise_one_line_before_writing(tmp_path, options, message):
    arguments = {"num_frames": NUM_FRAMES, "size": SIZE, "fps": FPS, **options}
    with pytest.raises(ValueError, match=message) as raised:
        synthetic_video.generate_clip(str(tmp_path / "clip"), SEED, INDEX, **arguments)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "clip").exists()


def _run_script(*arguments):
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "make_synthetic_video.py"), *arguments],
                          capture_output=True, text=True, cwd=REPO_ROOT, check=False)


def test_script_writes_clip_folders_and_a_json_summary(tmp_path):
    result = _run_script("--output", str(tmp_path), "--num_clips", "2", "--num_frames", "2", "--height", "64",
                         "--width", "96", "--seed", "4", "--min_persons", "1", "--max_persons", "2")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["clips"] == 2 and summary["frames"] == 4 and summary["skeleton"] == "coco17"
    for index in (0, 1):
        clip = tmp_path / f"clip_{index:03d}"
        data = json.loads((clip / coco_format.ANNOTATIONS_FILE).read_text())
        assert {image["video_id"] for image in data["images"]} == {index}
        assert (clip / synthetic_video.VIDEO_FILE).is_file()
    bad = _run_script("--output", str(tmp_path / "bad"), "--height", "63")
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: ")
    assert not (tmp_path / "bad").exists()
