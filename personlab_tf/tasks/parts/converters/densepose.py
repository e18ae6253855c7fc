"""DensePose-COCO -> the project's layout (package docstring), skeleton coco17: `convert_densepose`.

A person's parts come from its `dp_masks` (14 coarse-part RLEs of 256 x 256 over its box); its mask and parts
follow one of two readings (`convert_densepose(reading=...)`, the script's `--densepose_parts`):
- `box` (default), as the part parser's released code builds its DensePose ground truth
  (tfzhou/MG-HumanParsing, lib/transforms/annotations.py `NormalizeAnnotations`, lib/eval_densepose.py
  `EvalSemantic.get_mask`): the 14 masks decoded into one 256 x 256 grid (later parts over earlier
  ones), resized with OpenCV's nearest neighbour (`nearest_indices`) into the integer box
  x = int(x0) ... int(x0) + int(w) - 1 (likewise y; the right and bottom ends cut at the image border, the
  whole grid squeezed into what is left), and *not* clipped to the COCO mask. The map holds every
  part-labelled person's part pixels, a later person's over an earlier one's, as the released ground truth
  map; a person's mask is its part pixels (the released evaluation's person region) plus the pixels of its
  COCO mask that no person's part pixel holds (among those, the last person wins). A non-crowd person
  without `dp_masks` is, as in the released code, *background*: it keeps the pixels of its COCO mask that
  no part pixel holds, `has_parts: 1`, and no part under it (the released evaluation has no instance for it
  and counts its pixels as background; the released training too). An image none of whose persons has
  usable `dp_masks` has no part labels (`has_parts: 0` for all; the released training skips its part loss).
  `part_pixels_outside_persons` counts the part pixels outside their person's COCO mask, kept.
- `mask`, the project's earlier reading: `dp_masks` resampled at pixel centres into the (fractional) box
  (`place_in_box`) and *kept only inside the COCO mask* (the pixels outside are dropped and counted:
  `part_pixels_outside_persons`); masks are COCO's; persons without `dp_masks` get `has_parts: 0`.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco
from personlab_tf.data.coco_masks import decode_mask
from personlab_tf.tasks.parts.converters.common import BAD_DP_MASKS, Conversion, exclusive_masks

DENSEPOSE_PARTS = 14
DENSEPOSE_GRID = 256
DENSEPOSE_BOX = "box"                # DensePose readings (module docstring): the released code's, the default
DENSEPOSE_MASK = "mask"              # the project's earlier one: parts kept only inside the COCO mask
DENSEPOSE_READINGS = (DENSEPOSE_BOX, DENSEPOSE_MASK)


def densepose_part_grid(dp_masks: Any) -> Optional[np.ndarray]:
    """The 256 x 256 part classes of `dp_masks` (14 RLEs or falsy entries; part i + 1 where mask i, later
    masks over earlier ones), or None when the field is malformed."""
    if not isinstance(dp_masks, list) or len(dp_masks) != DENSEPOSE_PARTS:
        return None
    grid = np.zeros((DENSEPOSE_GRID, DENSEPOSE_GRID), np.uint8)
    for index, encoded in enumerate(dp_masks):
        if not encoded:
            continue
        try:
            if list(encoded["size"]) != [DENSEPOSE_GRID, DENSEPOSE_GRID]:
                return None
            counts = encoded["counts"]
            mask = mask_utils.decode({"size": [DENSEPOSE_GRID, DENSEPOSE_GRID],
                                      "counts": counts.encode("ascii") if isinstance(counts, str) else counts})
        except (TypeError, KeyError, ValueError):
            return None
        grid[mask > 0] = index + 1
    return grid


def place_in_box(grid: np.ndarray, bbox: Sequence[float], height: int, width: int) -> np.ndarray:
    """Resamples a part grid (the person's box at 256 x 256) into an image-size map, nearest neighbour.

    Image pixel (x, y) inside the box [x0, x0 + w) x [y0, y0 + h) (pixel-corner COCO box) reads grid cell
    floor((x + 0.5 - x0) 256 / w), floor((y + 0.5 - y0) 256 / h); pixels outside the box are 0.
    """
    x0, y0, w, h = (float(v) for v in bbox)
    out = np.zeros((height, width), np.uint8)
    if w <= 0 or h <= 0:
        return out
    columns = np.arange(max(int(np.floor(x0)), 0), min(int(np.ceil(x0 + w)), width))
    rows = np.arange(max(int(np.floor(y0)), 0), min(int(np.ceil(y0 + h)), height))
    source_columns = np.floor((columns + 0.5 - x0) * grid.shape[1] / w).astype(int)
    source_rows = np.floor((rows + 0.5 - y0) * grid.shape[0] / h).astype(int)
    keep_columns = (source_columns >= 0) & (source_columns < grid.shape[1])
    keep_rows = (source_rows >= 0) & (source_rows < grid.shape[0])
    columns, source_columns = columns[keep_columns], source_columns[keep_columns]
    rows, source_rows = rows[keep_rows], source_rows[keep_rows]
    out[np.ix_(rows, columns)] = grid[np.ix_(source_rows, source_columns)]
    return out


def nearest_indices(target: int, source: int) -> np.ndarray:
    """The source index of each of `target` cells when `source` cells are resized to `target` by OpenCV's
    nearest neighbour (cv2.INTER_NEAREST, the released code's resize): floor(i * (1 / (target / source))) in
    double precision, at most source - 1 (top-left aligned, not pixel centres)."""
    scale = 1.0 / (target / source)
    return np.minimum(np.floor(np.arange(target) * scale).astype(np.int64), source - 1)


def place_in_integer_box(grid: np.ndarray, bbox: Sequence[float], height: int, width: int) -> np.ndarray:
    """A part grid placed into an image-size map as the released code does (reading `box`).

    The box [x0, y0, w, h] is truncated to integers, each number on its own: columns int(x0) ...
    min(int(x0) + int(w), width) - 1, rows likewise; the whole grid is resized (`nearest_indices`) to that
    block, so a box reaching past the right or bottom border squeezes the grid into the part inside the image.
    Pixels outside the block are 0; so is everything when the block is empty.
    """
    x0, y0, w, h = (int(float(v)) for v in bbox)
    x1, y1 = min(x0 + w, width), min(y0 + h, height)
    out = np.zeros((height, width), np.uint8)
    if x0 >= x1 or y0 >= y1:
        return out
    block = grid[np.ix_(nearest_indices(y1 - y0, grid.shape[0]), nearest_indices(x1 - x0, grid.shape[1]))]
    # COCO boxes start inside the image; a negative start (not in the data) loses its part outside.
    top, left = max(-y0, 0), max(-x0, 0)
    out[y0 + top:y1, x0 + left:x1] = block[top:, left:]
    return out


def box_reading(coco_masks: np.ndarray,
                part_maps: Sequence[Optional[np.ndarray]]) -> Tuple[np.ndarray, np.ndarray, int]:
    """An image's part map and person masks under DensePose's `box` reading (module docstring).

    Args:
      coco_masks: [N, H, W] bool, the COCO masks of the image's part-labelled persons in the dataset's order;
        part_maps: per person its `place_in_integer_box` map [H, W] uint8, or None (no `dp_masks`).

    Returns:
      (part map [H, W] uint8: each person's part pixels, a later person's over an earlier one's;
       masks [N, H, W] bool: each person's part pixels left in the map plus the pixels of its COCO mask that
       no part pixel holds, the last person winning among those; the number of pixels the persons lost to
       others, counted on COCO mask | own part pixels).
    """
    coco_masks = np.asarray(coco_masks, bool)
    labels = np.zeros(coco_masks.shape[1:], np.uint8)
    owner = np.full(coco_masks.shape[1:], -1)
    own_parts = np.zeros_like(coco_masks)
    for index, placed in enumerate(part_maps):
        if placed is not None:
            own_parts[index] = placed > 0
            labels[own_parts[index]] = placed[own_parts[index]]
            owner[own_parts[index]] = index
    rest, _ = exclusive_masks(coco_masks & (labels == 0))
    masks = rest | (owner[np.newaxis] == np.arange(len(coco_masks))[:, np.newaxis, np.newaxis])
    return labels, masks, int((coco_masks | own_parts).sum() - masks.sum())


def convert_densepose(annotations_path: str, output_dir: str, reading: str = DENSEPOSE_BOX) -> Dict:
    """DensePose-COCO JSON -> the project's layout (the images stay where the JSON's file names say).

    The JSON is validated as any COCO JSON (data/coco.py) of skeleton coco17; each valid person is written
    with COCO's area, box and keypoints. Its mask and parts follow `reading` (module docstring): `box`, the
    released code's (its `dp_masks` placed in its integer box, not clipped; its mask its part pixels plus the
    free pixels of its COCO mask; a person without `dp_masks` is background), or `mask` (its `dp_masks` kept
    inside its COCO mask; a person without `dp_masks` has no parts).

    Returns:
      the summary dict.

    Raises:
      ValueError: `reading` is not one of DENSEPOSE_READINGS.
    """
    if reading not in DENSEPOSE_READINGS:
        raise ValueError(f"DensePose reading {reading!r} is not one of {DENSEPOSE_READINGS}")
    place = place_in_integer_box if reading == DENSEPOSE_BOX else place_in_box
    data = coco.load_json(annotations_path, "DensePose annotations")
    conversion = Conversion(output_dir, skeleton_lib.COCO17)
    dataset = coco.parse_dataset(data, annotations_path, conversion.problems, skeleton_lib.COCO17)
    entries = {}   # the first entry of each id: the one data/coco.py validated
    for entry in data["annotations"]:
        if isinstance(entry, dict) and isinstance(entry.get("id"), int):
            entries.setdefault(entry["id"], entry)
    for info in dataset.images:
        persons = dataset.persons[info.image_id]
        masks = np.array([decode_mask(p.segmentation, info.height, info.width) for p in persons],
                         bool).reshape(len(persons), info.height, info.width)
        parts, malformed = {}, set()
        for index, person in enumerate(persons):
            entry = entries.get(person.annotation_id, {})
            if person.is_crowd or "dp_masks" not in entry:
                continue
            grid = densepose_part_grid(entry["dp_masks"])
            if grid is None:
                conversion.problems.warn(BAD_DP_MASKS, f"{annotations_path}: annotation id {person.annotation_id}: "
                                                       f"dp_masks is not {DENSEPOSE_PARTS} RLEs of {DENSEPOSE_GRID} x "
                                                       f"{DENSEPOSE_GRID}; person kept without parts")
                malformed.add(index)
                continue
            placed = place(grid, entry["bbox"], info.height, info.width)
            conversion.outside_pixels += int(np.count_nonzero((placed > 0) & ~masks[index]))
            parts[index] = placed
        labels = np.zeros((info.height, info.width), np.uint8)
        if reading == DENSEPOSE_MASK:
            labelled = sorted(parts)
            exclusive, moved = exclusive_masks(masks[labelled])
            for index, mask in zip(labelled, exclusive):
                masks[index] = mask
                labels[mask] = parts[index][mask]
        else:
            # Without any person's dp_masks the image has no part labels; with them, every person but
            # crowds and malformed dp_masks is labelled (one without dp_masks as background).
            labelled = [index for index, person in enumerate(persons)
                        if parts and not person.is_crowd and index not in malformed]
            labels, masks[labelled], moved = box_reading(masks[labelled], [parts.get(index) for index in labelled])
        conversion.overlap_pixels += moved
        conversion.add_image(info.image_id, info.file_name, labels, [
            conversion.person(person.annotation_id, info.image_id, mask, person.keypoints,
                              has_parts=index in labelled, is_crowd=person.is_crowd, area=person.area,
                              bbox=person.bbox)
            for index, (person, mask) in enumerate(zip(persons, masks))])
    return conversion.finish("DensePose-COCO parts")
