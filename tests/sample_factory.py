"""Builds decoded samples and serialized records from hand-made arrays, for tests."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.data import record_format

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def keypoint_array(num_persons, points):
    """[N, K, 3] float32 with (x, y, 2) at the given {(person, keypoint): (x, y)}, zero elsewhere."""
    array = np.zeros([num_persons, COCO17.num_keypoints, 3], np.float32)
    for (person, keypoint), (x, y) in points.items():
        array[person, keypoint] = (x, y, 2)
    return array


def decoded_sample(keypoints, masks, is_crowd=None, annotated=None, imputed=None):
    """A decoded sample (decoder.decode_example layout) from numpy arrays, image all grey.

    keypoints: [N, K, 3]; masks: [N, H, W] bool; is_crowd, annotated, imputed: [N] bool (default False /
    True / False).
    """
    num, height, width = masks.shape
    is_crowd = np.zeros(num, bool) if is_crowd is None else np.asarray(is_crowd, bool)
    annotated = np.ones(num, bool) if annotated is None else np.asarray(annotated, bool)
    packed = record_format.decode_packed_masks(record_format.pack_masks(masks), height, width, num)
    return {
        keys.Sample.IMAGE: tf.fill([height, width, 3], tf.constant(128, tf.uint8)),
        keys.Sample.IMAGE_ID: tf.constant(1, tf.int64),
        keys.Sample.ORIGINAL_SIZE: tf.constant([height, width], tf.int32),
        keys.Sample.KEYPOINTS: tf.constant(keypoints, tf.float32),
        keys.Sample.IS_CROWD: tf.constant(is_crowd),
        keys.Sample.ANNOTATED: tf.constant(annotated),
        keys.Sample.IMPUTED: tf.constant(np.zeros(num, bool) if imputed is None else np.asarray(imputed, bool)),
        keys.Sample.PACKED_MASKS: packed,
        keys.Sample.NUM_PERSONS: tf.constant(num, tf.int32),
    }


def identity_crop(sample):
    """The sample as if augmented with the crop equal to the image (crop pixel = image pixel)."""
    out = dict(sample)
    out[keys.Sample.CROP_TO_IMAGE] = tf.constant([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    return out


def serialized_record(image_bytes, keypoints, masks, is_crowd=None, annotated=None, image_id=1):
    """A serialized tf.train.Example in the record_format layout."""
    num, height, width = masks.shape
    is_crowd = np.zeros(num, bool) if is_crowd is None else np.asarray(is_crowd, bool)
    annotated = np.ones(num, bool) if annotated is None else np.asarray(annotated, bool)

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))

    def raw(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    feature = {
        record_format.IMAGE_ENCODED: raw(image_bytes),
        record_format.IMAGE_HEIGHT: ints([height]),
        record_format.IMAGE_WIDTH: ints([width]),
        record_format.IMAGE_ID: ints([image_id]),
        record_format.IMAGE_FILENAME: raw(b"synthetic.png"),
        record_format.PERSON_KEYPOINTS: floats(np.asarray(keypoints).ravel()),
        record_format.PERSON_IS_CROWD: ints(is_crowd),
        record_format.PERSON_ANNOTATED: ints(annotated),
        record_format.PERSON_IMPUTED: ints(np.zeros(num, bool)),
        record_format.PERSON_ID: ints(range(1, num + 1)),
        record_format.PERSON_AREA: floats(masks.reshape(num, -1).sum(axis=1)),
        record_format.PERSON_BBOX: floats(np.zeros(4 * num)),
        record_format.PERSON_MASKS: raw(record_format.pack_masks(masks)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
