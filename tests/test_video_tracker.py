"""The tracker (personlab_tf/video/tracker.py) on hand-made detections of a two-keypoint skeleton.

A test person at x is the pose ((x, 0), (x + 10, 20)): its keypoint box is 10 x 20 = 200 px^2, and with
sigma 0.25 (kappa 0.5) the OKS of a pose moved by d along x is exp(-d^2 / (2 * 200 * 0.25)) = exp(-d^2 / 100).
"""

import math

import numpy as np
import pytest

from personlab_tf import keys
from personlab_tf.skeleton import make_skeleton
from personlab_tf.video.tracker import Tracker, TrackerOptions, keypoint_box_areas, mask_iou, pose_oks

SKELETON = make_skeleton("pair", ("top", "bottom"), tree=((0, 1),), sigmas=(0.25, 0.25))
KAPPAS = SKELETON.kappas


def pose(x, y=0.0):
    """[2, 2] the test person at (x, y)."""
    return np.array([[x, y], [x + 10.0, y + 20.0]])


def frame(xs, scores=None, masks=None, padding=1):
    """Detections of persons at `xs` (scores 0.9 unless given; masks [len(xs), H, W]), then `padding` empty
    slots."""
    count = len(xs)
    points = np.zeros((count + padding, 2, 2))
    for slot, x in enumerate(xs):
        points[slot] = pose(x)
    detections = {
        keys.Detection.KEYPOINTS: points,
        keys.Detection.KEYPOINT_SCORES: (np.arange(count + padding) < count)[:, None] * np.ones((1, 2)),
        keys.Detection.INSTANCE_SCORES: np.concatenate([[0.9] * count if scores is None else scores,
                                                        np.zeros(padding)]),
        keys.Detection.NUM_DETECTIONS: np.int32(count),
    }
    if masks is not None:
        masks = np.asarray(masks, bool)
        detections[keys.Detection.MASKS] = np.concatenate([masks, np.zeros((padding,) + masks.shape[1:], bool)])
    return detections


# ---------------------------------------------------------------------------------------------- similarity
def test_pose_oks_by_hand():
    track = pose(0.0)[None]
    moved = pose(0.0)
    moved[0] += (3.0, 4.0)  # the top keypoint 5 px away, the bottom one in place
    area = 200.0
    one = math.exp(-25.0 / (2.0 * area * 0.5 ** 2))  # exp(-d^2 / (2 s^2 kappa^2))
    both = np.ones((1, 2))
    assert pose_oks(track, both, moved[None], both, [area], KAPPAS, 0.1)[0, 0] == pytest.approx((one + 1.0) / 2)
    # Only keypoints confident in both poses count; none shared gives 0.
    assert pose_oks(track, both, moved[None], [[1.0, 0.0]], [area], KAPPAS, 0.1)[0, 0] == pytest.approx(one)
    assert pose_oks(track, [[0.0, 1.0]], moved[None], [[1.0, 0.0]], [area], KAPPAS, 0.1)[0, 0] == 0.0
    # [T, N]: rows are tracks, each with its own area.
    grid = pose_oks(np.stack([pose(0.0), pose(0.0)]), np.ones((2, 2)), np.stack([pose(0.0), pose(10.0)]),
                    np.ones((2, 2)), [200.0, 50.0], KAPPAS, 0.1)
    assert grid == pytest.approx(np.array([[1.0, math.exp(-100.0 / 100.0)], [1.0, math.exp(-100.0 / 25.0)]]))


def test_keypoint_box_areas_use_confident_keypoints():
    points = np.array([[[0.0, 0.0], [10.0, 20.0], [100.0, 100.0]]])
    assert keypoint_box_areas(points, [[1.0, 1.0, 0.0]], 0.1) == pytest.approx([200.0])
    assert keypoint_box_areas(points, [[1.0, 1.0, 0.0]], 0.1, scale=0.5) == pytest.approx([100.0])
    assert keypoint_box_areas(points, [[1.0, 0.0, 0.0]], 0.1) == pytest.approx([1.0])  # MIN_AREA


def test_mask_iou_by_hand():
    a = np.zeros((4, 4), bool)
    a[0:2, 0:2] = True           # 4 pixels
    b = np.zeros((4, 4), bool)
    b[0:2, 1:3] = True           # 4 pixels, 2 shared with a
    empty = np.zeros((4, 4), bool)
    iou = mask_iou(np.stack([a, b]), np.stack([b, empty]))
    assert iou == pytest.approx(np.array([[2.0 / 6.0, 0.0], [1.0, 0.0]]))
    assert mask_iou(empty[None], empty[None])[0, 0] == 0.0
    # Stride 2 looks at pixels (0, 0), (2, 0), (0, 2), (2, 2): a has (0, 0), b has (2, 0), none shared.
    assert mask_iou(a[None], b[None], stride=2)[0, 0] == 0.0
    assert mask_iou(a[None], a[None], stride=2)[0, 0] == 1.0


def test_without_masks_the_similarity_is_the_oks():
    tracker = Tracker(SKELETON, TrackerOptions(mask_stride=1))
    tracker.update(frame([0.0]))
    expected = math.exp(-9.0 / 100.0)
    assert tracker.similarities(pose(3.0)[None], np.ones((1, 2)))[0, 0] == pytest.approx(expected)
    # A track without a mask stays OKS only even when the detections have masks.
    masks = np.ones((1, 8, 8), bool)
    assert tracker.similarities(pose(3.0)[None], np.ones((1, 2)), masks)[0, 0] == pytest.approx(expected)


def test_with_masks_the_similarity_mixes_oks_and_iou():
    track_mask = np.zeros((8, 8), bool)
    track_mask[0:4, 0:5] = True  # 20 pixels: the track's OKS area s^2 = 20
    detection_mask = np.zeros((8, 8), bool)
    detection_mask[0:4, 1:6] = True  # 20 pixels, 16 shared: IoU 16 / 24
    tracker = Tracker(SKELETON, TrackerOptions(oks_weight=0.25, mask_stride=1))
    tracker.update(frame([0.0], masks=track_mask[None]))
    assert tracker.tracks[0].area == 20.0
    oks = math.exp(-1.0 / (2.0 * 20.0 * 0.25))
    similarity = tracker.similarities(pose(1.0)[None], np.ones((1, 2)), detection_mask[None])[0, 0]
    assert similarity == pytest.approx(0.25 * oks + 0.75 * 16.0 / 24.0)


# ---------------------------------------------------------------------------------------------- assignment
def greedy(similarity, floor):
    """Best pair first: {track row: detection column}."""
    pairs, rows, columns = {}, set(), set()
    for t, n in sorted(np.ndindex(*similarity.shape), key=lambda tn: -similarity[tn]):
        if t not in rows and n not in columns and similarity[t, n] >= floor:
            pairs[t] = n
            rows.add(t)
            columns.add(n)
    return pairs


def test_the_optimal_assignment_keeps_ids_where_a_greedy_one_swaps():
    # A at 0 and B at 10 both step left, A by 5 and B by 6.5: B's new place (3.5) is nearer A's old one.
    options = TrackerOptions(min_similarity=0.05)
    tracker = Tracker(SKELETON, options)
    assert tracker.update(frame([0.0, 10.0])).tolist() == [1, 2]
    new = frame([3.5, -5.0])  # B, A
    similarity = tracker.similarities(new[keys.Detection.KEYPOINTS][:2], new[keys.Detection.KEYPOINT_SCORES][:2])
    assert similarity == pytest.approx(np.exp(-np.array([[3.5, 5.0], [6.5, 15.0]]) ** 2 / 100.0))
    assert greedy(similarity, options.min_similarity) == {0: 0, 1: 1}  # greedy: A takes 3.5, B takes -5
    assert tracker.update(new).tolist() == [2, 1]  # optimal (0.655 + 0.779 > 0.885 + 0.105): B 3.5, A -5


def test_crossing_people_keep_ids_with_velocity():
    # A walks right and B left, 6 px a frame; at frame 2 they have crossed (A at 12, B at 8).
    walk = [frame([0.0, 20.0]), frame([6.0, 14.0]), frame([12.0, 8.0])]
    still = Tracker(SKELETON, TrackerOptions(velocity=False))
    moving = Tracker(SKELETON, TrackerOptions())   # velocity on: the default
    assert [still.update(f).tolist() for f in walk] == [[1, 2], [1, 2], [2, 1]]  # the last pose is nearer
    assert [moving.update(f).tolist() for f in walk] == [[1, 2], [1, 2], [1, 2]]
    assert moving.tracks[0].velocity == pytest.approx([6.0, 0.0])


def test_pairs_below_min_similarity_are_not_matched():
    tracker = Tracker(SKELETON, TrackerOptions(min_similarity=0.5, velocity=False))
    tracker.update(frame([0.0]))
    # OKS exp(-64 / 100) = 0.53 matches, exp(-100 / 100) = 0.37 does not: a new track.
    assert tracker.update(frame([8.0])).tolist() == [1]
    assert tracker.update(frame([18.0])).tolist() == [2]


# ---------------------------------------------------------------------------------------------- lifecycle
def test_a_track_survives_max_missed_frames_and_ends_after():
    tracker = Tracker(SKELETON, TrackerOptions(max_missed=2))
    assert tracker.update(frame([0.0])).tolist() == [1]
    for _ in range(2):  # missed twice: still alive
        assert tracker.update(frame([])).tolist() == []
    assert [(t.track_id, t.missed) for t in tracker.tracks] == [(1, 2)]
    assert tracker.update(frame([0.0])).tolist() == [1]
    assert tracker.tracks[0].hits == 2 and tracker.tracks[0].last_frame == 3
    for _ in range(3):  # missed three times: ended
        tracker.update(frame([]))
    assert tracker.tracks == []
    assert tracker.update(frame([0.0])).tolist() == [2]
    assert tracker.frame_index == 7 and tracker.tracks[0].first_frame == 7


def test_birth_score_and_min_score():
    tracker = Tracker(SKELETON, TrackerOptions(min_score=0.1, birth_score=0.5))
    # 0.3 is kept but too weak to start a track, 0.05 is ignored.
    assert tracker.update(frame([0.0, 50.0], scores=[0.3, 0.05])).tolist() == [-1, -1]
    assert tracker.tracks == [] and tracker.next_id == 1
    assert tracker.update(frame([0.0], scores=[0.9])).tolist() == [1]
    # A weak detection continues a track; one below min_score does not (the track misses the frame).
    assert tracker.update(frame([0.0], scores=[0.3])).tolist() == [1]
    assert tracker.update(frame([0.0], scores=[0.05])).tolist() == [-1]
    assert tracker.tracks[0].missed == 1


def test_ids_are_never_reused():
    tracker = Tracker(SKELETON, TrackerOptions(max_missed=0))
    seen = []
    for xs in ([0.0], [100.0], [0.0, 100.0], [], [0.0]):
        seen += tracker.update(frame(xs)).tolist()
    assert seen == [1, 2, 3, 2, 4]
    tracker.reset()
    assert tracker.frame_index == -1 and tracker.tracks == []
    assert tracker.update(frame([0.0])).tolist() == [5]


def test_padding_slots_are_not_tracked():
    detections = frame([0.0], padding=3)
    ids = Tracker(SKELETON).update(detections)
    assert ids.dtype == np.int32 and ids.tolist() == [1]


def test_options_are_checked():
    with pytest.raises(ValueError, match="birth_score"):
        TrackerOptions(min_score=0.5, birth_score=0.2)
    with pytest.raises(ValueError, match="min_similarity"):
        TrackerOptions(min_similarity=0.0)
    with pytest.raises(ValueError, match="keypoints must be"):
        Tracker(SKELETON).update({keys.Detection.KEYPOINTS: np.zeros((1, 17, 2)),
                                  keys.Detection.KEYPOINT_SCORES: np.zeros((1, 17)),
                                  keys.Detection.INSTANCE_SCORES: np.ones(1)})


def test_a_frame_without_detections_counts_as_missed_with_or_without_masks():
    masks = np.zeros((1, 24, 40), bool)
    masks[0, 0:21, 0:11] = True
    tracker = Tracker(SKELETON, TrackerOptions(max_missed=1))
    assert tracker.update(frame([0.0], masks=masks)).tolist() == [1]
    empty = frame([], masks=np.zeros((0, 24, 40), bool))   # masks [0 + padding, H, W], no detection
    assert tracker.update(empty).tolist() == [] and tracker.tracks[0].missed == 1
    assert tracker.update(frame([1.0], masks=masks)).tolist() == [1]
    assert tracker.update(frame([])).tolist() == [] and tracker.update(frame([])).tolist() == []
    assert tracker.tracks == [] and mask_iou(np.zeros((0, 24, 40)), masks, stride=2).shape == (0, 1)
