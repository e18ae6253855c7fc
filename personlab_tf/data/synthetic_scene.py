"""Synthetic scenes: how many figures of which sizes where, and the rendering of one image.

An image is a textured background with clutter and 0-30 articulated stick figures (data/synthetic_body.py),
drawn back to front (data/synthetic_drawing.py) and annotated (data/synthetic_annotations.py). About one image
in eight holds a crowd: a cluster of small figures behind everyone, annotated as one iscrowd region. Persons
with a visible area under 32^2 pixels, and a few others at random, are annotated without keypoints as COCO
does for small people. `Scene` holds these statistics: `COCO_SCENE` (the default) and `PARTS_SCENE`.

Image i is drawn from `np.random.default_rng([seed, i])` alone, so it does not depend on how many images
are generated.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np

from personlab_tf.data.synthetic_annotations import drawn_person_annotation, mask_box, mask_to_uncompressed_rle
from personlab_tf.data.synthetic_body import check_skeleton, sample_body
from personlab_tf.data.synthetic_drawing import camera_effects, draw_figure, sample_background, sample_style
from personlab_tf.data.synthetic_figure import posed_figure
from personlab_tf.skeleton import COCO17, Skeleton


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
JPEG_QUALITY = (75, 95)


def _sample_person_count(rng, scene):
    """Number of persons in an image, drawn from the scene's person_count_bins."""
    bins = scene.person_count_bins
    probabilities = np.array([bin_[2] for bin_ in bins])
    chosen = rng.choice(len(bins), p=probabilities / probabilities.sum())
    low, high, _ = bins[chosen]
    return int(rng.integers(low, high, endpoint=True))


def _sample_figure(rng, height_px, origin, skeleton):
    """A posed, styled figure of `height_px` pixels with its hip centre at `origin` (x, y).

    Returns:
      dict as `posed_figure`.
    """
    points, shape = sample_body(rng)
    rotation = float(np.clip(rng.normal(0.0, 0.08), -0.3, 0.3))
    return posed_figure(points, shape, sample_style(rng), height_px, rotation, origin, skeleton)


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


def synthesize_image(seed: int, index: int, min_side: int = 256, max_side: int = 448,
                     num_persons: Optional[int] = None, size: Optional[Tuple[int, int]] = None,
                     scene: Scene = COCO_SCENE, skeleton: Skeleton = COCO17) -> dict:
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
    image = sample_background(rng, height, width)
    persons = _sample_persons(rng, height, width, scene, skeleton, num_persons)
    with_crowd = persons and num_persons is None and rng.random() < scene.crowd_probability
    crowd = _sample_crowd(rng, height, width, skeleton) if with_crowd else []
    unlabelled = rng.random(len(persons)) < scene.unlabelled_fraction

    owner = np.full((height, width), -1, np.int16)
    body_parts = np.zeros((height, width), np.uint8)
    crowd_id = len(persons)
    for figure in crowd:
        draw_figure(image, owner, body_parts, figure, crowd_id, rng)
    boxes = [draw_figure(image, owner, body_parts, person, n, rng) for n, person in enumerate(persons)]

    annotations, hidden = [], []
    for n, (person, box) in enumerate(zip(persons, boxes)):
        result = None if box is None else drawn_person_annotation(person, owner, n, box, unlabelled[n],
                                                                  scene.small_area, skeleton.category_id)
        if result is not None:
            annotations.append(result[0])
            hidden.append(result[1])
    crowd_mask = owner == crowd_id
    if crowd_mask.any():
        annotations.append({
            "category_id": skeleton.category_id, "iscrowd": 1,
            "segmentation": mask_to_uncompressed_rle(crowd_mask), "area": int(crowd_mask.sum()),
            "bbox": mask_box(crowd_mask), "keypoints": [0] * (3 * skeleton.num_keypoints), "num_keypoints": 0,
        })
        hidden.append(None)
    return {"image": camera_effects(rng, image), "jpeg_quality": int(rng.integers(*JPEG_QUALITY, endpoint=True)),
            "annotations": annotations, "hidden_keypoints": hidden, "part_labels": body_parts}
