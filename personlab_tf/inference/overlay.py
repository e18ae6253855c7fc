"""Pictures of detections: coloured instance masks, skeletons on the kinematic tree, scores as text (cv2),
and part maps.

Keypoints in original-image pixels, pixel centres at integer coordinates, (x, y) order.
"""

import os
from typing import Dict, Optional, Sequence, Union

import cv2
import numpy as np

from personlab_tf import keys
from personlab_tf.evaluation import results
from personlab_tf.skeleton import Skeleton

MIN_SCORE = 0.1  # detections scoring below are not drawn (scripts/predict.py and track_video.py --min_score)
# RGB colours, one per detection slot (cycled).
PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
], np.uint8)


def draw_detections(image: np.ndarray, detections: Dict[str, np.ndarray], skeleton: Skeleton,
                    min_score: float = MIN_SCORE,
                    min_keypoint_score: float = 0.05, mask_alpha: float = 0.45,
                    track_ids: Optional[Sequence[int]] = None) -> np.ndarray:
    """An RGB picture of one image's detections: masks and tree edges in the person's colour, keypoint dots
    in the skeleton's colours (Skeleton.colors), and the person's score, or with `track_ids` its identity.

    Args:
      image: [H, W, 3] uint8 RGB.
      detections: dict of numpy arrays of one image (results.py layout): keypoints [D, K, 2],
        keypoint_scores [D, K], instance_scores [D], num_detections [], optional masks [D, H, W] bool.
      skeleton: the keypoint set of the detections.
      min_score: detections scoring below are not drawn.
      min_keypoint_score: skeleton edges whose two keypoints both reach it are drawn.
      mask_alpha: opacity of the masks.
      track_ids: optional identity per slot (video/tracker.py): the person's colour is its identity's
        (`identity_colour`), its label "#id"; slots with a negative id are not drawn.

    Returns:
      [H, W, 3] uint8 RGB.
    """
    picture = np.array(image, np.float32)
    count = results.detection_count(detections)
    scores = np.asarray(detections[keys.Detection.INSTANCE_SCORES])[:count]
    shown = [slot for slot in range(count) if scores[slot] >= min_score and (track_ids is None or track_ids[slot] >= 0)]
    colours = {slot: PALETTE[slot % len(PALETTE)] if track_ids is None else identity_colour(track_ids[slot])
               for slot in shown}
    masks = detections.get(keys.Detection.MASKS)
    if masks is not None:
        for slot in reversed(shown):  # the best person on top
            mask = np.asarray(masks[slot], bool)[:image.shape[0], :image.shape[1]]
            picture[mask] = (1 - mask_alpha) * picture[mask] + mask_alpha * colours[slot]
    canvas = np.ascontiguousarray(picture.astype(np.uint8))
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for slot in shown:
        colour = tuple(int(c) for c in colours[slot])
        points = np.asarray(detections[keys.Detection.KEYPOINTS][slot])
        visible = np.asarray(detections[keys.Detection.KEYPOINT_SCORES][slot]) >= min_keypoint_score
        for a, b in skeleton.tree:
            if visible[a] and visible[b]:
                cv2.line(canvas, _pixel(points[a]), _pixel(points[b]), colour, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(canvas, _pixel(points[k]), thickness + 1, skeleton.colors[k], -1, cv2.LINE_AA)
        anchor = points[visible].min(axis=0) if visible.any() else points.min(axis=0)
        label = f"{scores[slot]:.2f}" if track_ids is None else f"#{track_ids[slot]}"
        _text(canvas, label, _pixel(anchor - (0, 4 * thickness)), colour, thickness)
    return canvas


def _text(canvas: np.ndarray, text: str, origin, colour, thickness: int) -> None:
    """`text` at `origin` (its baseline's left end) in `colour` over a black outline, readable on any
    background; drawn into `canvas` [H, W, 3] uint8 RGB."""
    scale = max(0.5, 0.4 * thickness)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def identity_colour(track_id: int) -> np.ndarray:
    """The RGB colour [3] uint8 of a track id (ids from 1): PALETTE in order, cycled, so an identity keeps its
    colour in every frame."""
    return PALETTE[(int(track_id) - 1) % len(PALETTE)]


def draw_part_map(image: np.ndarray, part_map: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The image with a category-level part map [H, W] (class 0 = background) in PALETTE colours."""
    picture = np.array(image, np.float32)
    labelled = np.asarray(part_map) > 0
    colours = PALETTE[(np.asarray(part_map, np.int64) - 1) % len(PALETTE)]
    picture[labelled] = (1 - alpha) * picture[labelled] + alpha * colours[labelled]
    return picture.astype(np.uint8)


def _pixel(point):
    """(x, y) float -> the nearest integer pixel, as cv2 wants it."""
    return int(round(float(point[0]))), int(round(float(point[1])))


def write_png(path: Union[str, os.PathLike], picture: np.ndarray) -> bool:
    """Writes an RGB uint8 picture as PNG; returns True on success."""
    return bool(cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)))
