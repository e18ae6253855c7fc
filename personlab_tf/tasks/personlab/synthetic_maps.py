"""Perfect PersonLab maps built from known poses (numpy), for tests, `scripts/benchmark.py decode` and
oracle checks of the decoder.

"Perfect" means what an ideal model would predict, as in the training targets (docs/data.md) but with every
keypoint labelled: heatmap disks of radius R, short- and mid-range offsets pointing exactly at the
keypoints of the person whose source keypoint is nearest, a segmentation of capsule-shaped bodies, and
long-range offsets pointing at the keypoints of the body each pixel belongs to (the nearest body, relative
to its limb radius, where bodies overlap). The maps are on the grid of stride s over an image of
`height` x `width` pixels: cell (i, j) is the pixel (x, y) = (s j, s i), ((height - 1) // s + 1) x
((width - 1) // s + 1) cells. Positions and offsets in pixels, (x, y) order, pixel centres at integer
coordinates.
"""

import math
from typing import Dict

import numpy as np

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS
from personlab_tf.skeleton import COCO17

# The template's keypoint set: the maps follow its tree.
SKELETON = COCO17
# A standing person facing the camera (its left side at +x), in person heights (eyes to ankles = 1),
# origin at the hip centre, y down. In SKELETON's order.
POSE_TEMPLATE = np.array([
    (0.0, -0.60), (0.025, -0.63), (-0.025, -0.63), (0.06, -0.61), (-0.06, -0.61),
    (0.11, -0.47), (-0.11, -0.47), (0.15, -0.29), (-0.15, -0.29), (0.17, -0.12), (-0.17, -0.12),
    (0.07, 0.0), (-0.07, 0.0), (0.08, 0.19), (-0.08, 0.19), (0.08, 0.37), (-0.08, 0.37),
], np.float32)
_TEMPLATE_TOP = 0.63  # distance from the hip centre up to the eyes, in person heights



def _joined(*names):
    """SKELETON's keypoint indices of the named pairs."""
    return tuple((SKELETON.keypoints.index(a), SKELETON.keypoints.index(b)) for a, b in names)


# Capsules of the body masks: the tree's limbs plus the torso's outline and diagonals.
BODY_SEGMENTS = SKELETON.tree + _joined(("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
                                        ("left_shoulder", "right_hip"), ("right_shoulder", "left_hip"))


def scene_keypoints(num_people: int, height: int, width: int, seed: int = 0, jitter: float = 0.02) -> np.ndarray:
    """Keypoints of `num_people` template persons laid out on a grid of image regions, one per region.

    Args:
      num_people: number of persons N.
      height, width: image size in pixels.
      seed: seed of the random scale, placement and per-keypoint jitter.
      jitter: standard deviation of the keypoint jitter in person heights.

    Returns:
      [N, K, 2] float32 keypoints (x, y) in pixels, inside the image.
    """
    rng = np.random.default_rng(seed)
    columns = max(1, math.ceil(math.sqrt(num_people * width / height)))
    rows = max(1, math.ceil(num_people / columns))
    region_w, region_h = width / columns, height / rows
    people = []
    for n in range(num_people):
        row, column = divmod(n, columns)
        scale = region_h * rng.uniform(0.6, 0.85)
        pose = POSE_TEMPLATE + rng.normal(0.0, jitter, POSE_TEMPLATE.shape)
        origin = ((column + 0.5 + rng.uniform(-0.1, 0.1)) * region_w,
                  row * region_h + (region_h - scale) * rng.uniform(0.2, 0.8) + _TEMPLATE_TOP * scale)
        people.append(pose * scale + origin)
    keypoints = np.array(people, np.float32).reshape(num_people, len(POSE_TEMPLATE), 2)
    return np.clip(keypoints, 0, [width - 1, height - 1]).astype(np.float32)


def grid_points(height: int, width: int, stride: int) -> np.ndarray:
    """[h, w, 2] float32 pixel positions (x, y) = (s j, s i) of the cells of the stride-s grid of the image."""
    rows = np.arange((height - 1) // stride + 1, dtype=np.float32) * stride
    cols = np.arange((width - 1) // stride + 1, dtype=np.float32) * stride
    ys, xs = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([xs, ys], axis=-1)


def body_distances(keypoints: np.ndarray, points: np.ndarray, limb_radius: float = 0.08) -> np.ndarray:
    """Distance of every cell to every person's body, in units of that person's limb radius.

    Args:
      keypoints: [N, K, 2]; points: [h, w, 2] cell positions.
      limb_radius: capsule radius as a fraction of the person's keypoint box height.

    Returns:
      [N, h, w] float32: <= 1 inside the person's capsules.
    """
    start = keypoints[:, [a for a, _ in BODY_SEGMENTS]][:, :, np.newaxis, np.newaxis]  # [N, G, 1, 1, 2]
    end = keypoints[:, [b for _, b in BODY_SEGMENTS]][:, :, np.newaxis, np.newaxis]
    axis = end - start
    along = np.sum((points - start) * axis, axis=-1) / np.maximum(np.sum(axis * axis, axis=-1), 1e-6)
    nearest = start + np.clip(along, 0, 1)[..., np.newaxis] * axis
    distance = np.linalg.norm(points - nearest, axis=-1).min(axis=1)                   # [N, h, w]
    extent = keypoints[..., 1].max(axis=1) - keypoints[..., 1].min(axis=1)
    radius = np.maximum(limb_radius * extent, 1.0)
    return (distance / radius[:, np.newaxis, np.newaxis]).astype(np.float32)


def body_owners(keypoints: np.ndarray, height: int, width: int, stride: int, limb_radius: float = 0.08) -> np.ndarray:
    """[h, w] int32 person owning each cell of the segmentation (nearest body), -1 for background."""
    distance = body_distances(keypoints, grid_points(height, width, stride), limb_radius)
    if len(keypoints) == 0:
        return np.full(distance.shape[1:], -1, np.int32)
    return np.where(distance.min(axis=0) <= 1.0, distance.argmin(axis=0), -1).astype(np.int32)


def perfect_maps(keypoints: np.ndarray, height: int, width: int, stride: int, radius: float = DISK_RADIUS,
                 limb_radius: float = 0.08) -> Dict[str, np.ndarray]:
    """The maps of an ideal model for persons with the given keypoints (all labelled).

    Args:
      keypoints: [N, K, 2] keypoints (x, y) in pixels.
      height, width: image size in pixels; stride: s of the grid; radius: disk radius R in pixels.
      limb_radius: body capsule radius as a fraction of the person's keypoint box height.

    Returns:
      dict of float32 numpy maps (personlab_tf.keys): HEATMAPS [h, w, K], SHORT_OFFSETS [h, w, K, 2],
      MID_OFFSETS [h, w, E, 2], SEGMENTATION [h, w, 1], LONG_OFFSETS [h, w, K, 2].
    """
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, len(POSE_TEMPLATE), 2)
    points = grid_points(height, width, stride)
    num_cells = points.shape[:2]
    to_keypoints = keypoints[:, np.newaxis, np.newaxis] - points[:, :, np.newaxis]        # [N, h, w, K, 2]
    distance2 = np.sum(to_keypoints ** 2, axis=-1)                                         # [N, h, w, K]
    if len(keypoints):
        nearest = distance2.argmin(axis=0)                                                 # [h, w, K]
        inside = distance2.min(axis=0) <= radius * radius
    else:
        nearest = np.zeros(num_cells + (len(POSE_TEMPLATE),), np.int64)
        inside = np.zeros(num_cells + (len(POSE_TEMPLATE),), bool)
    channel = np.arange(len(POSE_TEMPLATE))
    padded = np.concatenate([to_keypoints, np.zeros((1,) + to_keypoints.shape[1:], np.float32)])
    rows, cols = np.meshgrid(np.arange(num_cells[0]), np.arange(num_cells[1]), indexing="ij")

    def offsets(owner, targets, valid):
        """Offsets to keypoint targets[c] of person owner[..., c] where valid[..., c], else 0: [h, w, C, 2]."""
        owner = np.where(valid, owner, len(keypoints))
        return padded[owner, rows[..., np.newaxis], cols[..., np.newaxis], targets]

    sources = [k for k, _ in SKELETON.directed_edges]
    owner_person = body_owners(keypoints, height, width, stride, limb_radius)
    segmentation = owner_person >= 0
    long_owner = np.broadcast_to(owner_person[..., np.newaxis], inside.shape)
    return {
        keys.Map.HEATMAPS: inside.astype(np.float32),
        keys.Map.SHORT_OFFSETS: offsets(nearest, channel, inside),
        keys.Map.MID_OFFSETS: offsets(nearest[..., sources], [l for _, l in SKELETON.directed_edges],
                                         inside[..., sources]),
        keys.Map.SEGMENTATION: segmentation[..., np.newaxis].astype(np.float32),
        keys.Map.LONG_OFFSETS: offsets(long_owner, channel, np.broadcast_to(segmentation[..., np.newaxis],
                                                                        inside.shape)),
    }
