"""PASCAL-Person-Part -> the project's layout (package docstring), skeleton pascal_person_part:
`convert_pascal_person_part`.

Persons are PASCAL-Part's `person` objects; the part map is `SegmentationPart`
as released (void 255 -> background); part pixels outside every person are kept and counted.

Keypoints: no public material states their layout; this is the project's own reading
(skeleton pascal_person_part: head, neck, then left/right shoulder, elbow, wrist, hip, knee, ankle). A
joint file `{joints_dir}/{id}.mat` (default `ROOT/Joints`, id = the image file's stem) holds `joints`, a
P x 14 x 3 double array (a 14 x 3 one for P = 1): row p is the p-th `person` object of the image's
PASCAL-Part file (in `anno.objects` order), its 14 rows (x, y, visible) in the skeleton's order, x and y in
0-based pixels (pixel centres at integer coordinates), visible 1 -> v = 2, 0 -> v = 1; a joint with a
negative or non-finite coordinate or another flag is unlabelled.
"""

import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.io import loadmat

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco
from personlab_tf.tasks.parts.converters.common import (BAD_KEYPOINTS, BAD_PART_ANNOTATION, MISSING_IMAGE,
                                                        MISSING_PART_FILE, MISSING_POSE, PERSON_ID_STRIDE,
                                                        Conversion, exclusive_masks, image_size, read_list,
                                                        read_sized_labels)

PASCAL_PERSON = "person"             # PASCAL-Part's `class` of a person object
PASCAL_IMAGES_DIR = "JPEGImages"
PASCAL_PARTS_DIR = "SegmentationPart"
PASCAL_PART_ANNOTATIONS_DIR = "Annotations_Part"
PASCAL_JOINTS_DIR = "Joints"         # the project's reading of PASCAL-Person-Part's joints (module docstring)
PASCAL_JOINTS_KEY = "joints"
VOID = 255


class BadPartAnnotation(ValueError):
    """A PASCAL-Part annotation file that does not have the documented structure; the message says where."""


def read_pascal_list(path: str) -> List[Tuple[str, str]]:
    """[(image path, part label path)] relative to the root, of a PASCAL-Person-Part list file whose lines
    are an id (`JPEGImages/{id}.jpg`, `SegmentationPart/{id}.png`) or two paths (a leading / is dropped).

    Raises:
      coco.AnnotationError: the file cannot be read or a line has another number of fields.
    """
    entries = []
    for number, line in enumerate(read_list(path), start=1):
        fields = line.split()
        if len(fields) == 1:
            entries.append((f"{PASCAL_IMAGES_DIR}/{fields[0]}.jpg", f"{PASCAL_PARTS_DIR}/{fields[0]}.png"))
        elif len(fields) == 2:
            entries.append(tuple(field.lstrip("/") for field in fields))
        else:
            raise coco.AnnotationError(f"{path}, entry {number}: expected 'ID' or 'IMAGE LABEL', got {line!r}")
    return entries


def _struct(value, where):
    """A MATLAB struct array read by scipy.io.loadmat, flattened to its elements."""
    if not isinstance(value, np.ndarray) or value.dtype.names is None:
        raise BadPartAnnotation(f"{where} is not a struct")
    return value.reshape(-1)


def _field(element, name, where):
    if name not in element.dtype.names:
        raise BadPartAnnotation(f"{where} has no field '{name}'")
    return element[name]


def pascal_part_persons(path: str, size: Tuple[int, int]) -> List[Tuple[int, np.ndarray]]:
    """The person objects of a PASCAL-Part annotation file: [(object number, mask [H, W] bool)].

    The file holds a struct `anno` whose `objects` array has, per object, `class` (a string such as
    'person'), `class_ind`, `mask` (H x W) and `parts` (`part_name`, `mask`); objects are numbered from 1
    in their order, as MATLAB's `anno.objects(i)`.

    Raises:
      BadPartAnnotation: the file does not load or lacks a field; the message names the field.
    """
    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several types for malformed files
        raise BadPartAnnotation(f"does not load as a MATLAB file ({type(error).__name__})") from None
    if "anno" not in content:
        raise BadPartAnnotation("has no variable 'anno'")
    anno = _struct(content["anno"], "anno")
    if len(anno) != 1:
        raise BadPartAnnotation(f"anno is a {len(anno)}-element struct array, not one struct")
    objects = _field(anno[0], "objects", "anno")
    if isinstance(objects, np.ndarray) and objects.size == 0:
        return []
    persons = []
    for number, element in enumerate(_struct(objects, "anno.objects"), start=1):
        where = f"anno.objects({number})"
        name = np.asarray(_field(element, "class", where)).reshape(-1)
        if name.size != 1 or not isinstance(name[0], str):
            raise BadPartAnnotation(f"{where}.class is not a string")
        if name[0] != PASCAL_PERSON:
            continue
        mask = np.asarray(_field(element, "mask", where))
        if mask.shape != size:
            raise BadPartAnnotation(f"{where}.mask is {mask.shape}, the image is {size}")
        persons.append((number, mask > 0))
    return persons


def pascal_joint_keypoints(joints: np.ndarray) -> np.ndarray:
    """Keypoints [14, 3] of skeleton pascal_person_part from one person's 14 joint rows (x, y, visible) of a
    joint file (module docstring): visible 1 -> v = 2, 0 -> v = 1; a joint with a negative or non-finite
    coordinate or another flag is unlabelled, (0, 0, 0)."""
    keypoints = np.zeros((skeleton_lib.PASCAL_PERSON_PART.num_keypoints, 3))
    for joint, (x, y, visible) in enumerate(np.asarray(joints, np.float64)):
        if np.isfinite(x) and np.isfinite(y) and x >= 0 and y >= 0 and visible in (0, 1):
            keypoints[joint] = (x, y, 1 + visible)
    return keypoints


def read_pascal_joints(path: str) -> np.ndarray:
    """The keypoints [P, 14, 3] of a PASCAL-Person-Part joint file (module docstring; `pascal_joint_keypoints`
    of each person).

    Raises:
      BadPartAnnotation: the file does not load or its `joints` is not P x 14 x 3 (or 14 x 3) numbers; the
        message says which.
    """
    count = skeleton_lib.PASCAL_PERSON_PART.num_keypoints
    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several types for malformed files
        raise BadPartAnnotation(f"does not load as a MATLAB file ({type(error).__name__})") from None
    if PASCAL_JOINTS_KEY not in content:
        raise BadPartAnnotation(f"has no variable '{PASCAL_JOINTS_KEY}'")
    joints = np.asarray(content[PASCAL_JOINTS_KEY])
    if joints.size == 0:
        return np.zeros((0, count, 3))
    if joints.shape == (count, 3):
        joints = joints[np.newaxis]
    if joints.ndim != 3 or joints.shape[1:] != (count, 3) or not np.issubdtype(joints.dtype, np.number):
        raise BadPartAnnotation(f"{PASCAL_JOINTS_KEY} is {joints.shape} {joints.dtype}, not P x {count} x 3 numbers")
    return np.stack([pascal_joint_keypoints(person) for person in joints])


def pascal_persons_keypoints(joints_dir: str, name: str, persons: int, conversion: Conversion) -> List[np.ndarray]:
    """The keypoints [14, 3] of each of an image's `persons` person objects from its joint file
    `{joints_dir}/{name}.mat`; zeros, with a counted warning, when there is no (usable) file or no row for a
    person."""
    path = os.path.join(joints_dir, f"{name}.mat")
    empty = [conversion.no_keypoints() for _ in range(persons)]
    if not os.path.isfile(path):
        conversion.problems.warn(MISSING_POSE, f"PASCAL image {name}: no joint file {path}; persons without "
                                               "keypoints")
        return empty
    try:
        joints = read_pascal_joints(path)
    except BadPartAnnotation as error:
        conversion.problems.warn(BAD_KEYPOINTS, f"PASCAL image {name}: {path}: {error}; persons without keypoints")
        return empty
    if len(joints) != persons:
        conversion.problems.warn(MISSING_POSE if len(joints) < persons else BAD_KEYPOINTS,
                                 f"PASCAL image {name}: {path} gives {len(joints)} persons' joints, the image has "
                                 f"{persons} person objects; the first {min(len(joints), persons)} taken in order")
    return [joints[index] if index < len(joints) else empty[index] for index in range(persons)]


def convert_pascal_person_part(root: str, list_path: str, output_dir: str, annotations_dir: Optional[str] = None,
                               joints_dir: Optional[str] = None) -> Dict:
    """PASCAL-Person-Part -> the project's layout, skeleton pascal_person_part.

    Persons are the `person` objects of PASCAL-Part's `{annotations_dir}/{id}.mat` (id = the image file's
    stem); the part map is the listed `SegmentationPart` PNG (void 255 -> background); their keypoints come
    from the joint file `{joints_dir}/{id}.mat` when there is one (module docstring), else they have none
    (counted: missing_pose). The JSON's file names are the list's image paths, relative to `root`.

    Args:
      root: the dataset's root; list_path: its list file (`read_pascal_list`); annotations_dir:
        PASCAL-Part's `Annotations_Part` (default `root/Annotations_Part`); joints_dir: the joint files'
        directory (default `root/Joints`).

    Returns:
      the summary dict.
    """
    entries = read_pascal_list(list_path)
    annotations_dir = annotations_dir or os.path.join(root, PASCAL_PART_ANNOTATIONS_DIR)
    if not os.path.isdir(annotations_dir):
        raise coco.AnnotationError(f"PASCAL-Part annotations directory {annotations_dir} does not exist")
    joints_dir = joints_dir or os.path.join(root, PASCAL_JOINTS_DIR)
    conversion = Conversion(output_dir, skeleton_lib.PASCAL_PERSON_PART)
    problems = conversion.problems
    for image_id, (image_path, label_path) in enumerate(entries, start=1):
        name = os.path.splitext(os.path.basename(image_path))[0]
        size = image_size(os.path.join(root, image_path))
        if size is None:
            problems.warn(MISSING_IMAGE, f"PASCAL image {name}: {image_path} is missing or does not decode; skipped")
            continue
        values, problem = read_sized_labels(os.path.join(root, label_path), size, "is missing or does not decode")
        if problem is not None:
            kind, reason = problem
            problems.warn(kind, f"PASCAL image {name}: {label_path} {reason}; image skipped")
            continue
        mat_path = os.path.join(annotations_dir, f"{name}.mat")
        if not os.path.isfile(mat_path):
            problems.warn(MISSING_PART_FILE, f"PASCAL image {name}: {mat_path} does not exist; image skipped")
            continue
        try:
            persons = pascal_part_persons(mat_path, size)
        except BadPartAnnotation as error:
            problems.warn(BAD_PART_ANNOTATION, f"PASCAL image {name}: {mat_path}: {error}; image skipped")
            continue
        parts = np.where(values == VOID, 0, values).astype(np.uint8)
        masks, moved = exclusive_masks(np.array([mask for _, mask in persons], bool).reshape(-1, *size))
        conversion.overlap_pixels += moved
        conversion.outside_pixels += int(np.count_nonzero((parts > 0) & ~masks.any(axis=0)))
        keypoints = pascal_persons_keypoints(joints_dir, name, len(persons), conversion) if persons else []
        conversion.add_image(image_id, image_path, parts, [
            conversion.person(image_id * PERSON_ID_STRIDE + number, image_id, mask, points)
            for (number, _), mask, points in zip(persons, masks, keypoints)])
    return conversion.finish("PASCAL-Person-Part")
