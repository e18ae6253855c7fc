"""MHP v2 -> the project's layout (package docstring), skeleton mhp_v2: `convert_mhp`.

A person's mask is its parsing PNG's labelled pixels, its parts the PNG.

Keypoint visibility: v = 2 - flag, as the part parser's released code reads the pose files (flag 0 visible -> 2,
1 occluded -> 1, 2 outside the image -> 0); a joint with a negative or non-finite coordinate, or another
flag, is unlabelled.
"""

import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.io import loadmat

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.tasks.parts.converters.common import (EMPTY_PERSON, MISSING_IMAGE, MISSING_POSE, PERSON_ID_STRIDE,
                                                        Conversion, exclusive_masks, image_size, read_list,
                                                        read_sized_labels)


def mhp_keypoints(rows: np.ndarray) -> np.ndarray:
    """Keypoints [16, 3] of skeleton mhp_v2 from one MHP person's pose rows (x, y, flag), the first 16 its
    joints in the dataset's order (the rows after them are not joints).

    v = 2 - flag, as the part parser's released code reads them: flag 0 (visible) -> 2, 1 (occluded) -> 1,
    2 (outside the image) -> 0, unlabelled; a joint with a negative or non-finite coordinate, another flag,
    or no row is unlabelled too. Unlabelled joints are (0, 0, 0).
    """
    count = skeleton_lib.MHP_V2.num_keypoints
    keypoints = np.zeros((count, 3))
    rows = np.asarray(rows, np.float64).reshape(-1, 3)[:count]
    for joint, (x, y, flag) in enumerate(rows):
        if np.isfinite(x) and np.isfinite(y) and x >= 0 and y >= 0 and flag in (0, 1):
            keypoints[joint] = (x, y, 2 - flag)
    return keypoints


def read_mhp_pose(path: str) -> Optional[Dict[int, np.ndarray]]:
    """{person index: mhp_v2 keypoints [16, 3]} of an MHP pose file (`person_0`, `person_1`, ...), or None if
    unreadable; entries that are not rows of 3 numbers are left out."""
    try:
        content = loadmat(path)
    except Exception:  # scipy raises several types for missing or malformed files
        return None
    poses = {}
    for key, value in content.items():
        if key.startswith("person_") and key[len("person_"):].isdigit():
            try:
                poses[int(key[len("person_"):])] = mhp_keypoints(value)
            except (TypeError, ValueError):
                continue
    return poses


def mhp_person_files(parsing_dir: str) -> Dict[str, List[Tuple[int, str]]]:
    """{image id: [(person number n, file name)] sorted by n} of the files `{id}_{N:02d}_{n:02d}.png`."""
    persons = {}
    names = os.listdir(parsing_dir) if os.path.isdir(parsing_dir) else []
    for file_name in names:
        match = re.fullmatch(r"(.+)_(\d+)_(\d+)\.png", file_name)
        if match:
            persons.setdefault(match.group(1), []).append((int(match.group(3)), file_name))
    return {name: sorted(files) for name, files in persons.items()}


def convert_mhp(root: str, split: str, output_dir: str) -> Dict:
    """MHP v2 (`root/{split}/...`, `root/list/{split}.txt`) -> the project's layout.

    The JSON's file names are relative to `root/{split}/images` (pass that directory to create_tfrecords).
    Persons: one per parsing PNG `{id}_{N:02d}_{n:02d}.png`, keypoints (skeleton mhp_v2, `mhp_keypoints`)
    from `person_{n-1}` of `pose_annos/{id}.mat` (read with scipy.io.loadmat).

    Returns:
      the summary dict.
    """
    split_dir = os.path.join(root, split)
    ids = read_list(os.path.join(root, "list", f"{split}.txt"))
    conversion = Conversion(output_dir, skeleton_lib.MHP_V2)
    problems = conversion.problems
    parsing_dir = os.path.join(split_dir, "parsing_annos")
    person_files = mhp_person_files(parsing_dir)
    for image_id, name in enumerate(ids, start=1):
        file_name = f"{name}.jpg"
        size = image_size(os.path.join(split_dir, "images", file_name))
        if size is None:
            problems.warn(MISSING_IMAGE, f"MHP image {name}: {file_name} is missing or does not decode; skipped")
            continue
        pose_path = os.path.join(split_dir, "pose_annos", f"{name}.mat")
        poses = read_mhp_pose(pose_path)
        if poses is None:
            problems.warn(MISSING_POSE, f"MHP image {name}: {pose_path} is not a readable pose file; "
                                        f"persons without keypoints")
            poses = {}
        persons = []
        for number, person_file in person_files.get(name, []):
            values, problem = read_sized_labels(os.path.join(parsing_dir, person_file), size, "does not decode")
            if problem is not None:
                kind, reason = problem
                problems.warn(kind, f"MHP image {name}: {person_file} {reason}; person skipped")
                continue
            if not values.any():
                problems.warn(EMPTY_PERSON, f"MHP image {name}: {person_file} labels no pixel; person skipped")
                continue
            if number - 1 not in poses:
                problems.warn(MISSING_POSE, f"MHP image {name}: no person_{number - 1} in {pose_path}; no keypoints")
            persons.append((number, values))
        masks, moved = exclusive_masks(np.array([v > 0 for _, v in persons], bool).reshape(-1, *size))
        conversion.overlap_pixels += moved
        labels = np.zeros(size, np.uint8)
        annotations = []
        for (number, values), mask in zip(persons, masks):
            labels[mask] = values[mask]
            keypoints = poses.get(number - 1, conversion.no_keypoints())
            annotations.append(conversion.person(image_id * PERSON_ID_STRIDE + number, image_id, mask, keypoints))
        conversion.add_image(image_id, file_name, labels, annotations)
    return conversion.finish(f"MHP v2 {split}")
