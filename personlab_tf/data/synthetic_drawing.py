"""Drawing the synthetic images: textures, clothing and skin, figures, background clutter, camera effects.

`draw_figure` rasterises a figure's polygons (data/synthetic_figure.py) with cv2 over the image, to
1 / 2^SUBPIXEL_BITS pixel, outlining the pieces of figures at least OUTLINE_MIN_HEIGHT_PX tall, and marks
which figure (`owner`) and which body part (`body_parts`, the part label map) each pixel shows; clothes get
random textures. Drawing the part label map uses no random numbers, so the images do not depend on it.
Coordinates: image pixels, pixel centres at integer coordinates, points in (x, y) order.
"""

from typing import Optional, Tuple

import cv2
import numpy as np

from personlab_tf.data.synthetic_body import capsule_polygon, ellipse_polygon, unit_direction
from personlab_tf.data.synthetic_figure import (BOTTOM, EYE, FEATURE, HAIR, LONG_SLEEVES, NUM_LABELS, OUTLINE, SHOES,
                                                SKIN, TOP)

CLUTTER_SHAPES = (2, 14)
# cv2 draws polygons with vertices in fixed point, to 1 / 2^SUBPIXEL_BITS pixel.
SUBPIXEL_BITS = 4
# Smallest figure with drawn outlines, in pixels.
OUTLINE_MIN_HEIGHT_PX = 48
SKIN_TONES = ((255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36),
              (92, 56, 32))


def _fixed_point(poly, origin):
    """Polygon [M, 2] (x, y) shifted by -`origin`, as int32 cv2 vertices with SUBPIXEL_BITS fraction bits."""
    return np.round((poly - origin) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _random_colour(rng):
    """A random RGB colour, [3] float."""
    return rng.uniform(0, 255, 3)


def random_texture(rng: np.random.Generator, height: int, width: int, feature_px: float) -> np.ndarray:
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


def sample_style(rng: np.random.Generator) -> dict:
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


def draw_figure(image: np.ndarray, owner: np.ndarray, body_parts: np.ndarray, figure: dict, owner_id: int,
                rng: Optional[np.random.Generator]) -> Optional[Tuple[int, int, int, int]]:
    """Draws a figure over `image` and marks its pixels in `owner` and its body parts in `body_parts`.

    Args:
      image: [H, W, 3] uint8 RGB canvas, modified in place.
      owner: [H, W] int16, index of the figure shown at each pixel (-1 none), modified in place.
      body_parts: [H, W] uint8, body-part class shown at each pixel (0 none), modified in place; an
        outline pixel belongs to the piece it outlines.
      figure: a `posed_figure` dict: its 'parts' (label, body part, polygon, outlined), image pixels
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
        return random_texture(rng, y1 - y0, x1 - x0, 0.1 * (y1 - y0))
    canvas, (left, top) = figure["textures"][label]
    rows = np.clip(np.arange(y0, y1) - top, 0, canvas.shape[0] - 1)
    columns = np.clip(np.arange(x0, x1) - left, 0, canvas.shape[1] - 1)
    return canvas[rows[:, None], columns]


def sample_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured background with clutter shapes that are not people: [height, width, 3] uint8 RGB."""
    image = random_texture(rng, height, width, min(height, width) * 0.2)
    if rng.random() < 0.3:
        horizon = rng.integers(height // 4, 3 * height // 4)
        image[horizon:] = random_texture(rng, height - horizon, width, min(height, width) * 0.2)
    for _ in range(rng.integers(*CLUTTER_SHAPES, endpoint=True)):
        size = rng.uniform(0.05, 0.4) * min(height, width)
        centre = rng.uniform((0, 0), (width, height))
        kind = rng.integers(4)
        if kind == 0:
            poly = ellipse_polygon(centre, size * rng.uniform(0.2, 0.6, 2), rng.uniform(0, np.pi), num=24)
        elif kind == 1:
            poly = ellipse_polygon(centre, size * rng.uniform(0.3, 0.7, 2), rng.uniform(0, np.pi), 0.25 * np.pi,
                            2.25 * np.pi, num=5)
        elif kind == 2:
            poly = centre + rng.uniform(-size / 2, size / 2, (rng.integers(3, 7), 2))
        else:
            end = centre + size * unit_direction(rng.uniform(0, 2 * np.pi))
            poly = capsule_polygon(centre, end, *(rng.uniform(1.0, 0.08 * size + 1.5, 2)))
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
    texture = random_texture(rng, y1 - y0, x1 - x0, 0.3 * max(x1 - x0, y1 - y0))
    image[y0:y1, x0:x1][mask > 0] = texture[mask > 0]


def camera_effects(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Camera effects: an occasional slight blur and Gaussian noise. Returns [H, W, 3] uint8."""
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), rng.uniform(0.5, 1.0))
    noise = rng.normal(0.0, rng.uniform(0.0, 5.0), image.shape)
    return (image + noise).clip(0, 255).astype(np.uint8)
