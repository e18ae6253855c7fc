"""Serialized `tf.train.Example` (see record_format.py) -> decoded sample dict (keys.py)."""

from typing import Dict

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import coco_records, record_format, writer


def drop_imputed_keypoints(sample: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The sample as if written without imputed keypoints: imputed persons lose them and are not annotated."""
    imputed = sample[keys.Sample.IMPUTED]
    out = dict(sample)
    out[keys.Sample.KEYPOINTS] = tf.where(imputed[:, tf.newaxis, tf.newaxis], 0.0, sample[keys.Sample.KEYPOINTS])
    out[keys.Sample.ANNOTATED] = sample[keys.Sample.ANNOTATED] & ~imputed
    return out


def decode_example(serialized: tf.Tensor, num_keypoints: int, with_parts: bool = False) -> Dict[str, tf.Tensor]:
    """Parses and decodes one record.

    Args:
      serialized: [] string, one `tf.train.Example`.
      num_keypoints: K of the records' skeleton (checked against the configuration before training,
        pipeline.check_records_skeleton).
      with_parts: also decode the part labels: keys.Sample.PART_LABELS [H, W] uint8 (zeros when the record
        has none) and keys.Sample.HAS_PARTS [N] bool (False when the record has none).

    Returns:
      dict of keys.Sample: IMAGE [H, W, 3] uint8 (grey and RGBA images become RGB), IMAGE_ID [] int64,
      ORIGINAL_SIZE [2] int32 (height, width), KEYPOINTS [N, K, 3] float32 (x, y, v) with pixel centres at
      integer coordinates, IS_CROWD [N] bool, ANNOTATED [N] bool, IMPUTED [N] bool, PACKED_MASKS
      [H, W, ceil(N/8)] uint8 and NUM_PERSONS [] int32.
    """
    features = tf.io.parse_single_example(serialized, record_format.FEATURE_SPEC)
    height = tf.cast(features[record_format.IMAGE_HEIGHT], tf.int32)
    width = tf.cast(features[record_format.IMAGE_WIDTH], tf.int32)
    image = tf.io.decode_image(features[record_format.IMAGE_ENCODED], channels=3,
                               expand_animations=False)
    image = tf.ensure_shape(image, [None, None, 3])
    keypoints = tf.reshape(tf.sparse.to_dense(features[record_format.PERSON_KEYPOINTS]),
                           [-1, num_keypoints, 3])
    num_persons = tf.shape(keypoints)[0]
    is_crowd = tf.sparse.to_dense(features[record_format.PERSON_IS_CROWD]) > 0
    annotated = tf.sparse.to_dense(features[record_format.PERSON_ANNOTATED]) > 0
    imputed = tf.sparse.to_dense(features[record_format.PERSON_IMPUTED]) > 0
    packed = record_format.decode_packed_masks(features[record_format.PERSON_MASKS], height, width,
                                               num_persons)
    sample = {
        keys.Sample.IMAGE: image,
        keys.Sample.IMAGE_ID: features[record_format.IMAGE_ID],
        keys.Sample.ORIGINAL_SIZE: tf.stack([height, width]),
        keys.Sample.KEYPOINTS: keypoints,
        keys.Sample.IS_CROWD: is_crowd,
        keys.Sample.ANNOTATED: annotated,
        keys.Sample.IMPUTED: imputed,
        keys.Sample.PACKED_MASKS: packed,
        keys.Sample.NUM_PERSONS: num_persons,
    }
    if with_parts:
        sample[keys.Sample.PART_LABELS] = record_format.decode_part_labels(
            features[record_format.IMAGE_PART_LABELS], height, width)
        has_parts = tf.sparse.to_dense(features[record_format.PERSON_HAS_PARTS]) > 0
        sample[keys.Sample.HAS_PARTS] = tf.concat([has_parts, tf.zeros([num_persons - tf.size(has_parts)], tf.bool)],
                                                  0)
    return sample


def decode_record(record: coco_records.ImageRecord, num_keypoints: int, with_parts: bool = False) -> dict:
    """The decoded sample of a `coco_records.ImageRecord`, through its record exactly as training reads it (the
    oracles and the part-parsing evaluation); num_keypoints and with_parts as in `decode_example`."""
    return decode_example(tf.constant(writer.image_example(record).SerializeToString()), num_keypoints,
                          with_parts)
