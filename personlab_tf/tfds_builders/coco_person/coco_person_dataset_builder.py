"""tfds builder `coco_person`: COCO 2017 person keypoints and masks from a local copy, for evaluation.

Usage (fully offline; `manual_dir` laid out as in `layout.py`):

    from personlab_tf.tfds_builders import coco_person
    builder = coco_person.prepare(manual_dir="/data/coco", data_dir="/data/tfds")
    dataset = builder.as_dataset(split="validation")

Splits: `train` (annotations/person_keypoints_train2017.json + train2017/) and `validation`
(annotations/person_keypoints_val2017.json + val2017/). A split whose files are absent is skipped with a
warning naming them (and recorded in `builder.skipped_splits`); with no split at all,
`download_and_prepare` raises `FileNotFoundError` naming every expected path.

Which images:
- `validation` keeps *every* image of the JSON, also those without any person annotation. COCOeval
  evaluates all images of the ground truth (`params.imgIds = cocoGt.getImgIds()`, and
  person_keypoints_val2017.json lists all 5000 val images): a detection on an image without people is
  a false positive. Dropping those images would overstate precision.
- `train` keeps only images with at least one person annotation (crowd regions included), the paper's
  training set ("the subset of the 2017 COCO training set images that contain people", 64115 images),
  as `scripts/create_tfrecords.py` does.

Which annotations: the JSON is validated with `personlab_tf.data.coco.load_dataset` (bad entries are
skipped with a warning and counted by kind, non-person categories ignored). The persons it keeps are
stored with the values of the JSON unchanged (not its repairs, such as dropping keypoints outside the
image), so that the ground truth rebuilt from this dataset is the original one; see `features.py`. The
one repair kept is of the masks: polygons that cannot be rasterised are dropped, as in the records.

Images: the file bytes are stored as they are (no re-encoding). An image that cannot be read, is not
JPEG/PNG or whose header size differs from the JSON is skipped with a warning (header check only:
decoding all of COCO twice would double the build time).

What the build saw is recorded with the dataset (`builder.info.metadata[split]`, a `BuildRecord` dict): the
SHA-256 of the annotations file, the images skipped (count and ids) and the warnings by kind, so that an
evaluation of the cached dataset still reports them, and `prepare` refuses a dataset built from another
annotations file (`StaleDatasetError`; docs/operations.md).

Skeleton: the keypoints follow one `Skeleton` (personlab_tf/skeleton.py), coco17 for COCO: a builder holds
one (`Builder(skeleton=...)`, `builder.skeleton`), stores K keypoints per person (features [K, 3]), names it
in its description and records it in `builder.info.metadata["skeleton"]` (`Skeleton.to_config`). A builder
made without one takes the skeleton recorded in its data directory (so `tfds.builder("coco_person",
data_dir=...)` reopens any prepared dataset), else coco17; given one that differs from the recorded one it
raises `StaleDatasetError`. `prepare` builds with the skeleton the manual directory's annotation files
declare (`coco.file_skeleton`) unless told one; the build refuses a file declaring other keypoints. One
data directory holds one skeleton's `coco_person`.

Coordinates: keypoints as in COCO, pixel centres at integer coordinates, x right, y down, (x, y) order;
boxes and polygons (here the RLE) use pixel corners, as in COCO.
"""

import hashlib
import io
import json
import os
from typing import Any, List, Optional, Union

import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from PIL import Image
from tensorflow_datasets.core.utils import file_utils

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco, coco_masks, coco_problems
from personlab_tf.tfds_builders.coco_person import features, layout

# Whether images without any person annotation are kept (see the module docstring).
KEEP_IMAGES_WITHOUT_PEOPLE = {layout.TRAIN: False, layout.VALIDATION: True}
_IMAGE_FORMATS = ("JPEG", "PNG")
# Keys of a split's build record in `builder.info.metadata[split]`.
ANNOTATIONS_SHA256 = "annotations_sha256"
IMAGES_SKIPPED = "images_skipped"
SKIPPED_IMAGE_IDS = "skipped_image_ids"
WARNINGS = "warnings"
# Key of the dataset's skeleton (`Skeleton.to_config`) in `builder.info.metadata`.
SKELETON = "skeleton"
_DATASET_INFO_FILE = "dataset_info.json"
_METADATA_FILE = "metadata.json"


class StaleDatasetError(ValueError):
    """A prepared dataset that does not match the manual directory it would be built from."""


def annotations_fingerprint(path: Union[str, os.PathLike]) -> str:
    """The SHA-256 hex digest of a file's bytes (the annotations file a split was built from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

_DESCRIPTION = """\
COCO 2017 person keypoints with instance masks (as COCO RLE) of every person annotation, crowd regions
included, read from a local COCO copy. `validation` holds every image of the val JSON (also those
without people, as COCO evaluates them); `train` holds the images with people. Values are the JSON's
unchanged, so the COCO ground truth can be rebuilt exactly for COCOeval.
"""

_CITATION = """\
@inproceedings{lin2014coco,
  title={Microsoft {COCO}: Common Objects in Context},
  author={Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and Perona, Pietro and
          Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle={ECCV},
  year={2014}
}
"""


def _expected_layout(manual_dir):
    """One line per split naming its two expected paths."""
    lines = []
    for split in layout.SPLIT_FILES:
        annotations, images = layout.split_paths(manual_dir, split)
        lines.append(f"  {split}: {annotations} and {images}{os.sep}")
    return "\n".join(lines)


class Builder(tfds.core.GeneratorBasedBuilder):
    """COCO 2017 person keypoints and masks from a local copy (see the module docstring)."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Persons with keypoints, box, area, crowd flag and RLE mask; encoded images.",
                     "1.1.0": "Degenerate polygons dropped from the masks; each split's build record (annotations "
                              "SHA-256, images skipped, warnings) in the metadata."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Pass the root of a local COCO 2017 copy as `manual_dir`, holding for each split you need:
  annotations/person_keypoints_train2017.json and train2017/  -> split "train"
  annotations/person_keypoints_val2017.json and val2017/      -> split "validation"
(`personlab_tf.tfds_builders.coco_person.arrange_coco_tree` links any COCO-format data into this layout.)
"""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        """This module's path. tfds' own lookup fails here: for a class in a package it imports
        `importlib_resources`, which tensorflow-datasets 4.9.10 does not install on Python >= 3.9."""
        return epath.Path(__file__)

    def __init__(self, skeleton: Optional[skeleton_lib.Skeleton] = None, **kwargs: Any):
        """`skeleton`: the `Skeleton` of the keypoints; None: the one recorded in the prepared dataset of
        `data_dir`, else coco17. `kwargs`: those of `tfds.core.GeneratorBasedBuilder` (`data_dir`, ...).

        Raises:
          StaleDatasetError: `skeleton` differs from the one of the dataset prepared in `data_dir`.
        """
        recorded = recorded_skeleton(kwargs.get("data_dir"))
        if skeleton is None:
            skeleton = recorded or skeleton_lib.COCO17
        elif recorded is not None:
            try:
                skeleton_lib.check_same(recorded, skeleton, f"the coco_person dataset in {kwargs.get('data_dir')}",
                                        "the builder")
            except ValueError as error:
                raise StaleDatasetError(f"{error}; delete the dataset to build it with {skeleton.name}") from None
        self._skeleton = skeleton
        super().__init__(**kwargs)
        # split name -> why it was skipped, filled by download_and_prepare.
        self.skipped_splits = {}

    @property
    def skeleton(self) -> skeleton_lib.Skeleton:
        """The `Skeleton` of the keypoints."""
        return self._skeleton

    def _info(self):
        """Dataset metadata, built directly (no README/CITATIONS lookup: tfds looks for them beside the module)."""
        skeleton = self._skeleton
        return tfds.core.DatasetInfo(
            builder=self,
            description=(f"{_DESCRIPTION}Keypoints: skeleton {skeleton.describe()}, "
                         f"{', '.join(skeleton.keypoints)}.\n"),
            features=features.features_dict(skeleton.num_keypoints),
            homepage="https://cocodataset.org/#keypoints-2017",
            citation=_CITATION,
            metadata=tfds.core.MetadataDict({SKELETON: skeleton.to_config()}),
        )

    def _split_generators(self, dl_manager):
        """One generator per split whose files exist in the manual directory."""
        manual_dir = os.fspath(dl_manager.manual_dir)
        generators = {}
        for split in layout.SPLIT_FILES:
            missing = layout.missing_paths(manual_dir, split)
            if missing:
                message = f"coco_person: split '{split}' skipped, not found: {', '.join(missing)}"
                logging.warning(message)
                self.skipped_splits[split] = message
                continue
            annotations, images = layout.split_paths(manual_dir, split)
            generators[split] = self._generate_examples(
                annotations, images, KEEP_IMAGES_WITHOUT_PEOPLE[split], split)
        if not generators:
            raise FileNotFoundError(
                f"coco_person: no split found in manual_dir {manual_dir}. Expected, per split, an "
                f"annotations file and an images directory:\n{_expected_layout(manual_dir)}")
        return generators

    def _generate_examples(self, annotations_path, images_dir, keep_images_without_people, split):
        """Yields (image id, example) in JSON order (see the module docstring for what is kept); records
        what the build saw in `self.info.metadata[split]`."""
        problems = coco_problems.ProblemCounter()
        valid = coco.load_dataset(annotations_path, problems, skeleton=self._skeleton)
        with open(annotations_path, "rb") as f:
            raw = json.load(f)["annotations"]
        by_id = _first_by_id(raw, {p.annotation_id for persons in valid.persons.values() for p in persons})
        del raw
        num_examples = num_persons = 0
        skipped_ids = []
        for info in valid.images:
            persons = valid.persons[info.image_id]
            if not persons:
                problems.images_without_people += 1
                if not keep_images_without_people:
                    continue
            encoded = _read_image(os.path.join(images_dir, info.file_name), info, problems)
            if encoded is None:
                skipped_ids.append(info.image_id)
                continue
            num_examples += 1
            num_persons += len(persons)
            rles = [coco_masks.segmentation_rle(p.segmentation, info.height, info.width) for p in persons]
            yield info.image_id, {
                features.IMAGE: encoded,
                features.IMAGE_ID: info.image_id,
                features.HEIGHT: info.height,
                features.WIDTH: info.width,
                features.FILE_NAME: info.file_name,
                features.PERSONS: features.encode_persons([by_id[p.annotation_id] for p in persons], rles,
                                                          self._skeleton.num_keypoints),
            }
        self.info.metadata[split] = {ANNOTATIONS_SHA256: annotations_fingerprint(annotations_path),
                                     IMAGES_SKIPPED: problems.images_skipped, SKIPPED_IMAGE_IDS: skipped_ids,
                                     WARNINGS: dict(sorted(problems.warnings.items()))}
        logging.info(
            "coco_person %s: %d images (%d without people, %s), %d persons; %d images skipped, "
            "warnings by kind: %s (repairs announced by those warnings concern the training records; "
            "coco_person keeps the JSON values)",
            annotations_path, num_examples, problems.images_without_people,
            "kept" if keep_images_without_people else "left out", num_persons, problems.images_skipped,
            dict(problems.warnings))


def _first_by_id(annotations, wanted_ids):
    """{annotation id: the first JSON annotation dict with that id} for the ids in `wanted_ids`."""
    by_id = {}
    for annotation in annotations:
        annotation_id = annotation.get("id") if isinstance(annotation, dict) else None
        if annotation_id in wanted_ids and annotation_id not in by_id:
            by_id[annotation_id] = annotation
    return by_id


def _read_image(path, info, problems):
    """The file bytes of an image, or None after a warning (unreadable, not JPEG/PNG, wrong size)."""
    where = f"image id {info.image_id} ({path})"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        reason = error.strerror or error
        problems.skip_image(coco_problems.MISSING_IMAGE, f"{where}: cannot read ({reason}); skipped")
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size = image.format, image.size
    except Exception as error:  # PIL raises many types for a bad header
        problems.skip_image(coco_problems.CORRUPT_IMAGE, f"{where}: not an image ({error}); skipped")
        return None
    if image_format not in _IMAGE_FORMATS:
        problems.skip_image(coco_problems.UNSUPPORTED_IMAGE_FORMAT, f"{where}: {image_format}, not JPEG/PNG; skipped")
        return None
    if size != (info.width, info.height):
        problems.skip_image(coco_problems.SIZE_MISMATCH, f"{where}: {size[0]}x{size[1]}, the JSON says "
                                                f"{info.width}x{info.height}; skipped")
        return None
    return data


def stale_splits(builder: Builder, manual_dir: Union[str, os.PathLike]) -> List[str]:
    """How a prepared dataset differs from the manual directory it would be built from: one line per split
    built from another annotations file (SHA-256), or missing although its files are there now."""
    found = []
    for split in layout.SPLIT_FILES:
        if layout.missing_paths(manual_dir, split):
            continue
        annotations, _ = layout.split_paths(manual_dir, split)
        if split not in builder.info.splits:
            found.append(f"split '{split}' was not built (its files were missing then)")
            continue
        recorded = builder.info.metadata.get(split, {}).get(ANNOTATIONS_SHA256)
        current = annotations_fingerprint(annotations)
        if recorded != current:
            found.append(f"split '{split}' was built from an annotations file of SHA-256 {recorded}, "
                         f"{annotations} has {current}")
    return found


def recorded_skeleton(data_dir: Optional[Union[str, os.PathLike]]) -> Optional[skeleton_lib.Skeleton]:
    """The skeleton of the `coco_person` dataset prepared in `data_dir` (None: tfds' default directories):
    the one its metadata records, coco17 for a dataset built before skeletons were recorded; None when no
    dataset is prepared there."""
    try:
        _, dataset_dir = file_utils.get_data_dir_and_dataset_dir(
            given_data_dir=None if data_dir is None else os.fspath(data_dir), builder_name=Builder.name,
            config_name=None, version=Builder.VERSION)
    except Exception:  # no data directory to look in
        return None
    if not os.path.isfile(os.path.join(dataset_dir, _DATASET_INFO_FILE)):
        return None
    metadata_path = os.path.join(dataset_dir, _METADATA_FILE)
    config = None
    if os.path.isfile(metadata_path):
        with open(metadata_path) as f:
            config = json.load(f).get(SKELETON)
    return skeleton_lib.Skeleton.from_config(config) if config else skeleton_lib.COCO17


def manual_skeleton(manual_dir: Union[str, os.PathLike]) -> skeleton_lib.Skeleton:
    """The skeleton the annotation files of the splits present in `manual_dir` declare (`coco.file_skeleton`),
    coco17 when none is present; ValueError when two splits declare different ones."""
    found = None
    for split in layout.SPLIT_FILES:
        if layout.missing_paths(manual_dir, split):
            continue
        annotations, _ = layout.split_paths(manual_dir, split)
        declared = coco.file_skeleton(coco.load_json(annotations, "annotations"), annotations)
        if found is not None:
            skeleton_lib.check_same(found[0], declared, found[1], annotations)
        found = found or (declared, annotations)
    return found[0] if found else skeleton_lib.COCO17


def prepare(manual_dir: Union[str, os.PathLike], data_dir: Union[str, os.PathLike],
            skeleton: Optional[skeleton_lib.Skeleton] = None) -> Builder:
    """Builds (or reuses) the dataset offline and returns the prepared `Builder`.

    Args:
      manual_dir: root of the local COCO 2017 tree (see `layout.py`).
      data_dir: tfds data directory receiving `coco_person/<VERSION>/`.
      skeleton: the `Skeleton` of the keypoints; None: the prepared dataset's, else the one the manual
        directory's annotation files declare (`manual_skeleton`; coco17 for COCO).

    Returns:
      `Builder`; `builder.as_dataset(split=...)` reads it, `builder.info.splits` lists the built splits,
      `builder.info.metadata[split]` its build record, and `builder.skipped_splits` the skipped ones (only
      when built in this call).

    Raises:
      StaleDatasetError: the dataset in `data_dir` was built from other annotations than `manual_dir`'s
        (`stale_splits`) or with another skeleton than `skeleton`; it is left as it is.
      ValueError: the splits' annotation files declare different skeletons (`skeleton` None).
      coco.AnnotationError: an annotations file declares other keypoints than `skeleton`.
    """
    if skeleton is None and recorded_skeleton(data_dir) is None:
        skeleton = manual_skeleton(os.fspath(manual_dir))
    builder = Builder(data_dir=data_dir, skeleton=skeleton)
    if builder.is_prepared():
        stale = stale_splits(builder, os.fspath(manual_dir))
        if stale:
            raise StaleDatasetError(f"the coco_person dataset in {builder.data_dir} does not match {manual_dir}: "
                                    f"{'; '.join(stale)}. Delete {builder.data_dir} to build it again")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir), try_download_gcs=False))
    return builder
