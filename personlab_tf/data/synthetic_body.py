"""The synthetic figures' body: proportions, pose, and the named points a skeleton's keypoints may be.

A figure faces the camera, so the person's left side is on the image's right (the COCO convention) and
left/right follows from geometry alone. Its points are sampled in figure heights (`sample_body`: a build
and a pose of the limbs, `pose_body` posing a build with no random numbers) and placed in the image by
`place_body`. Coordinates: pixel centres at integer coordinates, x right, y down, points in (x, y) order.

Body parts: every drawn piece of a figure (data/synthetic_figure.py) and every named point belongs to a body
part of `BODY_PART_CLASSES` (head, torso, upper and lower arms, hands, upper and lower legs, feet; no
left/right; the part set "synthetic" of tasks/parts/part_sets.py).

Skeletons: the keypoints written are those of a `Skeleton` (personlab_tf/skeleton.py; coco17 by default),
each a named point of the figure (`FIGURE_POINTS`): the 17 COCO keypoints, the drawing's own points
('neck_top', 'head' the head centre, '<side>_hand', '<side>_foot') and points derived from them without
random numbers (`named_figure_points`): 'head_top' = 'top_head' (the top of the head ellipse along the head's up
axis), 'upper_neck' (= 'neck_top'), 'neck' (midway between the shoulder centre and 'neck_top', the middle of
the drawn neck), 'thorax' (the shoulder centre) and 'pelvis' (the hip centre). A skeleton naming anything
else is refused (`check_skeleton`). The scene (poses, sizes, clothes, everything drawn from the random
numbers) does not depend on the skeleton: the 17 COCO keypoints' pixels always belong to their figure's
silhouette, and so do the pixels of the skeleton's other keypoints; those extra pixels are the only
difference between the images of two skeletons of the same seed.
"""

from typing import Dict, Sequence, Tuple

import numpy as np

from personlab_tf.skeleton import COCO17, Skeleton

# The body-part classes of the part label maps, class 0 the background (no left/right distinction).
BODY_PART_CLASSES = ("background", "head", "torso", "upper_arm", "lower_arm", "hand", "upper_leg", "lower_leg",
                     "foot")

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

# Body-part classes (BODY_PART_CLASSES) of the drawn pieces, and of a keypoint's own pixel when it
# falls outside every piece of its figure.
(HEAD_PART, TORSO_PART, UPPER_ARM_PART, LOWER_ARM_PART, HAND_PART, UPPER_LEG_PART, LOWER_LEG_PART,
 FOOT_PART) = range(1, len(BODY_PART_CLASSES))
BODY_SIDES = (("left", 1.0), ("right", -1.0))  # the person's side and its image x direction
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
ANCHOR_KEYPOINTS = COCO17.keypoints


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


def unit_direction(angle: float) -> np.ndarray:
    """Unit vector (x, y) at `angle` radians from straight down (+y), positive towards +x."""
    return np.array([np.sin(angle), np.cos(angle)])


def _rotation(angle):
    """[2, 2] matrix M that turns row vectors (x, y) by `angle` radians: (0, 1) @ M = `unit_direction(angle)`."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def ellipse_polygon(centre: np.ndarray, radii: Sequence[float], angle: float, start: float = 0.0,
                    stop: float = 2 * np.pi, num: int = 20) -> np.ndarray:
    """Points [num, 2] (x, y) on an ellipse with semi-axes `radii` rotated by `angle` radians."""
    t = np.linspace(start, stop, num)
    local = np.stack([radii[0] * np.cos(t), radii[1] * np.sin(t)], axis=1)
    return local @ _rotation(angle) + centre


def capsule_polygon(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, num: int = 7) -> np.ndarray:
    """Polygon [2 num, 2] (x, y) of a tapered capsule: round caps of radius r0 at p0 and r1 at p1."""
    axis = np.arctan2(p1[1] - p0[1], p1[0] - p0[0])
    cap = np.linspace(-np.pi / 2, np.pi / 2, num)
    end = p1 + r1 * np.stack([np.cos(axis + cap), np.sin(axis + cap)], axis=1)
    start = p0 + r0 * np.stack([np.cos(axis + np.pi + cap), np.sin(axis + np.pi + cap)], axis=1)
    return np.concatenate([end, start])


def sample_body(rng: np.random.Generator) -> Tuple[Dict[str, np.ndarray], dict]:
    """Samples a pose and body proportions of a figure facing the camera (`pose_body` of `sample_build`
    and `_sample_limbs`).

    Returns:
      points: dict name -> [2] float (x, y) in figure heights, origin at the hip centre, y down; the
        17 COCO keypoints (person's left at +x) plus 'neck_top', 'head', '<side>_hand', '<side>_foot'.
      shape: dict with 'head_radii' (rx, ry), 'head_angle' (radians) and 'width' (scale of all radii).
    """
    build = sample_build(rng)
    return pose_body(build, _sample_limbs(rng))


def sample_build(rng: np.random.Generator) -> dict:
    """Samples a figure's proportions, lean and head pose: all of a body but its limbs' pose.

    Returns:
      dict: 'length' (name of SEGMENT_LENGTHS -> length in figure heights), 'width' (scale of all radii),
      'lean' (radians, the torso's tilt, as `unit_direction`), 'torso' and 'neck' (factors of TORSO_LENGTH and
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
      dict side ('left', 'right') -> limb dict of `pose_body`.
    """
    limbs = {}
    for side, _ in BODY_SIDES:
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


def pose_body(build: dict, limbs: Dict[str, dict]) -> Tuple[Dict[str, np.ndarray], dict]:
    """The points of a figure of proportions `build` (`sample_build`) posed by `limbs`; no random numbers.

    Args:
      build: dict of `sample_build`.
      limbs: dict side ('left', 'right') -> dict of the side's 'shoulder_angle', 'elbow_angle' (directions of
        the upper arm and forearm, radians from the torso's down, positive outwards: towards the image's +x
        for the left side, -x for the right), 'hip_angle', 'knee_angle' (directions of the thigh and shin,
        radians from straight down, positive outwards) and 'upper_arm', 'forearm', 'thigh', 'shin' (drawn
        fractions of the segments' lengths: foreshortening).

    Returns:
      (points, shape) as `sample_body`.
    """
    length, lean = build["length"], build["lean"]
    up, right = -unit_direction(lean), unit_direction(lean + np.pi / 2)  # right = towards the person's left
    points = {}
    shoulder_centre = up * TORSO_LENGTH * build["torso"]
    for side, sign in BODY_SIDES:
        points[f"{side}_shoulder"] = shoulder_centre + sign * build["shoulder_half"] * right
        points[f"{side}_hip"] = sign * build["hip_half"] * right
    points["neck_top"] = shoulder_centre + up * NECK_LENGTH * build["neck"]

    head_radii = build["head_radii"]
    head_angle = lean + build["head_tilt"]
    head_up, head_right = -unit_direction(head_angle), unit_direction(head_angle + np.pi / 2)
    points["head"] = points["neck_top"] + head_up * 0.85 * head_radii[1]

    def face_point(around, height):
        """A point on the face at `around` radians from the front and `height` head radii above centre."""
        return (points["head"] + head_radii[0] * np.sin(around + build["yaw"]) * head_right
                + height * head_radii[1] * head_up)

    points["nose"] = face_point(0.0, -0.2)
    for side, sign in BODY_SIDES:
        points[f"{side}_eye"] = face_point(sign * 0.45, 0.15)
        points[f"{side}_ear"] = face_point(sign * 1.35, 0.0)

    for side, sign in BODY_SIDES:
        limb = limbs[side]
        points[f"{side}_elbow"] = points[f"{side}_shoulder"] + length["upper_arm"] * limb["upper_arm"] * unit_direction(
            sign * limb["shoulder_angle"] + lean)
        forearm = unit_direction(sign * limb["elbow_angle"] + lean)
        points[f"{side}_wrist"] = points[f"{side}_elbow"] + length["forearm"] * limb["forearm"] * forearm
        points[f"{side}_hand"] = points[f"{side}_wrist"] + 0.6 * HAND_RADIUS * forearm
        points[f"{side}_knee"] = points[f"{side}_hip"] + length["thigh"] * limb["thigh"] * unit_direction(
            sign * limb["hip_angle"])
        points[f"{side}_ankle"] = points[f"{side}_knee"] + length["shin"] * limb["shin"] * unit_direction(
            sign * limb["knee_angle"])
        points[f"{side}_foot"] = points[f"{side}_ankle"] + np.array([sign * 0.6 * FOOT_RADII[0],
                                                                     0.5 * FOOT_RADII[1]])
    shape = {"head_radii": head_radii, "head_angle": head_angle, "width": build["width"]}
    return points, shape


def place_body(points: Dict[str, np.ndarray], shape: dict, height_px: float, rotation: float,
               origin: np.ndarray) -> Tuple[Dict[str, np.ndarray], dict]:
    """Maps body points to image pixels: rotate by `rotation` radians, scale by `height_px`, shift the
    hip centre to `origin` (x, y). Returns the mapped copies of `points` and `shape`."""
    matrix = _rotation(rotation) * height_px
    placed = {name: p @ matrix + origin for name, p in points.items()}
    placed_shape = dict(shape, head_radii=shape["head_radii"] * height_px,
                        head_angle=shape["head_angle"] + rotation, width=shape["width"] * height_px)
    return placed, placed_shape


def named_figure_points(p: Dict[str, np.ndarray], shape: dict, names: Sequence[str]) -> Dict[str, np.ndarray]:
    """The named figure points `names` (FIGURE_POINTS) of a placed figure: those of `p` (from `place_body`) and
    the derived ones (module docstring), from `p` and the placed `shape` alone.

    Returns:
      dict name -> [2] float (x, y) image pixels.
    """
    derived = {
        "head_top": lambda: p["head"] - shape["head_radii"][1] * unit_direction(shape["head_angle"]),
        "upper_neck": lambda: p["neck_top"],
        "neck": lambda: ((p["left_shoulder"] + p["right_shoulder"]) / 2 + p["neck_top"]) / 2,
        "thorax": lambda: (p["left_shoulder"] + p["right_shoulder"]) / 2,
        "pelvis": lambda: (p["left_hip"] + p["right_hip"]) / 2,
    }
    derived["top_head"] = derived["head_top"]
    return {name: p[name] if name in p else derived[name]() for name in names}
