"""COCO person records -> `tf.train.Example`s in round-robin TFRecord shards.

The feature layout is `record_format`'s; records stream through one image at a time, so memory holds
a single image's masks however large the dataset.

A conversion replaces the shards of its prefix as a whole (docs/operations.md): the shards are written under
hidden temporary names, renamed into place only when at least one image was written, and then the shards of
the same prefix with another shard count (an earlier run's `PREFIX-*-of-0000M.tfrecord`, which a training glob
`PREFIX-*` would also read) are removed. A conversion that fails or writes no image leaves the existing shards
as they were.
"""

import os
import re
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from personlab_tf.data import coco, coco_problems, coco_records, record_format
from personlab_tf.data import part_labels as part_labels_lib
from personlab_tf.skeleton import Skeleton

# Keys of the summary returned by `convert` (and printed by scripts/create_tfrecords.py).
IMAGES_WRITTEN = "images_written"
PERSONS = "persons"
CROWD_REGIONS = "crowd_regions"
ANNOTATED_PERSONS = "annotated_persons"
IMPUTED_PERSONS = "imputed_persons"
SHARDS = "shards"
IMAGES_WITHOUT_PEOPLE = "images_without_people"
IMAGES_SKIPPED = "images_skipped"
PERSONS_WITH_PARTS = "persons_with_parts"   # only when part labels are converted
SKELETON = "skeleton"
WARNINGS = "warnings"
STALE_SHARDS_REMOVED = "stale_shards_removed"


class NothingWrittenError(coco.AnnotationError):
    """No record reached the shards; the existing shards of the prefix are unchanged."""


def _bytes_feature(value):
    """A feature holding one bytes value."""
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(values):
    """A feature holding the int64 values of a scalar or array, flattened in C order."""
    return tf.train.Feature(int64_list=tf.train.Int64List(value=np.ravel(values).astype(np.int64)))


def _float_feature(values):
    """A feature holding the float32 values of a scalar or array, flattened in C order."""
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).astype(np.float32)))


def image_example(record: coco_records.ImageRecord) -> tf.train.Example:
    """The `tf.train.Example` of a `coco_records.ImageRecord`, with exactly the features of `record_format`.

    Keypoints are flattened from [N, K, 3] (x, y, v) and boxes from [N, 4]; masks [N, H, W] are packed
    with `record_format.pack_masks`.
    """
    features = {
        record_format.IMAGE_ENCODED: _bytes_feature(record.encoded),
        record_format.IMAGE_HEIGHT: _int64_feature(record.height),
        record_format.IMAGE_WIDTH: _int64_feature(record.width),
        record_format.IMAGE_ID: _int64_feature(record.image_id),
        record_format.IMAGE_FILENAME: _bytes_feature(record.file_name.encode("utf-8")),
        record_format.IMAGE_SKELETON: _bytes_feature(record.skeleton.encode("utf-8")),
        record_format.PERSON_KEYPOINTS: _float_feature(record.keypoints),
        record_format.PERSON_IS_CROWD: _int64_feature(record.is_crowd),
        record_format.PERSON_ANNOTATED: _int64_feature(record.annotated),
        record_format.PERSON_IMPUTED: _int64_feature(record.imputed),
        record_format.PERSON_ID: _int64_feature(record.annotation_ids),
        record_format.PERSON_AREA: _float_feature(record.areas),
        record_format.PERSON_BBOX: _float_feature(record.bboxes),
        record_format.PERSON_MASKS: _bytes_feature(record_format.pack_masks(record.masks)),
        record_format.IMAGE_PART_LABELS: _bytes_feature(record_format.pack_part_labels(record.part_labels)),
        record_format.PERSON_HAS_PARTS: _int64_feature(record.has_parts if record.part_labels is not None
                                                       else np.zeros_like(record.has_parts)),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


def shard_paths(prefix: str, num_shards: int) -> List[str]:
    """The shard file names `{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord`, i = 0 .. num_shards - 1."""
    return [f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]


def _partial_path(path):
    """The hidden name a shard is written under until the conversion succeeds (no `PREFIX-*` glob matches it)."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.partial")


def _stale_shards(prefix, num_shards):
    """The existing shards of `prefix` written with another shard count (`shard_paths` names), sorted."""
    directory, base = os.path.split(prefix)
    pattern = re.compile(rf"^{re.escape(base)}-\d{{5}}-of-\d{{5}}\.tfrecord$")
    current = {os.path.basename(path) for path in shard_paths(prefix, num_shards)}
    names = tf.io.gfile.listdir(directory or ".")
    return sorted(os.path.join(directory, name) for name in names if pattern.match(name) and name not in current)


def _empty_counts():
    """Per-record tallies of the summary, all zero."""
    return dict.fromkeys((IMAGES_WRITTEN, PERSONS, CROWD_REGIONS, ANNOTATED_PERSONS, IMPUTED_PERSONS,
                          PERSONS_WITH_PARTS), 0)


def _count(counts, record):
    """Adds one written `coco_records.ImageRecord` to `counts`, in place."""
    counts[IMAGES_WRITTEN] += 1
    counts[PERSONS] += len(record.annotation_ids)
    counts[CROWD_REGIONS] += int(np.sum(record.is_crowd))
    counts[ANNOTATED_PERSONS] += int(np.sum(record.annotated))
    counts[IMPUTED_PERSONS] += int(np.sum(record.imputed))
    if record.part_labels is not None:
        counts[PERSONS_WITH_PARTS] += int(np.sum(record.has_parts))


def write_shards(records: Iterable[coco_records.ImageRecord], prefix: str, num_shards: int,
                 log_every: int = 100) -> Dict[str, Any]:
    """Writes records round-robin (record i to shard i % num_shards), one at a time.

    All `num_shards` files are created, empty ones included; the output directory is created if needed.

    Args:
      records: iterable of `coco_records.ImageRecord`.
      prefix: path prefix of the shards (see `shard_paths`).
      num_shards: number of shards, >= 1.
      log_every: log progress every this many images.

    Returns:
      dict with IMAGES_WRITTEN, PERSONS, CROWD_REGIONS, ANNOTATED_PERSONS, IMPUTED_PERSONS,
      PERSONS_WITH_PARTS, and STALE_SHARDS_REMOVED (the paths removed, module docstring).

    Raises:
      NothingWrittenError: no record at all; the shards of `prefix` already there are left unchanged.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    directory = os.path.dirname(prefix)
    if directory:
        tf.io.gfile.makedirs(directory)
    paths = shard_paths(prefix, num_shards)
    partial = [_partial_path(path) for path in paths]
    writers = [tf.io.TFRecordWriter(path) for path in partial]
    counts = _empty_counts()
    try:
        try:
            for index, record in enumerate(records):
                writers[index % num_shards].write(image_example(record).SerializeToString())
                _count(counts, record)
                if counts[IMAGES_WRITTEN] % log_every == 0:
                    logging.info("wrote %d images", counts[IMAGES_WRITTEN])
        finally:
            for writer in writers:
                writer.close()
        if not counts[IMAGES_WRITTEN]:
            raise NothingWrittenError(f"no image to write to {prefix}-*")
        for source, target in zip(partial, paths):
            tf.io.gfile.rename(source, target, overwrite=True)
    finally:
        for path in partial:
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
    counts[STALE_SHARDS_REMOVED] = _stale_shards(prefix, num_shards)
    for path in counts[STALE_SHARDS_REMOVED]:
        logging.warning("removing %s, a shard of an earlier conversion with another shard count", path)
        tf.io.gfile.remove(path)
    return counts


def convert(annotations_path: str, images_dir: str, output_prefix: str, num_shards: int = 1,
            imputed_path: Optional[str] = None, part_labels_dir: Optional[str] = None,
            num_part_classes: Optional[int] = None, skeleton: Optional[Skeleton] = None) -> Dict[str, Any]:
    """COCO person-keypoints JSON + images directory (+ part label maps) -> TFRecord shards.

    Args:
      annotations_path: COCO person-keypoints JSON.
      images_dir: directory of the image files.
      output_prefix: shard path prefix (see `shard_paths`).
      num_shards: number of shards, >= 1.
      imputed_path: optional imputed keypoints JSON (see `coco.load_dataset`).
      part_labels_dir: optional directory of part label PNGs (data/part_labels.py).
      num_part_classes: classes of their part set (required with `part_labels_dir`).
      skeleton: the `Skeleton` of the keypoints; None: the annotation file's (coco.load_dataset).

    Returns:
      The summary: IMAGES_WRITTEN, PERSONS (crowd regions included), CROWD_REGIONS, ANNOTATED_PERSONS,
      IMPUTED_PERSONS, SHARDS, IMAGES_WITHOUT_PEOPLE, IMAGES_SKIPPED, WARNINGS {kind: count} with
      the kinds that occurred, sorted, STALE_SHARDS_REMOVED, SKELETON (the name written into every record),
      and with part labels PERSONS_WITH_PARTS.

    Raises:
      coco.AnnotationError: an input file or the images directory is unusable, or no image is left to
        write (the message says why); nothing is written.
    """
    problems = coco_problems.ProblemCounter()
    dataset = coco.load_dataset(annotations_path, problems, imputed_path, skeleton)
    logging.info("keypoints of %s: skeleton %s", annotations_path, dataset.skeleton.describe())
    records = coco_records.iter_image_records(dataset, images_dir, problems)
    if part_labels_dir is not None:
        if not os.path.isdir(part_labels_dir):
            raise coco.AnnotationError(f"part labels directory {part_labels_dir} does not exist")
        records = part_labels_lib.attach_part_labels(records, part_labels_dir, num_part_classes, problems)
    try:
        summary = write_shards(records, output_prefix, num_shards)
    except NothingWrittenError as error:
        raise NothingWrittenError(
            f"{error}: of the {len(dataset.images)} valid images in {annotations_path}, "
            f"{problems.images_without_people} have no person and {problems.images_skipped} were skipped "
            f"({', '.join(f'{kind}: {count}' for kind, count in sorted(problems.warnings.items())) or 'no warning'}); "
            "the shards already there are unchanged") from None
    if part_labels_dir is None:
        del summary[PERSONS_WITH_PARTS]
    logging.info("wrote %d images to %d shards", summary[IMAGES_WRITTEN], num_shards)
    summary[SHARDS] = num_shards
    summary[IMAGES_WITHOUT_PEOPLE] = problems.images_without_people
    summary[IMAGES_SKIPPED] = problems.images_skipped
    summary[WARNINGS] = dict(sorted(problems.warnings.items()))
    summary[STALE_SHARDS_REMOVED] = summary.pop(STALE_SHARDS_REMOVED)
    summary[SKELETON] = dataset.skeleton.name
    return summary
