"""One verified `ImageRecord` per image of validated COCO annotations (data/coco.py), read one at a time.

`iter_image_records` reads each image's file, checks that it decodes completely as a JPEG or PNG of the size
the JSON says (otherwise the image is skipped, warned about and counted: missing_image, corrupt_image,
unsupported_image_format or size_mismatch, data/coco_problems.py), and yields it with all its person
annotations (crowd regions included), their masks decoded (data/coco_masks.py) for that image only.
Coordinates as in data/coco.py: pixel centres at integer coordinates, points in (x, y) order.
"""

import dataclasses
import io
import os
from typing import Iterator

import numpy as np
from PIL import Image

from personlab_tf.data.coco import AnnotationError, CocoPersons
from personlab_tf.data.coco_masks import decode_mask
from personlab_tf.data.coco_problems import (CORRUPT_IMAGE, MISSING_IMAGE, SIZE_MISMATCH, UNSUPPORTED_IMAGE_FORMAT,
                                             ProblemCounter)

_IMAGE_FORMATS = ("JPEG", "PNG")


@dataclasses.dataclass
class ImageRecord:
    """One image and all its person annotations (crowd regions included), N >= 1 (N >= 0 for evaluation).

    Attributes:
      image_id: COCO image id.
      file_name: file name inside the images directory.
      height, width: image size in pixels.
      encoded: the image file bytes as on disk (JPEG or PNG).
      keypoints: [N, K, 3] float32 (x, y, v), pixel centres at integer coordinates; v > 0 is labelled.
      masks: [N, H, W] uint8 in {0, 1}.
      is_crowd: [N] bool.
      annotated: [N] bool, at least one labelled (possibly imputed) keypoint.
      imputed: [N] bool, keypoints come from the imputed keypoints file.
      annotation_ids: [N] int64 COCO annotation ids.
      areas: [N] float32 COCO areas.
      bboxes: [N, 4] float32 COCO boxes (x, y, width, height).
      has_parts: [N] bool, non-crowd persons whose annotation says the part labels cover them (all
        False once `part_labels` turns out to be missing).
      skeleton: name of the skeleton the keypoints follow (personlab_tf/skeleton.py).
      part_labels: [H, W] uint8 part class map, or None (data/part_labels.py attaches it).
    """

    image_id: int
    file_name: str
    height: int
    width: int
    encoded: bytes
    keypoints: np.ndarray
    masks: np.ndarray
    is_crowd: np.ndarray
    annotated: np.ndarray
    imputed: np.ndarray
    annotation_ids: np.ndarray
    areas: np.ndarray
    bboxes: np.ndarray
    has_parts: np.ndarray
    skeleton: str
    part_labels: np.ndarray = None


def _image_problem(data, info):
    """(kind, reason) if the encoded image is unusable, else None; decodes it fully to check.

    Relies on PIL's default `ImageFile.LOAD_TRUNCATED_IMAGES = False` to reject truncated files.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image_format, size = image.format, image.size
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, DecompressionBombError...)
        return CORRUPT_IMAGE, f"does not decode ({type(error).__name__}: {error})"
    if image_format not in _IMAGE_FORMATS:
        return UNSUPPORTED_IMAGE_FORMAT, f"is {image_format}, not one of {_IMAGE_FORMATS}"
    if size != (info.width, info.height):
        return SIZE_MISMATCH, f"is {size[0]}x{size[1]}, the annotations say {info.width}x{info.height}"
    return None


def _read_image(info, images_dir, problems):
    """The verified file bytes of an image, or None after reporting why it is skipped."""
    path = os.path.join(images_dir, info.file_name)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        reason = error.strerror or error
        problems.skip_image(MISSING_IMAGE, f"{info.describe()}: cannot read {path} ({reason}); image skipped")
        return None
    problem = _image_problem(data, info)
    if problem:
        kind, reason = problem
        problems.skip_image(kind, f"{info.describe()}: {path} {reason}; image skipped")
        return None
    return data


def _make_record(info, encoded, persons, skeleton):
    """An `ImageRecord` from an image's verified bytes and its N >= 0 persons."""
    count = len(persons)
    return ImageRecord(
        image_id=info.image_id,
        file_name=info.file_name,
        height=info.height,
        width=info.width,
        encoded=encoded,
        keypoints=np.array([p.keypoints for p in persons], np.float32).reshape(count, skeleton.num_keypoints, 3),
        masks=np.array([decode_mask(p.segmentation, info.height, info.width) for p in persons],
                       np.uint8).reshape(count, info.height, info.width),
        is_crowd=np.array([p.is_crowd for p in persons], bool),
        annotated=np.array([p.has_labelled_keypoint() for p in persons], bool),
        imputed=np.array([p.imputed for p in persons], bool),
        annotation_ids=np.array([p.annotation_id for p in persons], np.int64),
        areas=np.array([p.area for p in persons], np.float32),
        bboxes=np.array([p.bbox for p in persons], np.float32).reshape(count, 4),
        has_parts=np.array([p.has_parts and not p.is_crowd for p in persons], bool),
        skeleton=skeleton.name,
    )


def _records(dataset, images_dir, problems, with_empty_images):
    """The generator behind `iter_image_records`."""
    for info in dataset.images:
        persons = dataset.persons[info.image_id]
        if not persons:
            problems.images_without_people += 1
            if not with_empty_images:
                continue
        encoded = _read_image(info, images_dir, problems)
        if encoded is not None:
            yield _make_record(info, encoded, persons, dataset.skeleton)


def iter_image_records(dataset: CocoPersons, images_dir: str, problems: ProblemCounter,
                       with_empty_images: bool = False) -> Iterator[ImageRecord]:
    """One `ImageRecord` per readable image with >= 1 person, in JSON order, decoded one at a time.

    Args:
      dataset: `CocoPersons` from `load_dataset`.
      images_dir: directory holding the image files.
      problems: `ProblemCounter`; also counts images without people.
      with_empty_images: also yield the images without people (N = 0), as evaluation needs them (COCO
        counts their false positives).

    Returns:
      An iterator of `ImageRecord`.

    Raises:
      AnnotationError: `images_dir` is not a directory (raised here, before any record is read).
    """
    if not os.path.isdir(images_dir):
        raise AnnotationError(f"images directory {images_dir} does not exist")
    return _records(dataset, images_dir, problems, with_empty_images)
