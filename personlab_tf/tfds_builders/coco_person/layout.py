"""Where the `coco_person` builder looks for COCO 2017 inside its `manual_dir`, and how to arrange it.

The manual directory is a COCO 2017 tree (only the person-keypoint annotations are read):

    manual_dir/
      annotations/person_keypoints_train2017.json   -> split "train"
      annotations/person_keypoints_val2017.json     -> split "validation"
      train2017/<file_name>.jpg
      val2017/<file_name>.jpg

A split is available when both its annotations file and its images directory exist.
`arrange_coco_tree` lays out any COCO-format dataset (the real samples in `../shared/data`, the
synthetic one from `scripts/make_synthetic_coco.py`) as such a tree with symbolic links, copying nothing.
"""

import dataclasses
import os
from typing import List, Tuple, Union

TRAIN = "train"
VALIDATION = "validation"
ANNOTATIONS_DIR = "annotations"


@dataclasses.dataclass(frozen=True)
class SplitFiles:
    """The two paths of one split, relative to the manual directory."""

    annotations: str
    images: str


# tfds split name -> its files in the COCO 2017 tree.
SPLIT_FILES = {
    TRAIN: SplitFiles(os.path.join(ANNOTATIONS_DIR, "person_keypoints_train2017.json"), "train2017"),
    VALIDATION: SplitFiles(os.path.join(ANNOTATIONS_DIR, "person_keypoints_val2017.json"), "val2017"),
}
# Other names accepted by `arrange_coco_tree` for a split.
_SPLIT_ALIASES = {"val": VALIDATION, "val2017": VALIDATION, "train2017": TRAIN}


def canonical_split(split_name: str) -> str:
    """The tfds split name ("train" or "validation") of `split_name` (also "val", "val2017", "train2017")."""
    split = _SPLIT_ALIASES.get(split_name, split_name)
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown split {split_name!r}; expected one of {sorted(SPLIT_FILES)} "
                         f"or {sorted(_SPLIT_ALIASES)}")
    return split


def split_paths(manual_dir: Union[str, os.PathLike], split: str) -> Tuple[str, str]:
    """(annotations json path, images directory path) of `split` inside `manual_dir`."""
    files = SPLIT_FILES[canonical_split(split)]
    return os.path.join(manual_dir, files.annotations), os.path.join(manual_dir, files.images)


def missing_paths(manual_dir: Union[str, os.PathLike], split: str) -> List[str]:
    """The paths of `split` that do not exist (empty list: the split is available)."""
    annotations, images = split_paths(manual_dir, split)
    missing = [] if os.path.isfile(annotations) else [annotations]
    return missing + ([] if os.path.isdir(images) else [images])


def arrange_coco_tree(root: Union[str, os.PathLike], split_name: str, annotations_json: Union[str, os.PathLike],
                      images_dir: Union[str, os.PathLike]) -> Union[str, os.PathLike]:
    """Links a COCO-format dataset into a COCO 2017 tree at `root`, as the split `split_name`.

    For example the synthetic data set (`scripts/make_synthetic_coco.py --output DIR`):
    `arrange_coco_tree(root, "validation", "DIR/person_keypoints.json", "DIR/images")`. Call once per
    split with the same `root`; then pass `root` as the builder's `manual_dir`.

    Args:
      root: directory of the tree (created if needed).
      split_name: "train" or "validation" (also "val", "val2017", "train2017").
      annotations_json: the COCO person-keypoints JSON of the split.
      images_dir: the directory holding the images named by its `file_name` fields.

    Returns:
      `root`.

    Raises:
      FileNotFoundError: `annotations_json` or `images_dir` does not exist.
      FileExistsError: the split is already present in `root`.
    """
    if not os.path.isfile(annotations_json):
        raise FileNotFoundError(f"annotations file {annotations_json} does not exist")
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"images directory {images_dir} does not exist")
    annotations_link, images_link = split_paths(root, split_name)
    for link in (annotations_link, images_link):
        if os.path.lexists(link):
            raise FileExistsError(f"{link} already exists")
    os.makedirs(os.path.dirname(annotations_link), exist_ok=True)
    os.symlink(os.path.abspath(annotations_json), annotations_link)
    os.symlink(os.path.abspath(images_dir), images_link, target_is_directory=True)
    return root
