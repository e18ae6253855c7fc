"""Part label maps of instance-aware part parsing: one PNG per image, read next to the COCO records.

The layout every part-parsing dataset is converted to (scripts/convert_parts_dataset.py) and the
synthetic generator writes: a COCO person-keypoints JSON, its images, and a directory of part label maps
`<part_labels_dir>/<image file stem>.png`, single channel (PNG mode L or P), the pixel value being the
part class of a part set (tasks/parts/part_sets.py) (0 background), at the image's size. The parts of
a person are the map restricted to the person's mask; an annotation's `"has_parts": 0` says the map does
not label that person (data/coco.py).

Bad part labels never stop a conversion; the image is written without part labels and counted:

| kind                      | when                                                               |
| ------------------------- | ------------------------------------------------------------------ |
| missing_part_labels       | the PNG does not exist or cannot be read                           |
| corrupt_part_labels       | it does not decode, is not single channel, or its size differs     |
| part_label_out_of_range   | a pixel value is not a class of the part set                       |
"""

import dataclasses
import io
import os
from typing import Iterable, Iterator, Tuple, Union

import numpy as np
from PIL import Image

from personlab_tf.data import coco_format, coco_problems, coco_records

MISSING_PART_LABELS = "missing_part_labels"
CORRUPT_PART_LABELS = "corrupt_part_labels"
PART_LABEL_OUT_OF_RANGE = "part_label_out_of_range"

_SINGLE_CHANNEL_MODES = ("L", "P")


def write_png(path: str, labels: np.ndarray) -> None:
    """Writes a [H, W] uint8 label map as a mode-L PNG, creating the directory."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(np.asarray(labels, np.uint8)).save(path, format="PNG")   # 2-D uint8: mode L


def read_part_labels(path: str, height: int, width: int, num_classes: int) -> Union[np.ndarray, Tuple[str, str]]:
    """The [H, W] uint8 part map of a PNG, or (kind, reason) when it is unusable (module docstring)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        return MISSING_PART_LABELS, f"cannot read {path} ({error.strerror or error})"
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            mode, size = picture.mode, picture.size
            labels = np.asarray(picture)
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ...)
        return CORRUPT_PART_LABELS, f"{path} does not decode ({type(error).__name__}: {error})"
    if mode not in _SINGLE_CHANNEL_MODES:
        return CORRUPT_PART_LABELS, f"{path} has mode {mode}, not one of {_SINGLE_CHANNEL_MODES}"
    if size != (width, height):
        return CORRUPT_PART_LABELS, f"{path} is {size[0]}x{size[1]}, the image is {width}x{height}"
    if labels.size and int(labels.max()) >= num_classes:
        return PART_LABEL_OUT_OF_RANGE, f"{path} has class {int(labels.max())} >= {num_classes} classes"
    return labels.astype(np.uint8)


def attach_part_labels(records: Iterable[coco_records.ImageRecord], part_labels_dir: str, num_classes: int,
                       problems: coco_problems.ProblemCounter) -> Iterator[coco_records.ImageRecord]:
    """The `coco_records.ImageRecord`s with their part maps; an image whose map is unusable keeps none.

    Args:
      records: iterable of `coco_records.ImageRecord` (data.coco_records.iter_image_records).
      part_labels_dir: directory of `<image file stem>.png` maps.
      num_classes: number of classes of the part set; larger values are out of range.
      problems: `coco_problems.ProblemCounter`; each unusable map is warned about, naming the file, and counted.

    Yields:
      `coco_records.ImageRecord` with `part_labels` set, or with `has_parts` all False.
    """
    for record in records:
        result = read_part_labels(coco_format.part_labels_path(part_labels_dir, record.file_name), record.height, record.width,
                                  num_classes)
        if isinstance(result, tuple):
            kind, reason = result
            problems.warn(kind, f"image id {record.image_id} ({record.file_name}): {reason}; written without parts")
            yield dataclasses.replace(record, has_parts=np.zeros_like(record.has_parts))
        else:
            yield dataclasses.replace(record, part_labels=result)
