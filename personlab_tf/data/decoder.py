"""Serialized `tf.train.Example` (see record_format.py) -> decoded sample dict (keys.py)."""

import tensorflow as tf

from personlab_tf import constants, keys
from personlab_tf.data import record_format


def drop_imputed_keypoints(sample):
    """The sample as if written without imputed keypoints: imputed persons lose them and are not annotated."""
    imputed = sample[keys.IMPUTED]
    out = dict(sample)
    out[keys.KEYPOINTS] = tf.where(imputed[:, tf.newaxis, tf.newaxis], 0.0, sample[keys.KEYPOINTS])
    out[keys.ANNOTATED] = sample[keys.ANNOTATED] & ~imputed
    return out


def decode_example(serialized, with_parts=False):
    """Parses and decodes one record.

    Args:
      serialized: [] string, one `tf.train.Example`.
      with_parts: also decode the part labels: keys.PART_LABELS [H, W] uint8 (zeros when the record has
        none) and keys.HAS_PARTS [N] bool (False when the record has none).

    Returns:
      dict with keys.IMAGE [H, W, 3] uint8 (grey and RGBA images become RGB), keys.IMAGE_ID [] int64,
      keys.IMAGE_SIZE [2] int32 (height, width), keys.KEYPOINTS [N, K, 3] float32 (x, y, v) with pixel
      centres at integer coordinates, keys.IS_CROWD [N] bool, keys.ANNOTATED [N] bool, keys.IMPUTED [N] bool,
      keys.PACKED_MASKS [H, W, ceil(N/8)] uint8 and keys.NUM_PERSONS [] int32.
    """
    features = tf.io.parse_single_example(serialized, record_format.FEATURE_SPEC)
    height = tf.cast(features[record_format.IMAGE_HEIGHT], tf.int32)
    width = tf.cast(features[record_format.IMAGE_WIDTH], tf.int32)
    image = tf.io.decode_image(features[record_format.IMAGE_ENCODED], channels=3,
                               expand_animations=False)
    image = tf.ensure_shape(image, [None, None, 3])
    keypoints = tf.reshape(tf.sparse.to_dense(features[record_format.PERSON_KEYPOINTS]),
                           [-1, constants.NUM_KEYPOINTS, 3])
    num_persons = tf.shape(keypoints)[0]
    is_crowd = tf.sparse.to_dense(features[record_format.PERSON_IS_CROWD]) > 0
    annotated = tf.sparse.to_dense(features[record_format.PERSON_ANNOTATED]) > 0
    imputed = tf.sparse.to_dense(features[record_format.PERSON_IMPUTED]) > 0
    packed = record_format.decode_packed_masks(features[record_format.PERSON_MASKS], height, width,
                                               num_persons)
    sample = {
        keys.IMAGE: image,
        keys.IMAGE_ID: features[record_format.IMAGE_ID],
        keys.IMAGE_SIZE: tf.stack([height, width]),
        keys.KEYPOINTS: keypoints,
        keys.IS_CROWD: is_crowd,
        keys.ANNOTATED: annotated,
        keys.IMPUTED: imputed,
        keys.PACKED_MASKS: packed,
        keys.NUM_PERSONS: num_persons,
    }
    if with_parts:
        sample[keys.PART_LABELS] = record_format.decode_part_labels(features[record_format.IMAGE_PART_LABELS],
                                                                    height, width)
        has_parts = tf.sparse.to_dense(features[record_format.PERSON_HAS_PARTS]) > 0
        sample[keys.HAS_PARTS] = tf.concat([has_parts, tf.zeros([num_persons - tf.size(has_parts)], tf.bool)], 0)
    return sample
