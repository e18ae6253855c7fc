"""The COCO annotation of a drawn synthetic person: mask polygons or RLE, box, keypoints and their visibility.

A person's COCO mask is its region left visible by the figures in front (the `owner` map of
data/synthetic_drawing.py). Keypoint visibility v is 2 where the keypoint's pixel shows the person itself, 1
where a figure in front hides it, and 0 (with x = y = 0) outside the image. Persons with a visible area under
the scene's `small_area`, and those chosen unlabelled, are annotated without keypoints as COCO does for small
people; their true keypoints are returned for `hidden_keypoints.json`.

Coordinates: keypoints use pixel centres at integer coordinates, x right, y down, points in (x, y) order.
Only the segmentation polygons follow the pycocotools rasteriser, in which pixel (c, r) is the unit square
[c, c+1] x [r, r+1]; read masks with `COCO.annToMask`, which gives back the rendered visible region exactly.
Boxes are COCO [x, y, width, height] of that pixel set.
"""

from typing import List, Optional, Tuple

import cv2
import numpy as np


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
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


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE of `mask` [H, W] bool: {'counts': run lengths in column-major order,
    starting with a run of zeros, 'size': [H, W]}."""
    flat = mask.ravel(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"counts": runs, "size": list(mask.shape)}


def mask_box(mask: np.ndarray, x0: int = 0, y0: int = 0) -> List[int]:
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


def drawn_person_annotation(person: dict, owner: np.ndarray, owner_id: int, box: Tuple[int, int, int, int],
                            unlabelled: bool, small_area: int,
                            category_id: int) -> Optional[Tuple[dict, Optional[List[float]]]]:
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
        "area": area, "bbox": mask_box(visible, x0, y0),
        "keypoints": _coco_keypoints(person["keypoints"], visibility),
        "num_keypoints": int(np.count_nonzero(visibility)),
    }
    return annotation, (true_keypoints if annotation["num_keypoints"] == 0 else None)
