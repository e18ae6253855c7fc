"""personlab_tf/video/pipeline.py: the overlapped stages give exactly what the sequential path gives, in frame
order; a failing stage stops the run with its own exception; results carry frame and track id."""

import threading

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from personlab_tf import keys
from personlab_tf.inference import overlay
from personlab_tf.skeleton import COCO17
from personlab_tf.video import pipeline
from personlab_tf.video.tracker import Tracker, TrackerOptions

HEIGHT, WIDTH = 40, 60


def walking_frames(count):
    """(index, frame) pairs whose first pixel encodes the frame index (the fake detector reads it back)."""
    frames = []
    for index in range(count):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[0, 0] = index
        frames.append((index, frame))
    return frames


def detect(frame):
    """Two people 20 px apart, both moving 2 px right per frame (frame index from the first pixel); padded to 3
    slots."""
    index = int(frame[0, 0, 0])
    keypoints = np.zeros((3, COCO17.num_keypoints, 2), np.float32)
    masks = np.zeros((3, HEIGHT, WIDTH), bool)
    for person, x0 in enumerate((5, 30)):
        x = x0 + 2 * index
        keypoints[person] = np.stack([np.full(COCO17.num_keypoints, x), np.linspace(8, 35, COCO17.num_keypoints)], -1)
        masks[person, 6:38, x - 3:x + 4] = True
    return {keys.Detection.KEYPOINTS: keypoints,
            keys.Detection.KEYPOINT_SCORES: np.array([[0.9] * COCO17.num_keypoints] * 2 + [[0.0] * COCO17.num_keypoints],
                                                     np.float32),
            keys.Detection.INSTANCE_SCORES: np.array([0.9, 0.8, 0.0], np.float32),
            keys.Detection.NUM_DETECTIONS: np.array(2, np.int32), keys.Detection.MASKS: masks}


def run(frames, overlap, max_frames=None):
    recorder = pipeline.Recorder(COCO17)
    count = pipeline.run(frames, detect, Tracker(COCO17, TrackerOptions()), recorder, overlap=overlap,
                         max_frames=max_frames)
    return count, recorder


def test_overlapped_run_equals_the_sequential_one_frame_by_frame():
    count, overlapped = run(walking_frames(12), overlap=True)
    _, sequential = run(walking_frames(12), overlap=False)
    assert count == 12 and overlapped.frames == sequential.frames
    assert overlapped.segmentation == sequential.segmentation and overlapped.keypoints == sequential.keypoints
    assert [frame["frame"] for frame in overlapped.frames] == list(range(12))
    assert all(frame["track_ids"] == [1, 2] for frame in overlapped.frames)   # two identities all along
    assert overlapped.track_count() == 2


def test_results_carry_frame_track_id_and_the_frame_as_image_id():
    _, recorder = run(walking_frames(3), overlap=True)
    assert len(recorder.keypoints) == len(recorder.segmentation) == 6
    for result in recorder.keypoints + recorder.segmentation:
        assert result["image_id"] == result["frame"] + 1 and result["track_id"] in (1, 2)
    last = [r for r in recorder.segmentation if r["frame"] == 2 and r["track_id"] == 2][0]
    mask = mask_utils.decode(dict(last["segmentation"], counts=last["segmentation"]["counts"].encode()))
    assert mask.shape == (HEIGHT, WIDTH) and np.flatnonzero(mask.any(axis=0)).tolist() == list(range(31, 38))


def test_max_frames_stops_the_run():
    count, recorder = run(walking_frames(10), overlap=True, max_frames=4)
    assert count == 4 and len(recorder.frames) == 4


def test_a_failing_reader_or_writer_stops_the_run_with_its_error():
    def broken_frames():
        yield from walking_frames(3)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        run(broken_frames(), overlap=True)

    def broken_consumer(tracked):
        if tracked.index == 2:
            raise ValueError("cannot write frame 2")

    with pytest.raises(ValueError, match="cannot write frame 2"):
        pipeline.run(walking_frames(20), detect, Tracker(COCO17, TrackerOptions()), broken_consumer)


def test_reading_and_writing_run_in_their_own_threads():
    threads = {}

    def frames():
        for frame in walking_frames(3):
            threads.setdefault("read", threading.get_ident())
            yield frame

    def consume(tracked):
        threads.setdefault("write", threading.get_ident())

    pipeline.run(frames(), detect, Tracker(COCO17, TrackerOptions()), consume)
    assert len({threads["read"], threads["write"], threading.get_ident()}) == 3
    threads.clear()
    pipeline.run(frames(), detect, Tracker(COCO17, TrackerOptions()), consume, overlap=False)
    assert threads["read"] == threads["write"] == threading.get_ident()


def test_the_overlay_keeps_an_identitys_colour():
    detections = detect(walking_frames(1)[0][1])
    detections[keys.Detection.KEYPOINT_SCORES][:] = 0.0      # no skeleton drawn: the masks alone
    tracked = pipeline.TrackedFrame(0, np.zeros((HEIGHT, WIDTH, 3), np.uint8), detections, np.array([7, -1], np.int32))
    picture = pipeline.overlay_frame(tracked, COCO17, min_score=0.1)
    colour = overlay.identity_colour(7).astype(float)
    inside = picture[20, 5].astype(float)                     # in person 0's mask
    assert np.allclose(inside, 0.45 * colour, atol=1.0)        # the mask blended over black in id 7's colour
    assert not picture[20, 28:35].any()                        # person 1 (id -1) is not drawn
    assert np.array_equal(overlay.identity_colour(7), overlay.identity_colour(7 + len(overlay.PALETTE)))


def test_stopping_early_waits_for_the_reader_so_its_source_can_be_closed():
    """--max_frames, or a detector that fails, stop the run; the reading thread has ended when run returns."""
    read = []

    def frames():
        for item in walking_frames(50):
            read.append(item[0])
            yield item

    before = threading.active_count()
    count, _ = run(frames(), overlap=True, max_frames=3)
    assert count == 3 and threading.active_count() == before
    assert len(read) <= 3 + pipeline.QUEUE_DEPTH + 1   # read ahead by a queue's depth at most, then stopped

    def failing(frame):
        raise RuntimeError("pixel limit")

    with pytest.raises(RuntimeError, match="pixel limit"):
        pipeline.run(walking_frames(50), failing, Tracker(COCO17), lambda tracked: None)
    assert threading.active_count() == before
