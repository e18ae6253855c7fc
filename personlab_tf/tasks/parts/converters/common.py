"""What the part-dataset converters share: their output (`Conversion`: each image's part map, then the COCO
JSON), person annotations, disjoint masks, readers of images, label PNGs and list files, and the problems counted.

Bad input never raises (except an unusable annotations file, list, directory or missing scipy:
coco.AnnotationError); each problem is warned about in one line naming the file (and field), and
counted by kind (DensePose's JSON also gets data/coco.py's checks and data/coco_problems.py's kinds):

| kind | action |
| --- | --- |
| missing_image | the image file cannot be read or decoded -> image skipped |
| missing_part_file | a person's parsing PNG, the image's part PNG or its PASCAL-Part .mat is absent or does not decode -> person (image) skipped |
| size_mismatch | a label PNG's size differs from the image's -> person (image) skipped |
| empty_person | MHP: a parsing PNG labels no pixel -> person skipped (MHP's evaluation skips it too) |
| bad_part_annotation | PASCAL-Part .mat without the documented fields (the message names the field) -> image skipped |
| bad_dp_masks | `dp_masks` is not 14 RLEs of 256 x 256 -> the person keeps its COCO mask, `has_parts: 0` |
| missing_pose | MHP: no readable pose file or no entry for the person; PASCAL: no joint file for an image with persons, or fewer rows than person objects -> person(s) without keypoints |
| bad_keypoints | PASCAL: a joint file that does not load or whose `joints` is not P x 14 x 3 numbers -> the image's persons without keypoints; more rows than person objects -> the first ones taken |
"""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from personlab_tf.data import coco, coco_format, coco_problems, part_labels
from personlab_tf.skeleton import Skeleton

MISSING_IMAGE = "missing_image"
MISSING_PART_FILE = "missing_part_file"
SIZE_MISMATCH = "size_mismatch"
EMPTY_PERSON = "empty_person"
BAD_PART_ANNOTATION = "bad_part_annotation"
BAD_DP_MASKS = "bad_dp_masks"
MISSING_POSE = "missing_pose"
BAD_KEYPOINTS = "bad_keypoints"
PERSON_ID_STRIDE = 1000              # annotation id = image id * 1000 + person number


def rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a [H, W] bool mask, counts as a str (JSON-ready)."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def box(mask: np.ndarray) -> List[int]:
    """COCO box [x, y, w, h] of a mask's pixels ([0, 0, 0, 0] when empty)."""
    rows, columns = np.nonzero(mask)
    if not len(rows):
        return [0, 0, 0, 0]
    return [int(columns.min()), int(rows.min()), int(columns.max() - columns.min() + 1), int(rows.max() - rows.min() + 1)]


def person_annotation(annotation_id: int, image_id: int, mask: np.ndarray, keypoints: np.ndarray,
                      category_id: int, has_parts: bool = True, is_crowd: bool = False,
                      area: Optional[float] = None, bbox: Optional[Sequence[float]] = None) -> dict:
    """A COCO person annotation of category `category_id` (the skeleton's) from a mask [H, W] bool and
    keypoints [K, 3] (x, y, v); area and bbox are the mask's unless given."""
    keypoints = np.asarray(keypoints, np.float64)
    return {"id": int(annotation_id), "image_id": int(image_id), "category_id": int(category_id),
            "iscrowd": int(is_crowd), "segmentation": rle(mask),
            "area": float(area) if area is not None else int(mask.sum()),
            "bbox": [round(float(v), 2) for v in bbox] if bbox is not None else box(mask),
            "keypoints": [round(float(v), 2) for v in keypoints.ravel()],
            "num_keypoints": int(np.count_nonzero(keypoints[:, 2])), "has_parts": int(has_parts)}


def exclusive_masks(masks: np.ndarray) -> Tuple[np.ndarray, int]:
    """The masks [N, H, W] bool made disjoint, each pixel kept by the last mask holding it.

    Returns:
      (masks [N, H, W] bool, number of pixels taken from earlier masks).
    """
    masks = np.asarray(masks, bool)
    result = masks.copy()
    claimed = np.zeros(masks.shape[1:], bool)
    for index in range(len(masks) - 1, -1, -1):
        result[index] &= ~claimed
        claimed |= masks[index]
    return result, int(masks.sum() - result.sum())


def read_label_png(path: str) -> Optional[np.ndarray]:
    """The [H, W] uint8 label values of a PNG (palette indices, grey, or the first channel of RGB), or None."""
    try:
        with Image.open(path) as picture:
            picture.load()
            values = np.asarray(picture)
    except Exception:  # PIL raises many types (OSError, SyntaxError, ...)
        return None
    return (values[..., 0] if values.ndim == 3 else values).astype(np.uint8)


def read_sized_labels(path: str, size: Tuple[int, int],
                      unreadable: str) -> Tuple[Optional[np.ndarray], Optional[Tuple[str, str]]]:
    """`read_label_png` of a label map that must have the image's `size` (height, width).

    Returns:
      (values, None), or (None, (problem kind, reason)): MISSING_PART_FILE with `unreadable` when it does not
      read, SIZE_MISMATCH naming both sizes when it has another size.
    """
    values = read_label_png(path)
    if values is None:
        return None, (MISSING_PART_FILE, unreadable)
    if values.shape != size:
        return None, (SIZE_MISMATCH, f"is {values.shape[1]}x{values.shape[0]}, the image {size[1]}x{size[0]}")
    return values, None


def image_size(path: str) -> Optional[Tuple[int, int]]:
    """(height, width) of a readable image file, or None."""
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture.size[1], picture.size[0]
    except Exception:  # PIL raises many types
        return None


class Conversion:
    """One conversion's output: writes each image's part map at once, the JSON at the end (`finish`), whose
    category is `skeleton`'s."""

    def __init__(self, output_dir: str, skeleton: Skeleton):
        self.output_dir = output_dir
        self.skeleton = skeleton
        self.images, self.annotations = [], []
        self.problems = coco_problems.ProblemCounter()
        self.overlap_pixels = self.outside_pixels = 0

    def no_keypoints(self) -> np.ndarray:
        """[K, 3] zeros: the keypoints of a person without any."""
        return np.zeros((self.skeleton.num_keypoints, 3))

    def person(self, annotation_id: int, image_id: int, mask: np.ndarray, keypoints: np.ndarray,
               **fields: Any) -> dict:
        """`person_annotation` of the skeleton's category; keypoints [K, 3] of the skeleton."""
        keypoints = np.asarray(keypoints, np.float64)
        if keypoints.shape != (self.skeleton.num_keypoints, 3):
            raise ValueError(f"keypoints {keypoints.shape} do not fit {self.skeleton.describe()}")
        return person_annotation(annotation_id, image_id, mask, keypoints, self.skeleton.category_id, **fields)

    def add_image(self, image_id: int, file_name: str, labels: np.ndarray, annotations: List[dict]) -> None:
        """Adds an image entry and its annotations, and writes its part map [H, W] uint8."""
        height, width = labels.shape
        self.images.append({"id": int(image_id), "file_name": file_name, "height": height, "width": width})
        self.annotations.extend(annotations)
        part_labels.write_png(coco_format.part_labels_path(
            os.path.join(self.output_dir, coco_format.PART_LABELS_DIR), file_name), labels)

    def finish(self, description: str) -> Dict:
        """Writes `person_keypoints.json` (data/coco_format.py); returns the summary (the script's last line)."""
        coco_format.write_annotations(self.output_dir, self.images, self.annotations, description, self.skeleton)
        return {"images": len(self.images), "persons": len(self.annotations),
                "persons_with_keypoints": sum(a["num_keypoints"] > 0 for a in self.annotations),
                "persons_with_parts": sum(a["has_parts"] for a in self.annotations),
                "overlap_pixels": self.overlap_pixels, "part_pixels_outside_persons": self.outside_pixels,
                "warnings": dict(sorted(self.problems.warnings.items()))}


def read_list(path: str) -> List[str]:
    """The non-empty lines of a list file, stripped."""
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise coco.AnnotationError(f"cannot read the list {path}: {reason}") from None
