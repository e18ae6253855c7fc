"""Constants of PersonLab and of the COCO evaluation that hold for every keypoint set (a keypoint set's own
facts, COCO-17's included, are a `Skeleton`: personlab_tf/skeleton.py).

Coordinates everywhere in this package: pixel centres at integer coordinates, x to the right, y down,
points stored in (x, y) order (see docs/conventions.md).
"""

# Disk radius R of the heatmap, short- and mid-range targets, in input pixels (paper §3.1).
DISK_RADIUS = 32.0

# Detections kept per image, best first: the COCO keypoint evaluation's limit, which the paper also uses
# for its segmentation proposals (PersonLab §4.3); the SavedModels pad their outputs to it.
MAX_DETECTIONS = 20

# The floor of a person's area s^2 (pixels^2) in every OKS (Eq. 3's lambda^2, OKS-NMS, the tracker) and of the
# part parser's person scale, so that a person whose keypoints coincide divides by no zero.
MIN_AREA = 1.0

# COCO's person sizes by area s^2 (pixels^2; pycocotools' areaRng, whose APS / APM / APL they are): [low, high).
AREA_RANGES = {"small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, float("inf"))}
