"""Constants of the COCO person-keypoint task and of PersonLab.

Coordinates everywhere in this package: pixel centres at integer coordinates, x to the right, y down,
points stored in (x, y) order (see docs/conventions.md).
"""

KEYPOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)


def _flip_permutation(names):
    """Index of the mirror-image keypoint of each keypoint (left <-> right, others fixed)."""
    swap = {"left": "right", "right": "left"}
    mirrored = []
    for name in names:
        side, _, part = name.partition("_")
        mirrored.append(f"{swap[side]}_{part}" if side in swap else name)
    return tuple(names.index(m) for m in mirrored)


# FLIP_PERMUTATION[k] is the keypoint that becomes keypoint k after a horizontal flip.
FLIP_PERMUTATION = _flip_permutation(KEYPOINT_NAMES)

# The kinematic tree rooted at the nose: 16 undirected edges (parent, child), COCO indices.
TREE_EDGES = (
    (0, 1), (1, 3), (0, 2), (2, 4),
    (0, 5), (5, 7), (7, 9), (5, 11), (11, 13), (13, 15),
    (0, 6), (6, 8), (8, 10), (6, 12), (12, 14), (14, 16),
)

# Mid-range offsets use both directions of every tree edge: the 16 parent->child edges, then the 16
# child->parent edges. DIRECTED_EDGES[e] = (source keypoint k, target keypoint l).
DIRECTED_EDGES = TREE_EDGES + tuple((child, parent) for parent, child in TREE_EDGES)
NUM_EDGES = len(DIRECTED_EDGES)

# The COCO evaluation's per-keypoint sigmas. COCO's OKS uses kappa_k = 2 sigma_k:
# OKS = mean_k exp(-d_k^2 / (2 s^2 kappa_k^2)) (pycocotools: vars = (2 sigma)^2); Eq. 3 uses the same kappa.
OKS_SIGMAS = tuple(
    s / 10.0
    for s in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
              1.07, 1.07, 0.87, 0.87, 0.89, 0.89)
)

# COCO category id of "person".
PERSON_CATEGORY_ID = 1

# Disk radius R of the heatmap, short- and mid-range targets, in input pixels (paper §3.1).
DISK_RADIUS = 32.0

# Detections kept per image, best first: the COCO keypoint evaluation's limit, which the paper also uses
# for its segmentation proposals (PersonLab §4.3); the SavedModels pad their outputs to it.
MAX_DETECTIONS = 20
