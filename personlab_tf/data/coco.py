"""Reading and validating COCO person-keypoint annotations.

`load_dataset` parses and checks the annotations JSON (and optional imputed keypoints) up front
(`parse_dataset` checks a JSON already parsed) into `CocoPersons`; data/coco_records.py then reads, verifies
and yields one `ImageRecord` per image that has at least one person annotation (crowd regions included),
decoding masks (data/coco_masks.py) for that image only.

Coordinates: pixel centres at integer coordinates, x to the right, y down, points in (x, y) order. COCO
keypoints already follow this convention, so pixel (row i, column j) covers [j - 0.5, j + 0.5] x
[i - 0.5, i + 0.5] and a point lies inside a W x H image when -0.5 <= x <= W - 0.5 and
-0.5 <= y <= H - 0.5.

Bad input never raises (except an unusable annotations file, imputed keypoints file or images
directory: `AnnotationError`). Each problem is logged as a warning naming the item and counted by kind
in a `ProblemCounter` (data/coco_problems.py, whose table says what happens to the item).

An annotation may carry `"has_parts": 0 | 1` (default 1): whether the image's part label map
(personlab_tf/data/part_labels.py) labels that person's pixels; the part-parsing converters write it.
"""

import dataclasses
import json
import math
from typing import Any, Optional

import numpy as np
from pycocotools import mask as mask_utils

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data.coco_problems import (DEGENERATE_POLYGON, EMPTY_SEGMENTATION, IMPUTED_FOR_CROWD,
                                             IMPUTED_FOR_LABELLED_PERSON, IMPUTED_MALFORMED, IMPUTED_UNKNOWN_ID,
                                             KEYPOINT_OUTSIDE_IMAGE, MALFORMED_ANNOTATION, MALFORMED_IMAGE,
                                             NON_PERSON_CATEGORY, ProblemCounter)

# Field names of the COCO JSON and of the imputed keypoints JSON.
_IMAGES = "images"
_ANNOTATIONS = "annotations"
_ID = "id"
_FILE_NAME = "file_name"
_HEIGHT = "height"
_WIDTH = "width"
_IMAGE_ID = "image_id"
_CATEGORY_ID = "category_id"
_IS_CROWD = "iscrowd"
_KEYPOINTS = "keypoints"
_SEGMENTATION = "segmentation"
_AREA = "area"
_BBOX = "bbox"
_RLE_SIZE = "size"
_RLE_COUNTS = "counts"
_HAS_PARTS = "has_parts"

_VISIBILITIES = (0, 1, 2)


class AnnotationError(Exception):
    """An input that cannot be used at all: annotations JSON, imputed keypoints JSON or images dir."""


class _Malformed(ValueError):
    """Internal: a JSON item fails validation; the message says why."""


@dataclasses.dataclass(frozen=True)
class _ImageInfo:
    """One valid entry of the `images` list."""

    image_id: int
    file_name: str
    height: int
    width: int

    def describe(self):
        """Names the image in warnings."""
        return f"image id {self.image_id} ({self.file_name})"


@dataclasses.dataclass
class _Person:
    """One validated person annotation, mask not yet decoded.

    `keypoints` is [K, 3] float32 (x, y, v); `segmentation` is a list of [2P] float64 polygons
    (x0, y0, x1, y1, ...) or a compressed RLE dict of the image size; `source` is the JSON entry it was read
    from (`ground_truth` keeps its values where nothing was repaired).
    """

    annotation_id: int
    image_id: int
    is_crowd: bool
    keypoints: np.ndarray
    area: float
    bbox: np.ndarray
    segmentation: object
    source: dict
    imputed: bool = False
    has_parts: bool = True

    def has_labelled_keypoint(self):
        """True if at least one keypoint has v > 0."""
        return bool(np.any(self.keypoints[:, 2] > 0))


@dataclasses.dataclass
class CocoPersons:
    """Validated annotations: `images` in JSON order, `persons[image_id]` in JSON order, and the skeleton
    their keypoints follow."""

    images: list
    persons: dict
    skeleton: skeleton_lib.Skeleton


def load_json(path: str, what: str) -> Any:
    """Parses a JSON file, raising `AnnotationError` naming the file if that is impossible."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except OSError as error:
        raise AnnotationError(f"cannot read {what} file {path}: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise AnnotationError(f"{what} file {path} is not valid JSON: {error}") from None


def _short(value):
    """repr of `value`, cut to a length that fits in a log line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field(entry, key):
    """entry[key] of a JSON object, or `_Malformed`."""
    if not isinstance(entry, dict):
        raise _Malformed(f"not a JSON object: {_short(entry)}")
    if key not in entry:
        raise _Malformed(f"missing '{key}'")
    return entry[key]


def _integer(value, what):
    """A JSON integer (not a bool) that fits in int64, or `_Malformed`."""
    if isinstance(value, bool) or not isinstance(value, int) or not -2**63 <= value < 2**63:
        raise _Malformed(f"{what} is not an int64 integer: {_short(value)}")
    return value


def _number(value, what):
    """A finite JSON number (not a bool) as float, or `_Malformed`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            if math.isfinite(value):
                return float(value)
        except OverflowError:  # an integer beyond the float range
            pass
    raise _Malformed(f"{what} is not a finite number: {_short(value)}")


def _numbers(value, what, length=None):
    """A JSON list of finite numbers (of `length` if given) as a float64 array, or `_Malformed`."""
    if not isinstance(value, list) or (length is not None and len(value) != length):
        expected = "a list" if length is None else f"a list of {length} numbers"
        raise _Malformed(f"{what} is not {expected}: {_short(value)}")
    return np.array([_number(v, f"a value of {what}") for v in value], np.float64)


def _keypoints(value, num_keypoints):
    """COCO keypoints (K * 3 numbers, v in {0, 1, 2}) as [K, 3] float32 (x, y, v), or `_Malformed`."""
    array = _numbers(value, "keypoints", 3 * num_keypoints)
    keypoints = array.reshape(num_keypoints, 3).astype(np.float32)
    if not np.all(np.isin(keypoints[:, 2], _VISIBILITIES)):
        raise _Malformed(f"keypoint visibility not in {_VISIBILITIES}: {_short(value)}")
    return keypoints


def _parse_image(entry):
    """An `images` entry as `_ImageInfo`, or `_Malformed`."""
    file_name = _field(entry, _FILE_NAME)
    if not isinstance(file_name, str) or not file_name:
        raise _Malformed(f"file_name is not a non-empty string: {_short(file_name)}")
    info = _ImageInfo(
        image_id=_integer(_field(entry, _ID), "id"),
        file_name=file_name,
        height=_integer(_field(entry, _HEIGHT), "height"),
        width=_integer(_field(entry, _WIDTH), "width"),
    )
    if info.height <= 0 or info.width <= 0:
        raise _Malformed(f"size {info.width}x{info.height} is not positive")
    return info


def _parse_images(entries, problems):
    """The `images` list as {image id: `_ImageInfo`} in JSON order; bad entries are skipped."""
    images = {}
    for index, entry in enumerate(entries):
        try:
            info = _parse_image(entry)
        except _Malformed as error:
            problems.skip_image(MALFORMED_IMAGE, f"images[{index}]: {error}; image skipped")
            continue
        if info.image_id in images:
            problems.skip_image(MALFORMED_IMAGE, f"{info.describe()}: duplicate image id; entry skipped")
            continue
        images[info.image_id] = info
    return images


def _compressed_rle_counts(text):
    """Run lengths of a compressed COCO RLE string (the format of pycocotools' rleToString)."""
    runs = []
    value, shift = 0, 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            raise _Malformed(f"RLE string has an invalid character {char!r}")
        value |= (code & 0x1F) << shift
        shift += 5
        if code & 0x20:
            continue
        if code & 0x10:
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
        value, shift = 0, 0
    if shift:
        raise _Malformed("RLE string ends inside a number")
    return runs


def _rle(value, info):
    """An RLE segmentation (compressed or not) of the image size as a compressed RLE dict."""
    size = _field(value, _RLE_SIZE)
    if size != [info.height, info.width]:
        raise _Malformed(f"RLE size {_short(size)} differs from the image size [{info.height}, {info.width}]")
    counts = _field(value, _RLE_COUNTS)
    if isinstance(counts, str):
        runs = _compressed_rle_counts(counts)
    elif isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
        runs = counts
    else:
        raise _Malformed(f"RLE counts are neither a string nor a list of integers: {_short(counts)}")
    if any(run < 0 for run in runs) or sum(runs) != info.height * info.width:
        raise _Malformed(f"RLE runs are negative or do not sum to {info.height} * {info.width}")
    size = [info.height, info.width]
    if isinstance(counts, str):
        return {_RLE_SIZE: size, _RLE_COUNTS: counts.encode("ascii")}
    return mask_utils.frPyObjects({_RLE_SIZE: size, _RLE_COUNTS: runs}, info.height, info.width)


def _segmentation(value, info):
    """A validated segmentation: list of float64 polygons or a compressed RLE dict, or `_Malformed`."""
    if isinstance(value, list):
        return [_numbers(polygon, "polygon") for polygon in value]
    if isinstance(value, dict):
        return _rle(value, info)
    raise _Malformed(f"segmentation is neither polygons nor RLE: {_short(value)}")


def _box(value):
    """A COCO box (x, y, width, height) with width, height >= 0 as [4] float32, or `_Malformed`."""
    box = _numbers(value, "bbox", 4)
    if box[2] < 0 or box[3] < 0:
        raise _Malformed(f"bbox has a negative size: {_short(value)}")
    return box.astype(np.float32)


def _flag(value, what):
    """A JSON 0 / 1 (or bool) as bool, or `_Malformed`."""
    if value not in (0, 1):
        raise _Malformed(f"{what} is not 0 or 1: {_short(value)}")
    return bool(value)


def _parse_person(entry, images, num_keypoints):
    """A person annotation as `_Person` (polygons not yet checked), or `_Malformed`."""
    image_id = _integer(_field(entry, _IMAGE_ID), "image_id")
    if image_id not in images:
        raise _Malformed(f"unknown image id {image_id}")
    is_crowd = _flag(_field(entry, _IS_CROWD), _IS_CROWD)
    area = _number(_field(entry, _AREA), "area")
    if area < 0:
        raise _Malformed(f"area is negative: {area}")
    return _Person(
        annotation_id=_integer(_field(entry, _ID), "id"),
        image_id=image_id,
        is_crowd=is_crowd,
        keypoints=_keypoints(_field(entry, _KEYPOINTS), num_keypoints),
        area=area,
        bbox=_box(_field(entry, _BBOX)),
        segmentation=_segmentation(_field(entry, _SEGMENTATION), images[image_id]),
        has_parts=_flag(entry.get(_HAS_PARTS, 1), _HAS_PARTS),
        source=entry,
    )


def _polygon_problem(polygon):
    """Why a [2P] polygon cannot be rasterised (fewer than 3 points, odd length, zero area), or None."""
    if len(polygon) % 2:
        return f"odd number of coordinates ({len(polygon)})"
    if len(polygon) < 6:
        return f"{len(polygon) // 2} points"
    x, y = polygon[0::2], polygon[1::2]
    doubled_area = np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))
    return "zero area" if math.isclose(doubled_area, 0.0, abs_tol=1e-6) else None


def points_inside_image(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """[...] bool: points [..., 2] (x, y) lie in the image, -0.5 <= x <= W - 0.5 and -0.5 <= y <= H - 0.5
    (pixel centres at integer coordinates)."""
    x, y = points[..., 0], points[..., 1]
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def _drop_outside_keypoints(keypoints, info, where, problems, names):
    """Sets labelled keypoints outside the image to (0, 0, 0), in place.

    Args:
      keypoints: [K, 3] float32 (x, y, v), pixel centres at integer coordinates.
      info: the `_ImageInfo`; inside means -0.5 <= x <= W - 0.5 and -0.5 <= y <= H - 0.5.
      where: names the annotation in warnings.
      problems: `ProblemCounter`.
      names: the K keypoint names, for the warnings.
    """
    x, y, v = keypoints[:, 0], keypoints[:, 1], keypoints[:, 2]
    outside = (v > 0) & ~points_inside_image(keypoints[:, :2], info.height, info.width)
    for k in np.flatnonzero(outside):
        problems.warn(
            KEYPOINT_OUTSIDE_IMAGE,
            f"{where}: {names[k]} at ({x[k]:g}, {y[k]:g}) is outside the "
            f"{info.width}x{info.height} image; set to unlabelled",
        )
        keypoints[k] = 0.0


def _repair_person(person, info, problems, names):
    """Drops degenerate polygons and outside keypoints; returns the person, or None for an empty crowd."""
    where = f"annotation id {person.annotation_id} of {info.describe()}"
    _drop_outside_keypoints(person.keypoints, info, where, problems, names)
    if not isinstance(person.segmentation, list):
        return person
    polygons = []
    for polygon in person.segmentation:
        problem = _polygon_problem(polygon)
        if problem:
            problems.warn(DEGENERATE_POLYGON, f"{where}: polygon dropped ({problem})")
        else:
            polygons.append(polygon)
    person.segmentation = polygons
    if polygons:
        return person
    if person.is_crowd:
        problems.warn(EMPTY_SEGMENTATION, f"{where}: crowd region without a polygon dropped")
        return None
    problems.warn(EMPTY_SEGMENTATION, f"{where}: no polygon left; person kept with an empty mask")
    return person


def _describe_annotation(entry, index):
    """Names an annotation in warnings by its id and image id when it has them."""
    if isinstance(entry, dict) and _ID in entry:
        return f"annotation id {_short(entry[_ID])} (image id {_short(entry.get(_IMAGE_ID))})"
    return f"annotations[{index}]"


def _parse_annotations(entries, images, problems, skeleton):
    """Valid annotations of the skeleton's category as {image id: [`_Person`]} (every image id present)."""
    persons = {image_id: [] for image_id in images}
    seen_ids = set()
    for index, entry in enumerate(entries):
        where = _describe_annotation(entry, index)
        try:
            category = _integer(_field(entry, _CATEGORY_ID), "category_id")
            if category != skeleton.category_id:
                problems.warn(NON_PERSON_CATEGORY, f"{where}: category {category} ignored")
                continue
            person = _parse_person(entry, images, skeleton.num_keypoints)
            if person.annotation_id in seen_ids:
                raise _Malformed("duplicate annotation id")
        except _Malformed as error:
            problems.warn(MALFORMED_ANNOTATION, f"{where}: {error}; person skipped")
            continue
        seen_ids.add(person.annotation_id)
        person = _repair_person(person, images[person.image_id], problems, skeleton.keypoints)
        if person is not None:
            persons[person.image_id].append(person)
    return persons


def _parse_imputed(entry, num_keypoints):
    """An imputed entry as (annotation id, [K, 3] keypoints with >= 1 labelled), or `_Malformed`."""
    annotation_id = _integer(_field(entry, _ID), "id")
    keypoints = _keypoints(_field(entry, _KEYPOINTS), num_keypoints)
    if not np.any(keypoints[:, 2] > 0):
        raise _Malformed("no labelled keypoint")
    return annotation_id, keypoints


def _apply_imputed(entries, dataset, problems):
    """Fills persons without labelled keypoints from imputed entries [{"id", "keypoints"}], in place."""
    by_id = {p.annotation_id: p for persons in dataset.persons.values() for p in persons}
    images = {info.image_id: info for info in dataset.images}
    used_ids = set()
    for index, entry in enumerate(entries):
        try:
            annotation_id, keypoints = _parse_imputed(entry, dataset.skeleton.num_keypoints)
            if annotation_id in used_ids:
                raise _Malformed(f"duplicate entry for annotation id {annotation_id}")
        except _Malformed as error:
            problems.warn(IMPUTED_MALFORMED, f"imputed keypoints[{index}]: {error}; ignored")
            continue
        used_ids.add(annotation_id)
        where = f"imputed keypoints for annotation id {annotation_id}"
        person = by_id.get(annotation_id)
        if person is None:
            problems.warn(IMPUTED_UNKNOWN_ID, f"{where}: no such person annotation; ignored")
        elif person.is_crowd:
            problems.warn(IMPUTED_FOR_CROWD, f"{where}: it is a crowd region; ignored")
        elif person.has_labelled_keypoint():
            problems.warn(IMPUTED_FOR_LABELLED_PERSON, f"{where}: person has labelled keypoints; ignored")
        else:
            _drop_outside_keypoints(keypoints, images[person.image_id], where, problems, dataset.skeleton.keypoints)
            person.keypoints = keypoints
            person.imputed = True


def load_dataset(annotations_path: str, problems: ProblemCounter, imputed_path: Optional[str] = None,
                 skeleton: Optional[skeleton_lib.Skeleton] = None) -> CocoPersons:
    """Reads and validates a COCO person-keypoints JSON (and optional imputed keypoints).

    Args:
      annotations_path: COCO JSON with `images` and `annotations` lists.
      problems: `ProblemCounter` that receives every repaired or skipped item.
      imputed_path: optional JSON list of {"id": annotation id, "keypoints": [K * 3 numbers]} filling
        persons without labelled keypoints (other keys of an entry, such as the "scores" written by
        scripts/impute_keypoints.py, are ignored).
      skeleton: the `Skeleton` the keypoints must follow; None: the file's (`file_skeleton`).

    Returns:
      `CocoPersons`.

    Raises:
      AnnotationError: a file is missing, is not JSON, lacks the top-level lists, or declares keypoints
        other than `skeleton`'s.
    """
    dataset = parse_dataset(load_json(annotations_path, "annotations"), annotations_path, problems, skeleton)
    if imputed_path is not None:
        entries = load_json(imputed_path, "imputed keypoints")
        if not isinstance(entries, list):
            raise AnnotationError(f"imputed keypoints file {imputed_path} is not a JSON list")
        _apply_imputed(entries, dataset, problems)
    return dataset


def file_skeleton(data: Any, source: str) -> skeleton_lib.Skeleton:
    """The skeleton of a parsed COCO JSON: its category's (skeleton.keypoint_category, from_category), or
    coco17 when no category declares keypoints; AnnotationError naming `source` when its declaration is
    unusable."""
    if not skeleton_lib.declares_keypoints(data):
        return skeleton_lib.COCO17
    try:
        return skeleton_lib.from_category(skeleton_lib.keypoint_category(data, source), source)
    except ValueError as error:
        raise AnnotationError(str(error)) from None


def check_file_skeleton(data: Any, source: str, skeleton: skeleton_lib.Skeleton) -> None:
    """AnnotationError naming both when a parsed COCO JSON declares keypoint names other than `skeleton`'s (a
    file that declares none fits any skeleton)."""
    if not skeleton_lib.declares_keypoints(data):
        return
    declared = file_skeleton(data, source)
    if declared.keypoints != skeleton.keypoints:
        raise AnnotationError(f"skeleton mismatch: {source} declares {declared.describe()}, "
                              f"the task (its configuration or SavedModel) holds {skeleton.describe()}")


def parse_dataset(data: Any, source: str, problems: ProblemCounter,
                  skeleton: Optional[skeleton_lib.Skeleton] = None) -> CocoPersons:
    """Validates the parsed content of a COCO person-keypoints JSON (`load_dataset` without the reading).

    Args:
      data: the parsed JSON; source: its file, named in the error; problems: `ProblemCounter`.
      skeleton: as in `load_dataset`.

    Returns:
      `CocoPersons`.

    Raises:
      AnnotationError: `data` lacks the top-level lists.
    """
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in (_IMAGES, _ANNOTATIONS)):
        raise AnnotationError(f"annotations file {source} has no '{_IMAGES}' and '{_ANNOTATIONS}' lists")
    if skeleton is None:
        skeleton = file_skeleton(data, source)
    else:
        check_file_skeleton(data, source, skeleton)
    images = _parse_images(data[_IMAGES], problems)
    return CocoPersons(list(images.values()), _parse_annotations(data[_ANNOTATIONS], images, problems, skeleton),
                       skeleton)


def ground_truth(dataset: CocoPersons) -> dict:
    """The COCO dict COCOeval reads, from validated annotations (`load_dataset` without imputed keypoints):
    exactly what the records hold, so evaluation and training see the same ground truth.

    Images are the valid `images` entries; persons are those the records keep, with their JSON values
    except where `load_dataset` repaired them: keypoints outside the image are (0, 0, 0) and `num_keypoints`
    counts the labelled ones; degenerate polygons are gone (a person left without a polygon gets an
    empty RLE mask). The category is the skeleton's (Skeleton.category_entry).
    """
    images, annotations = [], []
    for info in dataset.images:
        images.append({"id": info.image_id, "file_name": info.file_name, "height": info.height, "width": info.width})
        for person in dataset.persons[info.image_id]:
            entry = dict(person.source, category_id=dataset.skeleton.category_id)
            original = np.asarray(entry[_KEYPOINTS], np.float64).reshape(-1, 3)
            dropped = (original[:, 2] > 0) & (person.keypoints[:, 2] == 0)
            if dropped.any():
                original[dropped] = 0.0
                entry[_KEYPOINTS] = original.reshape(-1).tolist()
            entry["num_keypoints"] = int(np.sum(original[:, 2] > 0))
            if isinstance(person.segmentation, list) and person.segmentation:
                entry[_SEGMENTATION] = [polygon.tolist() for polygon in person.segmentation]
            elif isinstance(person.segmentation, list):
                empty = mask_utils.encode(np.zeros((info.height, info.width, 1), np.uint8, order="F"))[0]
                entry[_SEGMENTATION] = {_RLE_SIZE: [info.height, info.width], _RLE_COUNTS: empty["counts"].decode()}
            annotations.append(entry)
    return {"info": {"description": "validated by personlab_tf.data.coco"}, "images": images,
            "categories": [dataset.skeleton.category_entry()], "annotations": annotations}
