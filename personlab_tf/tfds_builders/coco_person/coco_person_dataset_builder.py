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
image), so that the ground truth rebuilt from this dataset is the original one; see `features.py`.

Images: the file bytes are stored as they are (no re-encoding). An image that cannot be read, is not
JPEG/PNG or whose header size differs from the JSON is skipped with a warning (header check only:
decoding all of COCO twice would double the build time).

Coordinates: keypoints as in COCO, pixel centres at integer coordinates, x right, y down, (x, y) order;
boxes and polygons (here the RLE) use pixel corners, as in COCO.
"""

import io
import json
import os

import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from PIL import Image

from personlab_tf.data import coco
from personlab_tf.tfds_builders.coco_person import features, layout

# Whether images without any person annotation are kept (see the module docstring).
KEEP_IMAGES_WITHOUT_PEOPLE = {layout.TRAIN: False, layout.VALIDATION: True}
_IMAGE_FORMATS = ("JPEG", "PNG")

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

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Persons with keypoints, box, area, crowd flag and RLE mask; encoded images."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Pass the root of a local COCO 2017 copy as `manual_dir`, holding for each split you need:
  annotations/person_keypoints_train2017.json and train2017/  -> split "train"
  annotations/person_keypoints_val2017.json and val2017/      -> split "validation"
(`personlab_tf.tfds_builders.coco_person.arrange_coco_tree` links any COCO-format data into this layout.)
"""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        """This module's path. tfds' own lookup fails here: for a class in a package it imports
        `importlib_resources`, which tensorflow-datasets 4.9.10 does not install on Python >= 3.9."""
        return epath.Path(__file__)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # split name -> why it was skipped, filled by download_and_prepare.
        self.skipped_splits = {}

    def _info(self):
        """Dataset metadata, built directly (no README/CITATIONS lookup: tfds looks for them beside the module)."""
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=features.features_dict(),
            homepage="https://cocodataset.org/#keypoints-2017",
            citation=_CITATION,
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
                annotations, images, KEEP_IMAGES_WITHOUT_PEOPLE[split])
        if not generators:
            raise FileNotFoundError(
                f"coco_person: no split found in manual_dir {manual_dir}. Expected, per split, an "
                f"annotations file and an images directory:\n{_expected_layout(manual_dir)}")
        return generators

    def _generate_examples(self, annotations_path, images_dir, keep_images_without_people):
        """Yields (image id, example) in JSON order (see the module docstring for what is kept)."""
        problems = coco.ProblemCounter()
        valid = coco.load_dataset(annotations_path, problems)
        images = valid.images
        kept_ids = {image_id: [p.annotation_id for p in persons]
                    for image_id, persons in valid.persons.items()}
        del valid
        with open(annotations_path, "rb") as f:
            raw = json.load(f)["annotations"]
        by_id = _first_by_id(raw, {i for ids in kept_ids.values() for i in ids})
        del raw
        num_examples = num_persons = 0
        for info in images:
            annotations = [by_id[i] for i in kept_ids[info.image_id]]
            if not annotations:
                problems.images_without_people += 1
                if not keep_images_without_people:
                    continue
            encoded = _read_image(os.path.join(images_dir, info.file_name), info, problems)
            if encoded is None:
                continue
            num_examples += 1
            num_persons += len(annotations)
            yield info.image_id, {
                features.IMAGE: encoded,
                features.IMAGE_ID: info.image_id,
                features.HEIGHT: info.height,
                features.WIDTH: info.width,
                features.FILE_NAME: info.file_name,
                features.PERSONS: features.encode_persons(annotations, info.height, info.width),
            }
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
        problems.skip_image(coco.MISSING_IMAGE, f"{where}: cannot read ({reason}); skipped")
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size = image.format, image.size
    except Exception as error:  # PIL raises many types for a bad header
        problems.skip_image(coco.CORRUPT_IMAGE, f"{where}: not an image ({error}); skipped")
        return None
    if image_format not in _IMAGE_FORMATS:
        problems.skip_image(coco.UNSUPPORTED_IMAGE_FORMAT, f"{where}: {image_format}, not JPEG/PNG; skipped")
        return None
    if size != (info.width, info.height):
        problems.skip_image(coco.SIZE_MISMATCH, f"{where}: {size[0]}x{size[1]}, the JSON says "
                                                f"{info.width}x{info.height}; skipped")
        return None
    return data


def prepare(manual_dir, data_dir):
    """Builds (or reuses) the dataset offline and returns the prepared `Builder`.

    Args:
      manual_dir: root of the local COCO 2017 tree (see `layout.py`).
      data_dir: tfds data directory receiving `coco_person/1.0.0/`.

    Returns:
      `Builder`; `builder.as_dataset(split=...)` reads it, `builder.info.splits` lists the built splits
      and `builder.skipped_splits` the skipped ones (only when built in this call).
    """
    builder = Builder(data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir), try_download_gcs=False))
    return builder
