"""Tracking metrics (personlab_tf/video/mot.py) on a hand-made clip whose counts a reader can check.

The clip: 10 x 12 images, 4 frames, two people in every frame: track 10 in columns 0-3 (a polygon, pixel
corners 0..4) and track 20 in columns 6-9 (a compressed RLE). The results:

| frame | on person 10 | on person 20 | event |
| --- | --- | --- | --- |
| 0 | h1, exact | h2, columns 6-8 (IoU 30/40) | |
| 1 | h1 | h2 | |
| 2 | h1 | h2 on columns 8-11 (IoU 20/60 < 0.5), and h9 exact but with track_id -1 | a miss and a false positive |
| 3 | h1 | h4 | an identity switch (20: h2 -> h4) |
"""

import json

import numpy as np
import pytest

from personlab_tf.evaluation.results import encode_masks
from personlab_tf.video.mot import tracking_metrics, tracking_metrics_many

HEIGHT, WIDTH = 10, 12


def columns(first, last):
    """[H, W] bool mask of columns first..last (inclusive)."""
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[:, first:last + 1] = True
    return mask


def rle(mask):
    return encode_masks(mask[None])[0]


def clip(num_frames=4, image_ids=100):
    images = [{"id": image_ids + f, "height": HEIGHT, "width": WIDTH, "frame": f} for f in range(num_frames)]
    annotations = []
    for f in range(num_frames):
        annotations.append({"id": len(annotations) + 1, "image_id": image_ids + f, "iscrowd": 0, "area": 40.0,
                            "segmentation": [[0.0, 0.0, 4.0, 0.0, 4.0, 10.0, 0.0, 10.0]], "track_id": 10})
        annotations.append({"id": len(annotations) + 1, "image_id": image_ids + f, "iscrowd": 0, "area": 40.0,
                            "segmentation": rle(columns(6, 9)), "track_id": 20})
    # Neither a crowd region nor an empty annotation is an object.
    annotations.append({"id": 99, "image_id": image_ids, "iscrowd": 1, "area": 10.0,
                        "segmentation": rle(columns(11, 11)), "track_id": 30})
    annotations.append({"id": 98, "image_id": image_ids, "iscrowd": 0, "area": 0.0,
                        "segmentation": [], "track_id": 40})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


def result(frame, mask, track_id, image_ids=100):
    return {"image_id": image_ids + frame, "category_id": 1, "segmentation": rle(mask), "score": 0.9,
            "track_id": track_id, "frame": frame}


def tracked_results(image_ids=100):
    found = [result(f, columns(0, 3), 1, image_ids) for f in range(4)]
    found += [result(0, columns(6, 8), 2, image_ids), result(1, columns(6, 9), 2, image_ids),
              result(2, columns(8, 11), 2, image_ids), result(2, columns(6, 9), -1, image_ids),
              result(3, columns(6, 9), 4, image_ids)]
    return found


def test_metrics_by_hand():
    metrics = tracking_metrics(clip(), tracked_results())
    objects, misses, false_positives, switches = 8, 1, 1, 1
    assert (metrics["num_objects"], metrics["num_misses"], metrics["num_false_positives"],
            metrics["num_switches"]) == (objects, misses, false_positives, switches)
    assert metrics["mota"] == pytest.approx(1.0 - (misses + false_positives + switches) / objects)
    assert metrics["motp"] == pytest.approx((6 * 1.0 + 30.0 / 40.0) / 7)  # the mean IoU of the 7 matches
    # Identities: 10 <-> h1 (4 frames), 20 <-> h2 (frames 0, 1); 8 true and 8 found boxes.
    idtp, idfp, idfn = 6, 8 - 6, 8 - 6
    assert metrics["idf1"] == pytest.approx(2 * idtp / (2 * idtp + idfp + idfn))
    assert metrics["idp"] == pytest.approx(idtp / (idtp + idfp))
    assert metrics["idr"] == pytest.approx(idtp / (idtp + idfn))
    assert metrics["num_frames"] == 4 and metrics["num_unique_objects"] == 2
    assert metrics["precision"] == pytest.approx(7 / 8) and metrics["recall"] == pytest.approx(7 / 8)
    # 10 matched in 4 of 4 frames (>= 80%), 20 in 3 of 4 (75%: partially).
    assert (metrics["mostly_tracked"], metrics["partially_tracked"], metrics["mostly_lost"]) == (1, 1, 0)
    json.dumps(metrics, allow_nan=False)
    assert all(type(value) in (int, float) for value in metrics.values())


def test_min_iou():
    # At 0.3 the frame-2 result on columns 8-11 (IoU 1/3) matches: no miss, no false positive.
    metrics = tracking_metrics(clip(), tracked_results(), min_iou=0.3)
    assert (metrics["num_misses"], metrics["num_false_positives"], metrics["num_switches"]) == (0, 0, 1)


def test_frames_without_results_count():
    metrics = tracking_metrics(clip(), [result(0, columns(0, 3), 1)])
    assert metrics["num_frames"] == 4 and metrics["num_objects"] == 8 and metrics["num_misses"] == 7
    assert metrics["mota"] == pytest.approx(1.0 / 8.0)
    assert metrics["mostly_lost"] == 1 and metrics["partially_tracked"] == 1  # 20 never, 10 in 1 of 4
    empty = tracking_metrics(clip(), [])
    assert empty["num_misses"] == 8 and empty["motp"] is None  # no match: undefined, JSON null
    json.dumps(empty, allow_nan=False)


def test_bad_inputs():
    with pytest.raises(ValueError, match="not in the ground truth"):
        tracking_metrics(clip(), [result(9, columns(0, 3), 1)])
    with pytest.raises(ValueError, match="appears twice"):
        tracking_metrics(clip(), [result(0, columns(0, 3), 1), result(0, columns(6, 9), 1)])


def test_many_clips_and_overall():
    other = clip(image_ids=200)
    perfect = [result(f, columns(0, 3), 1, 200) for f in range(4)] + [result(f, columns(6, 9), 2, 200)
                                                                      for f in range(4)]
    summary = tracking_metrics_many({"a": (clip(), tracked_results()), "b": (other, perfect)})
    assert summary["clips"]["a"] == tracking_metrics(clip(), tracked_results())
    assert summary["clips"]["b"]["mota"] == 1.0 and summary["clips"]["b"]["idf1"] == 1.0
    overall = summary["overall"]
    assert overall["num_objects"] == 16 and overall["num_frames"] == 8
    assert overall["mota"] == pytest.approx(1.0 - 3.0 / 16.0)  # the events of both clips, not a mean
    assert overall["idf1"] == pytest.approx(2 * 14 / (2 * 14 + 2 + 2))
    json.dumps(summary, allow_nan=False)

