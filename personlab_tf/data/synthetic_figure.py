"""A posed synthetic figure (data/synthetic_body.py) as the polygons to draw, and its keypoints.

`posed_figure` places a body and lists its pieces back to front (`_figure_parts`): shoes, legs, pelvis,
chest, neck, arms, hands, then the head with its hair, ears, eyes, nose and mouth, each polygon with the
colour label it is painted with (`SKIN` ... `OUTLINE`, data/synthetic_drawing.py) and its body part
(`BODY_PART_CLASSES`). No random numbers: the body, its shape and its style (`sample_style`) are given.
Coordinates: image pixels, pixel centres at integer coordinates, points in (x, y) order.
"""

from typing import Dict, Sequence

import numpy as np

from personlab_tf.data.synthetic_body import (ANCHOR_KEYPOINTS, BODY_SIDES, EYE_RADIUS, FIGURE_POINT_PARTS, FOOT_PART,
                                              FOOT_RADII, HAND_PART, HAND_RADIUS, HEAD_PART, LOWER_ARM_PART,
                                              LOWER_LEG_PART, SEGMENT_RADII, TORSO_PART, UPPER_ARM_PART,
                                              UPPER_LEG_PART, capsule_polygon, ellipse_polygon, named_figure_points,
                                              place_body, unit_direction)
from personlab_tf.skeleton import Skeleton

# Smallest capsule radius, in pixels.
MIN_RADIUS_PX = 1.0

# Part labels of the per-figure label raster (0 = not the figure), in drawing colour order.
SKIN, HAIR, TOP, BOTTOM, SHOES, EYE, FEATURE, OUTLINE = range(1, 9)
NUM_LABELS = 9
LONG_SLEEVES = 2


def _figure_parts(p, shape, style):
    """The figure's parts in drawing order (back to front).

    Args:
      p: dict name -> [2] (x, y) image points from `place_body`.
      shape: placed shape dict; 'width' is in pixels per figure height times the width factor.
      style: dict from `sample_style`.

    Returns:
      list of (label, body part class, polygon [M, 2] float (x, y) image pixels, outlined: bool).
    """
    unit = shape["width"]

    def radius(value):
        return max(value * unit, MIN_RADIUS_PX)

    def capsule(a, b, radii, label, body_part):
        return label, body_part, capsule_polygon(p[a], p[b], radius(radii[0]), radius(radii[1])), True

    parts = []
    for side, _ in BODY_SIDES:
        parts.append((SHOES, FOOT_PART, ellipse_polygon(p[f"{side}_foot"], tuple(map(radius, FOOT_RADII)), 0.0), True))
        parts.append(capsule(f"{side}_knee", f"{side}_ankle", SEGMENT_RADII["shin"],
                             SKIN if style["shorts"] else BOTTOM, LOWER_LEG_PART))
        parts.append(capsule(f"{side}_hip", f"{side}_knee", SEGMENT_RADII["thigh"], BOTTOM, UPPER_LEG_PART))
    hip_centre = (p["left_hip"] + p["right_hip"]) / 2
    shoulder_centre = (p["left_shoulder"] + p["right_shoulder"]) / 2
    up = (shoulder_centre - hip_centre) / max(np.linalg.norm(shoulder_centre - hip_centre), 1e-6)
    across = p["left_hip"] - p["right_hip"]
    across = across / max(np.linalg.norm(across), 1e-6)
    waist = hip_centre + 0.25 * (shoulder_centre - hip_centre)
    waist_half = 0.8 * np.linalg.norm(p["left_hip"] - hip_centre) + radius(0.02)
    pelvis = [waist + waist_half * across, p["left_hip"] + radius(0.03) * (across - up),
              hip_centre - radius(0.06) * up, p["right_hip"] - radius(0.03) * (across + up),
              waist - waist_half * across]
    parts.append((BOTTOM, TORSO_PART, np.array(pelvis), True))
    chest = [p["right_shoulder"] + radius(0.02) * (up - across),
             p["left_shoulder"] + radius(0.02) * (up + across),
             waist + waist_half * across, waist - waist_half * across]
    parts.append((TOP, TORSO_PART, np.array(chest), True))
    parts.append((SKIN, TORSO_PART,
                  capsule_polygon(shoulder_centre, p["neck_top"], *map(radius, SEGMENT_RADII["neck"])), True))
    for side, _ in BODY_SIDES:
        parts.append(capsule(f"{side}_shoulder", f"{side}_elbow", SEGMENT_RADII["upper_arm"],
                             TOP if style["sleeves"] else SKIN, UPPER_ARM_PART))
        parts.append(capsule(f"{side}_elbow", f"{side}_wrist", SEGMENT_RADII["forearm"],
                             TOP if style["sleeves"] == LONG_SLEEVES else SKIN, LOWER_ARM_PART))
        parts.append((SKIN, HAND_PART, ellipse_polygon(p[f"{side}_hand"], (radius(HAND_RADIUS),) * 2, 0.0, num=12),
                      True))
    parts.extend(_head_parts(p, shape, style, radius))
    return parts


def _head_parts(p, shape, style, radius):
    """Head, hair, ears, eyes, nose and mouth polygons (see `_figure_parts`)."""
    head, radii, angle = p["head"], shape["head_radii"], shape["head_angle"]
    parts = [(SKIN, HEAD_PART, ellipse_polygon(head, radii, angle, num=24), True)]
    if style["hair"] is not None:
        extent = style["hair"]
        outer = ellipse_polygon(head, radii * 1.06, angle, np.pi - extent, 2 * np.pi + extent, 16)
        hairline_centre = head - 0.4 * radii[1] * unit_direction(angle)
        inner = ellipse_polygon(hairline_centre, radii * (0.8, 0.55), angle, 2 * np.pi, np.pi, 12)
        parts.append((HAIR, HEAD_PART, np.concatenate([outer, inner]), True))
    ear_radii = (radius(0.012), radius(0.02))
    eye_radii = (radius(EYE_RADIUS),) * 2
    for side, _ in BODY_SIDES:
        parts.append((FEATURE, HEAD_PART, ellipse_polygon(p[f"{side}_ear"], ear_radii, angle, num=10), False))
        parts.append((EYE, HEAD_PART, ellipse_polygon(p[f"{side}_eye"], eye_radii, angle, num=10), False))
    down = unit_direction(angle)
    nose_tip = p["nose"]
    nose_side = np.array([down[1], -down[0]]) * radius(0.012)
    parts.append((FEATURE, HEAD_PART, np.array([nose_tip - down * radius(0.03), nose_tip + nose_side,
                                                nose_tip - nose_side]), False))
    mouth = nose_tip + down * 0.35 * radii[1]
    parts.append((FEATURE, HEAD_PART, ellipse_polygon(mouth, (0.28 * radii[0], radius(0.005)), angle, num=10), False))
    return parts


def _anchor_names(skeleton):
    """The figure points whose pixels belong to the figure: the 17 COCO keypoints, then the skeleton's others."""
    return ANCHOR_KEYPOINTS + tuple(name for name in skeleton.keypoints if name not in ANCHOR_KEYPOINTS)


def posed_figure(points: Dict[str, np.ndarray], shape: dict, style: dict, height_px: float, rotation: float,
                 origin: Sequence[float], skeleton: Skeleton) -> dict:
    """The figure of body `points`, `shape` (`sample_body`) and `style` (`sample_style`), placed by
    `place_body` (`height_px` pixels, turned by `rotation` radians, hip centre at `origin` (x, y)); no random
    numbers.

    Returns:
      dict with 'keypoints' [K, 2] float (x, y) image pixels of the skeleton's keypoints, 'anchors' [A, 2]
      and 'anchor_parts' [A] (see `draw_figure`), 'parts' (see `_figure_parts`), 'style'.
    """
    placed, placed_shape = place_body(points, shape, height_px, rotation, np.asarray(origin, float))
    anchor_names = _anchor_names(skeleton)
    named = named_figure_points(placed, placed_shape, anchor_names)
    rounded = {name: np.round(point, 2) for name, point in named.items()}  # as written to json
    return {"keypoints": np.array([rounded[name] for name in skeleton.keypoints]).reshape(-1, 2),
            "anchors": np.array([rounded[name] for name in anchor_names]),
            "anchor_parts": tuple(FIGURE_POINT_PARTS[name] for name in anchor_names),
            "parts": _figure_parts(placed, placed_shape, style), "style": style}
