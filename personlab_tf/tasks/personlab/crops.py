"""Person crops for keypoint imputation (paper §3.3): annotated box -> crop -> model input and back.

```
COCO box (x, y, w, h) --crop_box (margin m, clamped)--> crop = image[y0:y1, x0:x1]
  --upscale_crop--> frame: larger side = the model's input size S, corner aligned, f = (S - 1) / (L - 1)
  --model--> keypoints in frame pixels u --crop_to_original--> original x = u / f + x0
             masks on the frame          --masks_at_crop_pixels--> masks on the crop's pixels
```

Coordinates: points are pixel centres at integer coordinates, x right, y down, (x, y) order
(docs/conventions.md); COCO boxes are in pixel-corner coordinates ([x, x + 1) covers column x). The
frame is made by `geometry.resize_image` with the scale of `geometry.resize_scale`, i.e. the map of
the SavedModel's own resize: fed to a SavedModel exported with `--max_side S`, the frame is resized by
f = 1 (an exact copy), so detections come back in frame pixels.
"""

import math
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from personlab_tf.inference import geometry


def crop_box(bbox: Sequence[float], margin: float, image_size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """The crop around a COCO box, grown by `margin` and clamped to the image.

    The box grows by margin * w to the left and to the right and by margin * h above and below
    (margin 0.5 doubles each side); the crop is every pixel the grown box touches:
    columns floor(x - m w) ... ceil(x + w + m w) - 1, rows likewise, clamped to the image.

    Args:
      bbox: COCO box (x, y, w, h), pixel-corner coordinates.
      margin: m, a fraction of the box's width (horizontally) and height (vertically).
      image_size: (height, width) of the image.

    Returns:
      (x0, y0, x1, y1) ints, the crop is image[y0:y1, x0:x1] (empty when the box is outside the image).
    """
    x, y, w, h = (float(value) for value in bbox)
    height, width = image_size

    def span(start, length, limit):
        first = min(max(math.floor(start - margin * length), 0), limit)
        return first, min(max(math.ceil(start + length + margin * length), first), limit)

    (x0, x1), (y0, y1) = span(x, w, width), span(y, h, height)
    return x0, y0, x1, y1


def upscale_crop(crop: np.ndarray, input_size: int) -> Tuple[np.ndarray, float]:
    """Resizes a crop so that its larger side is `input_size`, corner aligned (geometry.resize_scale).

    Crop pixel x is frame pixel u = f x, f = (input_size - 1) / (L - 1), L the crop's larger side;
    the frame pixels are the bilinear values of the crop there, rounded to uint8.

    Args:
      crop: [h, w, 3] uint8 RGB, h, w >= 1.
      input_size: S, the larger side of the model's input frame (the export's --max_side).

    Returns:
      (frame [h', w', 3] uint8 with max(h', w') = S, f as a Python float).
    """
    size = tf.shape(crop)[:2]
    scale = geometry.resize_scale(size, input_size)
    frame = geometry.resize_image(crop, scale, geometry.frame_size(size, scale, 1))
    return np.clip(np.round(frame.numpy()), 0, 255).astype(np.uint8), float(scale)


def crop_to_original(points: np.ndarray, scale: float, origin: Sequence[float]) -> np.ndarray:
    """Frame points [..., 2] (x, y) -> original-image pixels: x = u / f + x0, y = v / f + y0."""
    return np.asarray(geometry.to_original(np.asarray(points, np.float64), scale)) + np.asarray(origin, np.float64)


def masks_at_crop_pixels(masks: np.ndarray, scale: float, crop_size: Tuple[int, int]) -> np.ndarray:
    """Frame masks [D, h', w'] sampled at the crop's pixels: crop pixel x reads the nearest frame pixel
    round(f x) (geometry.to_frame), clamped to the frame.

    Args:
      masks: [D, h', w'] bool masks on the frame; scale: f; crop_size: (h, w) of the crop.

    Returns:
      [D, h, w] bool.
    """
    height, width = crop_size
    rows = np.round(geometry.to_frame(np.arange(height, dtype=np.float64), scale)).astype(np.int64)
    columns = np.round(geometry.to_frame(np.arange(width, dtype=np.float64), scale)).astype(np.int64)
    rows = np.minimum(rows, masks.shape[1] - 1)
    columns = np.minimum(columns, masks.shape[2] - 1)
    return np.asarray(masks, bool)[:, rows[:, np.newaxis], columns[np.newaxis, :]]
