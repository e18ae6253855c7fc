"""The COCO person-keypoint dataset layout every dataset of the project is written in.

A dataset folder holds `person_keypoints.json` (COCO format, the category of its skeleton with the keypoint
names and the tree as `skeleton`, personlab_tf/skeleton.py), the images in `images/` and, for part parsing, one part label map per image in
`part_labels/<image file stem>.png` (data/part_labels.py). The synthetic generator (data/synthetic.py),
the part-dataset converters (tasks/parts/converters/) and the ground truth rebuilt from the tfds
records (evaluation/ground_truth.py) all use the helpers below, so their files agree.
"""

import json
import os
from typing import Optional, Sequence

from personlab_tf.skeleton import Skeleton

ANNOTATIONS_FILE = "person_keypoints.json"
IMAGES_DIR = "images"
PART_LABELS_DIR = "part_labels"


def coco_dict(images: Sequence[dict], annotations: Sequence[dict], description: str, skeleton: Skeleton) -> dict:
    """A COCO keypoints dict: info, licenses, the skeleton's category (Skeleton.category_entry), images and
    annotations."""
    return {"info": {"description": description}, "licenses": [], "categories": [skeleton.category_entry()],
            "images": list(images), "annotations": list(annotations)}


def write_annotations(output_dir: str, images: Sequence[dict], annotations: Sequence[dict],
                      description: str, skeleton: Skeleton) -> str:
    """Writes `output_dir/person_keypoints.json` (the directory is created); returns its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, ANNOTATIONS_FILE)
    with open(path, "w") as f:
        json.dump(coco_dict(images, annotations, description, skeleton), f)
    return path


def part_labels_path(part_labels_dir: str, file_name: str) -> str:
    """`part_labels_dir/<stem of file_name>.png`, the part label map of the image `file_name`."""
    return os.path.join(part_labels_dir, os.path.splitext(os.path.basename(file_name))[0] + ".png")


def default_part_labels_dir(annotations_path: str, part_labels_dir: Optional[str] = None) -> str:
    """`part_labels_dir` if given, else the `part_labels` folder beside an annotations JSON."""
    if part_labels_dir:
        return part_labels_dir
    return os.path.join(os.path.dirname(os.path.abspath(annotations_path)), PART_LABELS_DIR)
