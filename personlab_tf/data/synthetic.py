"""Procedural synthetic people, written as a COCO person-keypoint dataset.

An image is a textured background with clutter and 0-30 articulated stick figures. Figures face the
camera, so the person's left side is on the image's right (the COCO convention) and left/right follows
from geometry alone. Figures are drawn back to front; a person's COCO mask is its region left visible by
the figures in front. Keypoint visibility v is 2 where the keypoint's pixel shows the person itself, 1
where a figure in front hides it, and 0 (with x = y = 0) outside the image. About one image in eight
holds a crowd: a cluster of small figures behind everyone, annotated as one iscrowd region. Persons with
a visible area under 32^2 pixels, and a few others at random, are annotated without keypoints as COCO
does for small people; their true keypoints are written to `hidden_keypoints.json`.

Coordinates: keypoints and all figure geometry use pixel centres at integer coordinates, x right, y
down, points in (x, y) order. Only the segmentation polygons follow the pycocotools rasteriser, in which
pixel (c, r) is the unit square [c, c+1] x [r, r+1]; read masks with `COCO.annToMask`, which gives back
the rendered visible region exactly. Boxes are COCO [x, y, width, height] of that pixel set.

Image i is drawn from `np.random.default_rng([seed, i])` alone, so it does not depend on how many images
are generated.

Part labels (instance-aware part parsing): every drawn polygon also belongs to a body part of
`BODY_PART_CLASSES` (head, torso, upper and lower arms, hands, upper and lower legs, feet; no
left/right; the part set "synthetic" of tasks/parts/part_sets.py), rendered into one label map per image,
`part_labels/<image file stem>.png` (data/part_labels.py). A person's parts are the map under its mask. Drawing the map uses no
random numbers, so the images do not depend on it.

Skeletons: the keypoints written are those of a `Skeleton` (personlab_tf/skeleton.py; coco17 by default),
each a named point of the figure (`FIGURE_POINTS`): the 17 COCO keypoints, the drawing's own points
('neck_top', 'head' the head centre, '<side>_hand', '<side>_foot') and points derived from them without
random numbers: 'head_top' = 'top_head' (the top of the head ellipse along the head's up axis),
'upper_neck' (= 'neck_top'), 'neck' (midway between the shoulder centre and 'neck_top', the middle of the
drawn neck), 'thorax' (the shoulder centre) and 'pelvis' (the hip centre). A skeleton naming anything else
is refused (`check_skeleton`). The scene (poses, sizes, clothes, everything drawn from the random numbers)
does not depend on the skeleton: the 17 COCO keypoints' pixels always belong to their figure's silhouette,
and so do the pixels of the skeleton's other keypoints; those extra pixels are the only difference between
the images of two skeletons of the same seed. The annotations file declares the skeleton's category; the
keypoint lists hold K (x, y, v) triples in the skeleton's order.
"""

import dataclasses
import json
import os
from typing import Tuple

import cv2
import numpy as np

from personlab_tf.data import coco_format
from personlab_tf.data import part_labels as part_labels_lib
from personlab_tf.skeleton import COCO17, Skeleton

HIDDEN_KEYPOINTS_FILE = "hidden_keypoints.json"
# The body-part classes of the part label maps, class 0 the background (no left/right distinction).
BODY_PART_CLASSES = ("background", "head", "torso", "upper_arm", "lower_arm", "hand", "upper_leg", "lower_leg",
                     "foot")


@dataclasses.dataclass(frozen=True)
class Scene:
    """Scene statistics and annotation policy.

    Attributes:
      person_count_bins: persons per image, (fewest, most, probability) bins.
      min_height_fraction, max_height_fraction: person height as a fraction of the image height, before
        the per-image cap for crowded scenes (1.3 / sqrt(count)).
      crowd_probability: chance that an image with people also holds a crowd region.
      small_area: persons with a smaller visible area (pixels) get no keypoints, like COCO's small ones.
      unlabelled_fraction: a random fraction of the other persons get none either.
    """

    person_count_bins: tuple
    min_height_fraction: float
    max_height_fraction: float
    crowd_probability: float
    small_area: int
    unlabelled_fraction: float


# COCO-like scenes (the default, PersonLab's demo and tests): 0-30 persons, many small ones, crowds.
COCO_SCENE = Scene(person_count_bins=((0, 0, 0.06), (1, 6, 0.62), (7, 15, 0.21), (16, 30, 0.11)),
                   min_height_fraction=0.1, max_height_fraction=0.9, crowd_probability=0.13, small_area=32 * 32,
                   unlabelled_fraction=0.05)
# Part-parsing scenes, like MHP's: 1-8 larger persons, every visible person annotated with keypoints.
PARTS_SCENE = Scene(person_count_bins=((1, 3, 0.6), (4, 8, 0.4)), min_height_fraction=0.35,
                    max_height_fraction=0.95, crowd_probability=0.0, small_area=0, unlabelled_fraction=0.0)
SCENES = {"coco": COCO_SCENE, "parts": PARTS_SCENE}
SMALL_AREA = COCO_SCENE.small_area
# Drawing order: log(height) plus Gaussian noise of this deviation, ascending (back to front).
DEPTH_NOISE = 0.7
CROWD_FIGURES = (12, 30)
CROWD_HEIGHT_FRACTION = (0.08, 0.16)
CLUTTER_SHAPES = (2, 14)
JPEG_QUALITY = (75, 95)

# Annotation id = image id * ANNOTATION_ID_STRIDE + index of the annotation in its image.
ANNOTATION_ID_STRIDE = 1000

# Body model, in figure heights (a standing figure is about one unit from head top to feet).
TORSO_LENGTH = 0.29
NECK_LENGTH = 0.045
SHOULDER_HALF_WIDTH = 0.105
HIP_HALF_WIDTH = 0.072
HEAD_RADII = (0.055, 0.068)
SEGMENT_LENGTHS = {"upper_arm": 0.165, "forearm": 0.145, "thigh": 0.235, "shin": 0.225}
# Capsule radii (at the proximal joint, at the distal joint).
SEGMENT_RADII = {
    "upper_arm": (0.03, 0.024), "forearm": (0.024, 0.019),
    "thigh": (0.045, 0.034), "shin": (0.033, 0.026), "neck": (0.022, 0.022),
}
HAND_RADIUS = 0.026
FOOT_RADII = (0.04, 0.018)
EYE_RADIUS = 0.011
# cv2 draws polygons with vertices in fixed point, to 1 / 2^SUBPIXEL_BITS pixel.
SUBPIXEL_BITS = 4
# Smallest capsule radius and smallest figure with drawn outlines, in pixels.
MIN_RADIUS_PX = 1.0
OUTLINE_MIN_HEIGHT_PX = 48

# Part labels of the per-figure label raster (0 = not the figure), in drawing colour order.
SKIN, HAIR, TOP, BOTTOM, SHOES, EYE, FEATURE, OUTLINE = range(1, 9)
NUM_LABELS = 9
LONG_SLEEVES = 2
SKIN_TONES = ((255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
              (92, 56, 32))

# Body-part classes (BODY_PART_CLASSES) of the drawn pieces, and of a keypoint's own pixel when it
# falls outside every piece of its figure.
(HEAD_PART, TORSO_PART, UPPER_ARM_PART, LOWER_ARM_PART, HAND_PART, UPPER_LEG_PART, LOWER_LEG_PART,
 FOOT_PART) = range(1, len(BODY_PART_CLASSES))
_SIDES = (("left", 1.0), ("right", -1.0))  # the person's side and its image x direction
# The named points of a figure a skeleton's keypoints may be (module docstring), with the body part of each.
FIGURE_POINT_PARTS = {
    "nose": HEAD_PART, "left_eye": HEAD_PART, "right_eye": HEAD_PART, "left_ear": HEAD_PART, "right_ear": HEAD_PART,
    "left_shoulder": UPPER_ARM_PART, "right_shoulder": UPPER_ARM_PART, "left_elbow": UPPER_ARM_PART,
    "right_elbow": UPPER_ARM_PART, "left_wrist": LOWER_ARM_PART, "right_wrist": LOWER_ARM_PART,
    "left_hip": UPPER_LEG_PART, "right_hip": UPPER_LEG_PART, "left_knee": UPPER_LEG_PART,
    "right_knee": UPPER_LEG_PART, "left_ankle": LOWER_LEG_PART, "right_ankle": LOWER_LEG_PART,
    "neck_top": TORSO_PART, "head": HEAD_PART, "left_hand": HAND_PART, "right_hand": HAND_PART,
    "left_foot": FOOT_PART, "right_foot": FOOT_PART,
    "head_top": HEAD_PART, "top_head": HEAD_PART, "upper_neck": TORSO_PART, "neck": TORSO_PART,
    "thorax": TORSO_PART, "pelvis": TORSO_PART,
}
FIGURE_POINTS = tuple(FIGURE_POINT_PARTS)
# The points whose pixels always belong to their figure whatever the skeleton (they did before skeletons
# existed; the images of a seed stay as they were).
_ANCHORS = COCO17.keypoints


def check_skeleton(skeleton: Skeleton) -> None:
    """ValueError (one line) naming the keypoints of `skeleton` that are not figure points (FIGURE_POINTS)."""
    unknown = [name for name in skeleton.keypoints if name not in FIGURE_POINT_PARTS]
    if unknown:
        raise ValueError(f"skeleton {skeleton.name!r}: the synthetic figures have no keypoint {', '.join(unknown)} "
                         f"(figure points: {', '.join(FIGURE_POINTS)})")


def keypoint_parts(skeleton: Skeleton) -> Tuple[int, ...]:
    """The body-part class (BODY_PART_CLASSES) of each of the skeleton's K keypoints (`check_skeleton` first)."""
    check_skeleton(skeleton)
    return tuple(FIGURE_POINT_PARTS[name] for name in skeleton.keypoints)


KEYPOINT_PARTS = keypoint_parts(COCO17)  # coco17's, as before skeletons


# --------------------------------------------------------------------------------------- geometry


def _direction(angle):
    """Unit vector (x, y) at `angle` radians from straight down (+y), positive towards +x."""
    return np.array([np.sin(angle), np.cos(angle)])


def _rotation(angle):
    """[2, 2] matrix M that turns row vectors (x, y) by `angle` radians: (0, 1) @ M = `_direction(angle)`."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _ellipse(centre, radii, angle, start=0.0, stop=2 * np.pi, num=20):
    """Points [num, 2] (x, y) on an ellipse with semi-axes `radii` rotated by `angle` radians."""
    t = np.linspace(start, stop, num)
    local = np.stack([radii[0] * np.cos(t), radii[1] * np.sin(t)], axis=1)
    return local @ _rotation(angle) + centre


def _capsule(p0, p1, r0, r1, num=7):
    """Polygon [2 num, 2] (x, y) of a tapered capsule: round caps of radius r0 at p0 and r1 at p1."""
    axis = np.arctan2(p1[1] - p0[1], p1[0] - p0[0])
    cap = np.linspace(-np.pi / 2, np.pi / 2, num)
    end = p1 + r1 * np.stack([np.cos(axis + cap), np.sin(axis + cap)], axis=1)
    start = p0 + r0 * np.stack([np.cos(axis + np.pi + cap), np.sin(axis + np.pi + cap)], axis=1)
    return np.concatenate([end, start])


def _fixed_point(poly, origin):
    """Polygon [M, 2] (x, y) shifted by -`origin`, as int32 cv2 vertices with SUBPIXEL_BITS fraction bits."""
    return np.round((poly - origin) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _sample_body(rng):
    """Samples a pose and body proportions of a figure facing the camera (`_pose_body` of `_sample_build`
    and `_sample_limbs`).

    Returns:
      points: dict name -> [2] float (x, y) in figure heights, origin at the hip centre, y down; the
        17 COCO keypoints (person's left at +x) plus 'neck_top', 'head', '<side>_hand', '<side>_foot'.
      shape: dict with 'head_radii' (rx, ry), 'head_angle' (radians) and 'width' (scale of all radii).
    """
    build = _sample_build(rng)
    return _pose_body(build, _sample_limbs(rng))


def _sample_build(rng):
    """Samples a figure's proportions, lean and head pose: all of a body but its limbs' pose.

    Returns:
      dict: 'length' (name of SEGMENT_LENGTHS -> length in figure heights), 'width' (scale of all radii),
      'lean' (radians, the torso's tilt, as `_direction`), 'torso' and 'neck' (factors of TORSO_LENGTH and
      NECK_LENGTH), 'shoulder_half' and 'hip_half' (figure heights), 'head_radii' [2] (rx, ry) figure heights,
      'head_tilt' (radians, the head's tilt from the torso's), 'yaw' (radians, the face turned towards +x when
      positive).
    """
    length = {name: value * rng.uniform(0.9, 1.1) for name, value in SEGMENT_LENGTHS.items()}
    width = rng.uniform(0.8, 1.25)
    lean = float(np.clip(rng.normal(0.0, 0.12), -0.35, 0.35))
    torso = rng.uniform(0.9, 1.1)
    shoulder_half = SHOULDER_HALF_WIDTH * width ** 0.5 * rng.uniform(0.9, 1.1)
    hip_half = HIP_HALF_WIDTH * width ** 0.5 * rng.uniform(0.9, 1.15)
    neck = rng.uniform(0.8, 1.2)
    head_radii = np.array(HEAD_RADII) * rng.uniform(0.9, 1.25)
    head_tilt = float(np.clip(rng.normal(0.0, 0.15), -0.4, 0.4))
    yaw = rng.uniform(-0.5, 0.5)
    return {"length": length, "width": width, "lean": lean, "torso": torso, "neck": neck,
            "shoulder_half": shoulder_half, "hip_half": hip_half, "head_radii": head_radii, "head_tilt": head_tilt,
            "yaw": yaw}


def _sample_limbs(rng):
    """Samples a still pose of the limbs: arms hanging or raised, legs standing or kicking.

    Returns:
      dict side ('left', 'right') -> limb dict of `_pose_body`.
    """
    limbs = {}
    for side, _ in _SIDES:
        raised = rng.random() < 0.3
        shoulder_angle = rng.uniform(0.8, 2.9) if raised else rng.uniform(-0.3, 0.8)
        elbow_angle = shoulder_angle + rng.choice((-1.0, 1.0)) * rng.uniform(0.0, 2.4)
        upper_arm, forearm = rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0)
        kick = rng.random() < 0.1
        hip_angle = rng.uniform(0.45, 1.2) if kick else rng.uniform(-0.12, 0.45)
        knee_angle = hip_angle + rng.choice((-1.0, 1.0)) * rng.uniform(0.0, 0.7)
        thigh, shin = rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0)
        limbs[side] = {"shoulder_angle": shoulder_angle, "elbow_angle": elbow_angle, "hip_angle": hip_angle,
                       "knee_angle": knee_angle, "upper_arm": upper_arm, "forearm": forearm, "thigh": thigh,
                       "shin": shin}
    return limbs


def _pose_body(build, limbs):
    """The points of a figure of proportions `build` (`_sample_build`) posed by `limbs`; no random numbers.

    Args:
      build: dict of `_sample_build`.
      limbs: dict side ('left', 'right') -> dict of the side's 'shoulder_angle', 'elbow_angle' (directions of
        the upper arm and forearm, radians from the torso's down, positive outwards: towards the image's +x
        for the left side, -x for the right), 'hip_angle', 'knee_angle' (directions of the thigh and shin,
        radians from straight down, positive outwards) and 'upper_arm', 'forearm', 'thigh', 'shin' (drawn
        fractions of the segments' lengths: foreshortening).

    Returns:
      (points, shape) as `_sample_body`.
    """
    length, lean = build["length"], build["lean"]
    up, right = -_direction(lean), _direction(lean + np.pi / 2)  # right = towards the person's left
    points = {}
    shoulder_centre = up * TORSO_LENGTH * build["torso"]
    for side, sign in _SIDES:
        points[f"{side}_shoulder"] = shoulder_centre + sign * build["shoulder_half"] * right
        points[f"{side}_hip"] = sign * build["hip_half"] * right
    points["neck_top"] = shoulder_centre + up * NECK_LENGTH * build["neck"]

    head_radii = build["head_radii"]
    head_angle = lean + build["head_tilt"]
    head_up, head_right = -_direction(head_angle), _direction(head_angle + np.pi / 2)
    points["head"] = points["neck_top"] + head_up * 0.85 * head_radii[1]

    def face_point(around, height):
        """A point on the face at `around` radians from the front and `height` head radii above centre."""
        return (points["head"] + head_radii[0] * np.sin(around + build["yaw"]) * head_right
                + height * head_radii[1] * head_up)

    points["nose"] = face_point(0.0, -0.2)
    for side, sign in _SIDES:
        points[f"{side}_eye"] = face_point(sign * 0.45, 0.15)
        points[f"{side}_ear"] = face_point(sign * 1.35, 0.0)

    for side, sign in _SIDES:
        limb = limbs[side]
        points[f"{side}_elbow"] = points[f"{side}_shoulder"] + length["upper_arm"] * limb["upper_arm"] * _direction(
            sign * limb["shoulder_angle"] + lean)
        forearm = _direction(sign * limb["elbow_angle"] + lean)
        points[f"{side}_wrist"] = points[f"{side}_elbow"] + length["forearm"] * limb["forearm"] * forearm
        points[f"{side}_hand"] = points[f"{side}_wrist"] + 0.6 * HAND_RADIUS * forearm
        points[f"{side}_knee"] = points[f"{side}_hip"] + length["thigh"] * limb["thigh"] * _direction(
            sign * limb["hip_angle"])
        points[f"{side}_ankle"] = points[f"{side}_knee"] + length["shin"] * limb["shin"] * _direction(
            sign * limb["knee_angle"])
        points[f"{side}_foot"] = points[f"{side}_ankle"] + np.array([sign * 0.6 * FOOT_RADII[0],
                                                                     0.5 * FOOT_RADII[1]])
    shape = {"head_radii": head_radii, "head_angle": head_angle, "width": build["width"]}
    return points, shape


def _place(points, shape, height_px, rotation, origin):
    """Maps body points to image pixels: rotate by `rotation` radians, scale by `height_px`, shift the
    hip centre to `origin` (x, y). Returns the mapped copies of `points` and `shape`."""
    matrix = _rotation(rotation) * height_px
    placed = {name: p @ matrix + origin for name, p in points.items()}
    placed_shape = dict(shape, head_radii=shape["head_radii"] * height_px,
                        head_angle=shape["head_angle"] + rotation, width=shape["width"] * height_px)
    return placed, placed_shape


def _figure_points(p, shape, names):
    """The named figure points `names` (FIGURE_POINTS) of a placed figure: those of `p` (from `_place`) and
    the derived ones (module docstring), from `p` and the placed `shape` alone.

    Returns:
      dict name -> [2] float (x, y) image pixels.
    """
    derived = {
        "head_top": lambda: p["head"] - shape["head_radii"][1] * _direction(shape["head_angle"]),
        "upper_neck": lambda: p["neck_top"],
        "neck": lambda: ((p["left_shoulder"] + p["right_shoulder"]) / 2 + p["neck_top"]) / 2,
        "thorax": lambda: (p["left_shoulder"] + p["right_shoulder"]) / 2,
        "pelvis": lambda: (p["left_hip"] + p["right_hip"]) / 2,
    }
    derived["top_head"] = derived["head_top"]
    return {name: p[name] if name in p else derived[name]() for name in names}


def _figure_parts(p, shape, style):
    """The figure's parts in drawing order (back to front).

    Args:
      p: dict name -> [2] (x, y) image points from `_place`.
      shape: placed shape dict; 'width' is in pixels per figure height times the width factor.
      style: dict from `_sample_style`.

    Returns:
      list of (label, body part class, polygon [M, 2] float (x, y) image pixels, outlined: bool).
    """
    unit = shape["width"]

    def radius(value):
        return max(value * unit, MIN_RADIUS_PX)

    def capsule(a, b, radii, label, body_part):
        return label, body_part, _capsule(p[a], p[b], radius(radii[0]), radius(radii[1])), True

    parts = []
    for side, _ in _SIDES:
        parts.append((SHOES, FOOT_PART, _ellipse(p[f"{side}_foot"], tuple(map(radius, FOOT_RADII)), 0.0), True))
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
    parts.append((SKIN, TORSO_PART, _capsule(shoulder_centre, p["neck_top"], *map(radius, SEGMENT_RADII["neck"])),
                  True))
    for side, _ in _SIDES:
        parts.append(capsule(f"{side}_shoulder", f"{side}_elbow", SEGMENT_RADII["upper_arm"],
                             TOP if style["sleeves"] else SKIN, UPPER_ARM_PART))
        parts.append(capsule(f"{side}_elbow", f"{side}_wrist", SEGMENT_RADII["forearm"],
                             TOP if style["sleeves"] == LONG_SLEEVES else SKIN, LOWER_ARM_PART))
        parts.append((SKIN, HAND_PART, _ellipse(p[f"{side}_hand"], (radius(HAND_RADIUS),) * 2, 0.0, num=12), True))
    parts.extend(_head_parts(p, shape, style, radius))
    return parts


def _head_parts(p, shape, style, radius):
    """Head, hair, ears, eyes, nose and mouth polygons (see `_figure_parts`)."""
    head, radii, angle = p["head"], shape["head_radii"], shape["head_angle"]
    parts = [(SKIN, HEAD_PART, _ellipse(head, radii, angle, num=24), True)]
    if style["hair"] is not None:
        extent = style["hair"]
        outer = _ellipse(head, radii * 1.06, angle, np.pi - extent, 2 * np.pi + extent, 16)
        hairline_centre = head - 0.4 * radii[1] * _direction(angle)
        inner = _ellipse(hairline_centre, radii * (0.8, 0.55), angle, 2 * np.pi, np.pi, 12)
        parts.append((HAIR, HEAD_PART, np.concatenate([outer, inner]), True))
    ear_radii = (radius(0.012), radius(0.02))
    eye_radii = (radius(EYE_RADIUS),) * 2
    for side, _ in _SIDES:
        parts.append((FEATURE, HEAD_PART, _ellipse(p[f"{side}_ear"], ear_radii, angle, num=10), False))
        parts.append((EYE, HEAD_PART, _ellipse(p[f"{side}_eye"], eye_radii, angle, num=10), False))
    down = _direction(angle)
    nose_tip = p["nose"]
    nose_side = np.array([down[1], -down[0]]) * radius(0.012)
    parts.append((FEATURE, HEAD_PART, np.array([nose_tip - down * radius(0.03), nose_tip + nose_side,
                                                nose_tip - nose_side]), False))
    mouth = nose_tip + down * 0.35 * radii[1]
    parts.append((FEATURE, HEAD_PART, _ellipse(mouth, (0.28 * radii[0], radius(0.005)), angle, num=10), False))
    return parts


# --------------------------------------------------------------------------------------- texture


def _random_colour(rng):
    """A random RGB colour, [3] float."""
    return rng.uniform(0, 255, 3)


def _texture(rng, height, width, feature_px):
    """A random texture [height, width, 3] uint8 RGB: solid, stripes, checks, gradient or blotches
    between two random colours; `feature_px` sets the stripe and check period."""
    first, second = _random_colour(rng), _random_colour(rng)
    kind = rng.integers(5)
    if kind == 0:
        return np.broadcast_to(first.astype(np.uint8), (height, width, 3)).copy()
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = x * np.cos(angle) + y * np.sin(angle)
    period = max(3.0, feature_px * rng.uniform(0.15, 0.6))
    if kind == 1:
        weight = (np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi)) > 0).astype(np.float32)
    elif kind == 2:
        weight = ((np.floor(x / period) + np.floor(y / period)) % 2).astype(np.float32)
    elif kind == 3:
        weight = (along - along.min()) / max(float(np.ptp(along)), 1.0)
    else:
        cells = rng.random((rng.integers(2, 8), rng.integers(2, 8))).astype(np.float32)
        weight = cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    image = first + weight[..., None] * (second - first)
    return image.clip(0, 255).astype(np.uint8)


def _sample_style(rng):
    """Random clothing and skin of a figure: dict of colours ([3] float RGB) and clothing switches."""
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))]) + rng.uniform(-12, 12, 3)
    return {
        "skin": skin.clip(0, 255),
        "hair": None if rng.random() < 0.1 else rng.uniform(-0.3, 0.25),  # hair extent, radians
        "hair_colour": rng.uniform(0, 1) * np.array([90, 60, 40]) + rng.uniform(0, 40),
        "sleeves": int(rng.integers(LONG_SLEEVES + 1)),  # 0 bare arms, 1 short sleeves, 2 long sleeves
        "shorts": bool(rng.random() < 0.25),
        "shoes": rng.uniform(0, 120, 3),
        "outline": rng.uniform(0, 50, 3),
    }


# --------------------------------------------------------------------------------------- rendering


def _draw_figure(image, owner, body_parts, figure, owner_id, rng):
    """Draws a figure over `image` and marks its pixels in `owner` and its body parts in `body_parts`.

    Args:
      image: [H, W, 3] uint8 RGB canvas, modified in place.
      owner: [H, W] int16, index of the figure shown at each pixel (-1 none), modified in place.
      body_parts: [H, W] uint8, body-part class shown at each pixel (0 none), modified in place; an
        outline pixel belongs to the piece it outlines.
      figure: a `_sample_figure` dict: its 'parts' (label, body part, polygon, outlined), image pixels
        (x, y); its 'anchors' [A, 2] float (x, y), whose pixels always belong to the figure's silhouette
        (with the body parts 'anchor_parts' [A] where no piece covers them); its 'style'; optionally its
        'textures' (`_clothing`), which paint its clothes instead of fresh random textures.
      owner_id: value written to `owner`.
      rng: np.random.Generator for the clothing textures (unused for a figure with 'textures').

    Returns:
      (x0, y0, x1, y1) the clipped pixel box that was drawn into (exclusive end), or None if the figure
      is entirely outside the image.
    """
    height, width = owner.shape
    parts, style = figure["parts"], figure["style"]
    corners = np.concatenate([poly for _, _, poly, _ in parts])
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, (width, height))
    if x0 >= x1 or y0 >= y1:
        return None
    labels = np.zeros((y1 - y0, x1 - x0), np.uint8)
    bodies = np.zeros_like(labels)
    outline = (corners.max(axis=0) - corners.min(axis=0))[1] >= OUTLINE_MIN_HEIGHT_PX
    for label, body_part, poly, outlined in parts:
        fixed = _fixed_point(poly, (x0, y0))
        cv2.fillPoly(labels, [fixed], label, cv2.LINE_8, shift=SUBPIXEL_BITS)
        cv2.fillPoly(bodies, [fixed], body_part, cv2.LINE_8, shift=SUBPIXEL_BITS)
        if outline and outlined:
            cv2.polylines(labels, [fixed], True, OUTLINE, 1, cv2.LINE_8, shift=SUBPIXEL_BITS)
            cv2.polylines(bodies, [fixed], True, body_part, 1, cv2.LINE_8, shift=SUBPIXEL_BITS)
    pixels = np.floor(figure["anchors"] + 0.5).astype(int) - (x0, y0)
    inside = np.all((pixels >= 0) & (pixels < (x1 - x0, y1 - y0)), axis=1)
    for (px, py), body_part in zip(pixels[inside], np.array(figure["anchor_parts"])[inside]):
        labels[py, px] = labels[py, px] or OUTLINE
        bodies[py, px] = bodies[py, px] or body_part

    palette = np.zeros((NUM_LABELS, 3))
    palette[SKIN], palette[HAIR], palette[SHOES] = style["skin"], style["hair_colour"], style["shoes"]
    palette[EYE], palette[FEATURE] = (25, 20, 30), 0.7 * style["skin"]
    palette[OUTLINE] = style["outline"]
    colours = palette.astype(np.uint8)[labels]
    for label in (TOP, BOTTOM):
        region = labels == label
        if region.any():
            colours[region] = _clothing(figure, label, (x0, y0, x1, y1), rng)[region]
    drawn = labels > 0
    image[y0:y1, x0:x1][drawn] = colours[drawn]
    owner[y0:y1, x0:x1][drawn] = owner_id
    body_parts[y0:y1, x0:x1][drawn] = bodies[drawn]
    return x0, y0, x1, y1


def _clothing(figure, label, box, rng):
    """The texture of clothing `label` (TOP or BOTTOM) over the pixel box `box` (x0, y0, x1, y1), exclusive end:
    [y1 - y0, x1 - x0, 3] uint8 RGB.

    A figure with 'textures' (dict label -> (canvas [h, w, 3] uint8 RGB, (x, y) int image pixel of the canvas's
    pixel (0, 0))) gets the crop of its canvas under the box (edge pixels repeated outside it), so its clothes
    keep their pattern wherever it is drawn; any other figure a fresh random texture from `rng`.
    """
    x0, y0, x1, y1 = box
    if "textures" not in figure:
        return _texture(rng, y1 - y0, x1 - x0, 0.1 * (y1 - y0))
    canvas, (left, top) = figure["textures"][label]
    rows = np.clip(np.arange(y0, y1) - top, 0, canvas.shape[0] - 1)
    columns = np.clip(np.arange(x0, x1) - left, 0, canvas.shape[1] - 1)
    return canvas[rows[:, None], columns]


def _background(rng, height, width):
    """A textured background with clutter shapes that are not people: [height, width, 3] uint8 RGB."""
    image = _texture(rng, height, width, min(height, width) * 0.2)
    if rng.random() < 0.3:
        horizon = rng.integers(height // 4, 3 * height // 4)
        image[horizon:] = _texture(rng, height - horizon, width, min(height, width) * 0.2)
    for _ in range(rng.integers(*CLUTTER_SHAPES, endpoint=True)):
        size = rng.uniform(0.05, 0.4) * min(height, width)
        centre = rng.uniform((0, 0), (width, height))
        kind = rng.integers(4)
        if kind == 0:
            poly = _ellipse(centre, size * rng.uniform(0.2, 0.6, 2), rng.uniform(0, np.pi), num=24)
        elif kind == 1:
            poly = _ellipse(centre, size * rng.uniform(0.3, 0.7, 2), rng.uniform(0, np.pi), 0.25 * np.pi,
                            2.25 * np.pi, num=5)
        elif kind == 2:
            poly = centre + rng.uniform(-size / 2, size / 2, (rng.integers(3, 7), 2))
        else:
            end = centre + size * _direction(rng.uniform(0, 2 * np.pi))
            poly = _capsule(centre, end, *(rng.uniform(1.0, 0.08 * size + 1.5, 2)))
        _fill_textured(image, poly, rng)
    return image


def _fill_textured(image, poly, rng):
    """Fills polygon [M, 2] (x, y) pixels of `image` [H, W, 3] uint8 with a random texture, in place."""
    height, width = image.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + 1, (width, height))
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fixed_point(poly, (x0, y0))], 1, cv2.LINE_8, shift=SUBPIXEL_BITS)
    texture = _texture(rng, y1 - y0, x1 - x0, 0.3 * max(x1 - x0, y1 - y0))
    image[y0:y1, x0:x1][mask > 0] = texture[mask > 0]


def _finish(rng, image):
    """Camera effects: an occasional slight blur and Gaussian noise. Returns [H, W, 3] uint8."""
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), rng.uniform(0.5, 1.0))
    noise = rng.normal(0.0, rng.uniform(0.0, 5.0), image.shape)
    return (image + noise).clip(0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------- scene


def _sample_person_count(rng, scene):
    """Number of persons in an image, drawn from the scene's person_count_bins."""
    bins = scene.person_count_bins
    probabilities = np.array([bin_[2] for bin_ in bins])
    chosen = rng.choice(len(bins), p=probabilities / probabilities.sum())
    low, high, _ = bins[chosen]
    return int(rng.integers(low, high, endpoint=True))


def _anchor_names(skeleton):
    """The figure points whose pixels belong to the figure: the 17 COCO keypoints, then the skeleton's others."""
    return _ANCHORS + tuple(name for name in skeleton.keypoints if name not in _ANCHORS)


def _sample_figure(rng, height_px, origin, skeleton):
    """A posed, styled figure of `height_px` pixels with its hip centre at `origin` (x, y).

    Returns:
      dict with 'keypoints' [K, 2] float (x, y) image pixels of the skeleton's keypoints, 'anchors' [A, 2]
      and 'anchor_parts' [A] (see `_draw_figure`), 'parts' (see `_figure_parts`), 'style'.
    """
    points, shape = _sample_body(rng)
    rotation = float(np.clip(rng.normal(0.0, 0.08), -0.3, 0.3))
    return _posed_figure(points, shape, _sample_style(rng), height_px, rotation, origin, skeleton)


def _posed_figure(points, shape, style, height_px, rotation, origin, skeleton):
    """The figure of body `points`, `shape` (`_sample_body`) and `style` (`_sample_style`), placed by
    `_place` (`height_px` pixels, turned by `rotation` radians, hip centre at `origin` (x, y)); no random
    numbers.

    Returns:
      dict as `_sample_figure`.
    """
    placed, placed_shape = _place(points, shape, height_px, rotation, np.asarray(origin, float))
    anchor_names = _anchor_names(skeleton)
    named = _figure_points(placed, placed_shape, anchor_names)
    rounded = {name: np.round(point, 2) for name, point in named.items()}  # as written to json
    return {"keypoints": np.array([rounded[name] for name in skeleton.keypoints]).reshape(-1, 2),
            "anchors": np.array([rounded[name] for name in anchor_names]),
            "anchor_parts": tuple(FIGURE_POINT_PARTS[name] for name in anchor_names),
            "parts": _figure_parts(placed, placed_shape, style), "style": style}


def _sample_persons(rng, height, width, scene, skeleton, count=None):
    """The persons of an image, back to front (list of `_sample_figure` dicts); `count` None: random."""
    count = _sample_person_count(rng, scene) if count is None else count
    cap = float(np.clip(1.3 / np.sqrt(max(count, 1)), 0.25, scene.max_height_fraction))
    lowest = min(max(scene.min_height_fraction, cap / 4), cap)
    fractions = np.exp(rng.uniform(np.log(lowest), np.log(cap), count))
    depth = np.log(fractions) + rng.normal(0.0, DEPTH_NOISE, count)  # larger figures tend to be nearer
    persons = []
    for fraction in fractions[np.argsort(depth, kind="stable")]:
        figure_px = fraction * height
        top = rng.uniform(-0.2 * figure_px, max(height - 0.8 * figure_px, 1.0 - 0.2 * figure_px))
        origin = (rng.uniform(-0.15 * figure_px, width + 0.15 * figure_px), top + 0.5 * figure_px)
        persons.append(_sample_figure(rng, figure_px, origin, skeleton))
    return persons


def _sample_crowd(rng, height, width, skeleton):
    """A dense cluster of small figures, back to front (list of `_sample_figure` dicts)."""
    count = rng.integers(*CROWD_FIGURES, endpoint=True)
    figure_px = rng.uniform(*CROWD_HEIGHT_FRACTION) * height
    centre = rng.uniform((0.2 * width, 0.3 * height), (0.8 * width, 0.8 * height))
    spread = (0.12 * count * figure_px / 4, 0.25 * figure_px)
    origins = centre + rng.normal(0.0, 1.0, (count, 2)) * spread
    origins = origins[np.argsort(origins[:, 1], kind="stable")]
    return [_sample_figure(rng, figure_px * rng.uniform(0.85, 1.15), origin, skeleton) for origin in origins]


# --------------------------------------------------------------------------------------- annotations


def mask_to_polygons(mask):
    """COCO polygons whose pycocotools rasterisation is exactly `mask`.

    Contours are traced on the mask upsampled twice, so every polygon runs a quarter pixel inside the
    boundary of the pixel squares. COCO polygons cannot hold holes: a mask with a hole is split at a
    column through the hole and each side is traced separately.

    Args:
      mask: [H, W] bool.

    Returns:
      list of flat [x0, y0, x1, y1, ...] polygons in the pycocotools convention (pixel (c, r) is the
      square [c, c+1] x [r, r+1]); each has at least 3 points.
    """
    column = _hole_column(mask)
    if column is not None:
        left, right = mask.copy(), mask.copy()
        left[:, column:] = False
        right[:, :column] = False
        return mask_to_polygons(left) + mask_to_polygons(right)
    upsampled = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(upsampled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [(contour.reshape(-1, 2) / 2 + 0.25).ravel().tolist() for contour in contours if len(contour) >= 3]


def _hole_column(mask):
    """Column of a background pixel enclosed by `mask` [H, W] bool (4-connected background), or None."""
    outside = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    count, components = cv2.connectedComponents(outside, connectivity=4)
    if count <= 2:
        return None
    _, columns = np.nonzero((components > 0) & (components != components[0, 0]))
    return int(columns[0]) - 1


def mask_to_uncompressed_rle(mask):
    """COCO uncompressed RLE of `mask` [H, W] bool: {'counts': run lengths in column-major order,
    starting with a run of zeros, 'size': [H, W]}."""
    flat = mask.ravel(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"counts": runs, "size": list(mask.shape)}


def _box(mask, x0=0, y0=0):
    """COCO box [x, y, width, height] of the pixels of `mask` [h, w] bool placed at offset (x0, y0)."""
    rows, columns = np.nonzero(mask)
    return [int(columns.min() + x0), int(rows.min() + y0), int(np.ptp(columns) + 1), int(np.ptp(rows) + 1)]


def _visibility(keypoints, owner, owner_id):
    """COCO visibility [K] int of a figure's keypoints [K, 2] (x, y): 2 where `owner` [H, W] shows the
    figure at the keypoint's pixel, 1 where another figure covers it, 0 outside the image."""
    height, width = owner.shape
    pixels = np.floor(keypoints + 0.5).astype(int)
    inside = np.all((pixels >= 0) & (pixels < (width, height)), axis=1)
    visible = np.zeros(len(keypoints), int)
    rows, columns = pixels[inside, 1], pixels[inside, 0]
    visible[inside] = np.where(owner[rows, columns] == owner_id, 2, 1)
    return visible


def _coco_keypoints(keypoints, visibility):
    """Flat COCO list [x, y, v] * K with x = y = 0 where v = 0; coordinates rounded to 0.01 px."""
    values = []
    for (x, y), v in zip(keypoints, visibility):
        values += [round(float(x), 2), round(float(y), 2), int(v)] if v else [0, 0, 0]
    return values


def _person_annotation(person, owner, owner_id, box, unlabelled, small_area, category_id):
    """The COCO annotation (without ids) and hidden keypoints of one drawn person, or None when none of
    it is visible.

    Returns:
      (annotation dict, hidden keypoint list or None), or None.
    """
    x0, y0, x1, y1 = box
    visible = owner[y0:y1, x0:x1] == owner_id
    area = int(visible.sum())
    if area == 0:
        return None
    visibility = _visibility(person["keypoints"], owner, owner_id)
    true_keypoints = [value for (x, y), v in zip(person["keypoints"], visibility)
                      for value in (round(float(x), 2), round(float(y), 2), int(v))]
    if area < small_area or unlabelled:
        visibility = np.zeros_like(visibility)
    polygons = [(np.array(poly).reshape(-1, 2) + (x0, y0)).ravel().tolist()
                for poly in mask_to_polygons(visible)]
    annotation = {
        "category_id": category_id, "iscrowd": 0, "segmentation": polygons,
        "area": area, "bbox": _box(visible, x0, y0),
        "keypoints": _coco_keypoints(person["keypoints"], visibility),
        "num_keypoints": int(np.count_nonzero(visibility)),
    }
    return annotation, (true_keypoints if annotation["num_keypoints"] == 0 else None)


def synthesize_image(seed, index, min_side=256, max_side=448, num_persons=None, size=None, scene=COCO_SCENE,
                     skeleton=COCO17):
    """Renders image `index` of the dataset of `seed`.

    `num_persons` and `size` ((height, width)) fix the person count and the image size instead of
    drawing them (benchmarks); an image with a fixed count has no crowd region. `scene`: a `Scene`.
    `skeleton`: the `Skeleton` whose K keypoints are annotated (`check_skeleton`; ValueError otherwise).

    Returns:
      dict with 'image' [H, W, 3] uint8 RGB, 'jpeg_quality' int, 'annotations' (COCO dicts without ids;
      the crowd region, if any, last), 'hidden_keypoints' (one flat list [x, y, v] * K of true keypoints,
      or None, per annotation), 'part_labels' [H, W] uint8 (BODY_PART_CLASSES).
    """
    check_skeleton(skeleton)
    rng = np.random.default_rng([seed, index])
    height, width = (int(v) for v in rng.integers(min_side, max_side, 2, endpoint=True))
    if size is not None:
        height, width = size
    image = _background(rng, height, width)
    persons = _sample_persons(rng, height, width, scene, skeleton, num_persons)
    with_crowd = persons and num_persons is None and rng.random() < scene.crowd_probability
    crowd = _sample_crowd(rng, height, width, skeleton) if with_crowd else []
    unlabelled = rng.random(len(persons)) < scene.unlabelled_fraction

    owner = np.full((height, width), -1, np.int16)
    body_parts = np.zeros((height, width), np.uint8)
    crowd_id = len(persons)
    for figure in crowd:
        _draw_figure(image, owner, body_parts, figure, crowd_id, rng)
    boxes = [_draw_figure(image, owner, body_parts, person, n, rng) for n, person in enumerate(persons)]

    annotations, hidden = [], []
    for n, (person, box) in enumerate(zip(persons, boxes)):
        result = None if box is None else _person_annotation(person, owner, n, box, unlabelled[n], scene.small_area,
                                                             skeleton.category_id)
        if result is not None:
            annotations.append(result[0])
            hidden.append(result[1])
    crowd_mask = owner == crowd_id
    if crowd_mask.any():
        annotations.append({
            "category_id": skeleton.category_id, "iscrowd": 1,
            "segmentation": mask_to_uncompressed_rle(crowd_mask), "area": int(crowd_mask.sum()),
            "bbox": _box(crowd_mask), "keypoints": [0] * (3 * skeleton.num_keypoints), "num_keypoints": 0,
        })
        hidden.append(None)
    return {"image": _finish(rng, image), "jpeg_quality": int(rng.integers(*JPEG_QUALITY, endpoint=True)),
            "annotations": annotations, "hidden_keypoints": hidden, "part_labels": body_parts}


def write_jpeg(path: str, image: np.ndarray, quality: int) -> None:
    """Writes `image` [H, W, 3] uint8 RGB to `path` as a JPEG of `quality` (1-100) with cv2's encoder."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    with open(path, "wb") as f:
        f.write(encoded.tobytes())


def generate_dataset(output_dir, num_images, seed, min_side=256, max_side=448, progress_fn=None, skeleton=COCO17,
                     **scene_options):
    """Writes a synthetic COCO person-keypoint dataset.

    Files: `output_dir/images/<image id:012d>.jpg` (image ids 1..num_images), `person_keypoints.json`
    (COCO, the skeleton's category), `hidden_keypoints.json`: a list of {"id": annotation id,
    "keypoints": [x, y, v] * K} with
    the true keypoints of every non-crowd person annotated without keypoints (true x, y even outside the
    image; v as it would have been labelled), and `part_labels/<image id:012d>.png`, the part label maps.

    Args:
      output_dir: directory to create or fill.
      num_images: number of images.
      seed: int; image i depends only on (seed, i).
      min_side, max_side: image height and width are drawn uniformly from [min_side, max_side].
      progress_fn: optional callable(done, total) called after each image.
      skeleton: the `Skeleton` whose keypoints are annotated (default coco17); ValueError naming the
        keypoints that are not figure points (`check_skeleton`), before anything is written.
      **scene_options: `num_persons`, `size` and `scene` of `synthesize_image`.

    Returns:
      dict summary: images, persons (non-crowd annotations), persons_with_keypoints, crowd_regions,
      images_without_people (images with no annotation at all).
    """
    check_skeleton(skeleton)
    os.makedirs(os.path.join(output_dir, coco_format.IMAGES_DIR), exist_ok=True)
    images, annotations, hidden = [], [], []
    for index in range(num_images):
        image_id = index + 1
        sample = synthesize_image(seed, index, min_side, max_side, skeleton=skeleton, **scene_options)
        file_name = f"{image_id:012d}.jpg"
        write_jpeg(os.path.join(output_dir, coco_format.IMAGES_DIR, file_name), sample["image"], sample["jpeg_quality"])
        part_labels_lib.write_png(coco_format.part_labels_path(os.path.join(output_dir, coco_format.PART_LABELS_DIR),
                                                               file_name), sample["part_labels"])
        height, width = sample["image"].shape[:2]
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        pairs = zip(sample["annotations"], sample["hidden_keypoints"])
        for n, (annotation, true_keypoints) in enumerate(pairs):
            annotation_id = image_id * ANNOTATION_ID_STRIDE + n
            annotations.append(dict(annotation, id=annotation_id, image_id=image_id))
            if true_keypoints is not None:
                hidden.append({"id": annotation_id, "keypoints": true_keypoints})
        if progress_fn:
            progress_fn(index + 1, num_images)

    description = f"personlab_tf synthetic people, seed {seed}"
    if skeleton.name != COCO17.name:
        description += f", skeleton {skeleton.describe()}"
    coco_format.write_annotations(output_dir, images, annotations, description, skeleton)
    with open(os.path.join(output_dir, HIDDEN_KEYPOINTS_FILE), "w") as f:
        json.dump(hidden, f)
    persons = [a for a in annotations if not a["iscrowd"]]
    annotated_images = {a["image_id"] for a in annotations}
    return {"images": num_images, "persons": len(persons),
            "persons_with_keypoints": sum(a["num_keypoints"] > 0 for a in persons),
            "crowd_regions": len(annotations) - len(persons),
            "images_without_people": num_images - len(annotated_images)}
