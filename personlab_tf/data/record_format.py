"""The TFRecord layout of one image and its person annotations, and the person-mask packing.

One `tf.train.Example` per image that contains at least one person annotation (crowd included):

| feature              | type          | content                                                         |
| -------------------- | ------------- | --------------------------------------------------------------- |
| image/encoded        | bytes         | the image file as it was on disk (JPEG or PNG)                  |
| image/height, width  | int64         | image size in pixels                                            |
| image/id             | int64         | COCO image id                                                   |
| image/filename       | bytes         | file name inside the images directory                          |
| image/skeleton       | bytes         | name of the skeleton of the keypoints (personlab_tf/skeleton.py); absent: coco17 |
| person/keypoints     | float list    | N * K * 3 values (x, y, v), the skeleton's order, pixel centres at integers |
| person/is_crowd      | int64 list    | N flags                                                         |
| person/annotated     | int64 list    | N flags: labelled (v > 0) or imputed keypoints                  |
| person/imputed       | int64 list    | N flags: keypoints come from --imputed_keypoints (paper §3.3)   |
| person/id            | int64 list    | N COCO annotation ids                                           |
| person/area          | float list    | N COCO areas                                                    |
| person/bbox          | float list    | N * 4 COCO boxes (x, y, width, height)                          |
| person/masks         | bytes         | zlib of the [H, W, B] uint8 packed masks, B = max(1, ceil(N/8)) |
| image/part_labels    | bytes         | optional: zlib of the [H, W] uint8 part class map (0 background) |
| person/has_parts     | int64 list    | optional: N flags, the person's pixels carry part labels         |

Masks are packed eight persons to a byte: bit `n % 8` (least significant first) of byte `n // 8` is
person n's mask at that pixel; unused bits are zero, and an image without persons still stores one
(zero) byte per pixel so that every gather has something to read. Packing keeps 30 full-resolution masks in a few hundred kilobytes and
lets the pipeline sample them at the target grid before unpacking.

The part features (instance-aware part parsing, personlab_tf.tasks.parts) are empty in records written without
part labels: one class map per image; a person's parts are the map restricted to its mask.
"""

import zlib
from typing import Optional, Union

import numpy as np
import tensorflow as tf

from personlab_tf import skeleton

IMAGE_ENCODED = "image/encoded"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_ID = "image/id"
IMAGE_FILENAME = "image/filename"
IMAGE_SKELETON = "image/skeleton"
PERSON_KEYPOINTS = "person/keypoints"
PERSON_IS_CROWD = "person/is_crowd"
PERSON_ANNOTATED = "person/annotated"
PERSON_IMPUTED = "person/imputed"
PERSON_ID = "person/id"
PERSON_AREA = "person/area"
PERSON_BBOX = "person/bbox"
PERSON_MASKS = "person/masks"
IMAGE_PART_LABELS = "image/part_labels"
PERSON_HAS_PARTS = "person/has_parts"

FEATURE_SPEC = {
    IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
    IMAGE_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64),
    IMAGE_ID: tf.io.FixedLenFeature([], tf.int64),
    IMAGE_FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
    IMAGE_SKELETON: tf.io.FixedLenFeature([], tf.string, default_value=skeleton.COCO17.name),
    PERSON_KEYPOINTS: tf.io.VarLenFeature(tf.float32),
    PERSON_IS_CROWD: tf.io.VarLenFeature(tf.int64),
    PERSON_ANNOTATED: tf.io.VarLenFeature(tf.int64),
    PERSON_IMPUTED: tf.io.VarLenFeature(tf.int64),
    PERSON_ID: tf.io.VarLenFeature(tf.int64),
    PERSON_AREA: tf.io.VarLenFeature(tf.float32),
    PERSON_BBOX: tf.io.VarLenFeature(tf.float32),
    PERSON_MASKS: tf.io.FixedLenFeature([], tf.string),
    IMAGE_PART_LABELS: tf.io.FixedLenFeature([], tf.string, default_value=""),
    PERSON_HAS_PARTS: tf.io.VarLenFeature(tf.int64),
}


def bytes_per_pixel(num_persons: Union[int, tf.Tensor]) -> Union[int, tf.Tensor]:
    """B = max(1, ceil(N / 8)) bytes per pixel of the packed masks; N is an int or an int tensor."""
    if isinstance(num_persons, int):
        return max(1, (num_persons + 7) // 8)
    return tf.maximum((num_persons + 7) // 8, 1)


def pack_masks(masks: np.ndarray) -> bytes:
    """Packs person masks into zlib-compressed bytes.

    Args:
      masks: [N, H, W] array, nonzero inside person n's mask.

    Returns:
      bytes: zlib of the [H, W, B] uint8 packed array (C order), B = bytes_per_pixel(N).
    """
    masks = np.asarray(masks) != 0
    if masks.shape[0] == 0:
        masks = np.zeros((1,) + masks.shape[1:], bool)
    packed = np.packbits(np.transpose(masks, (1, 2, 0)), axis=-1, bitorder="little")
    return zlib.compress(np.ascontiguousarray(packed).tobytes(), 1)


def unpack_masks_numpy(data: bytes, num_persons: int, height: int, width: int) -> np.ndarray:
    """Inverse of `pack_masks` in numpy: returns [N, H, W] bool."""
    num_bytes = bytes_per_pixel(num_persons)
    packed = np.frombuffer(zlib.decompress(data), np.uint8).reshape(height, width, num_bytes)
    bits = np.unpackbits(packed, axis=-1, bitorder="little")[..., :num_persons]
    return np.transpose(bits, (2, 0, 1)).astype(bool)


def decode_packed_masks(data: tf.Tensor, height: tf.Tensor, width: tf.Tensor, num_persons: tf.Tensor) -> tf.Tensor:
    """Decompresses packed masks in the graph.

    Args:
      data: [] string, the `person/masks` feature.
      height, width, num_persons: [] int scalars.

    Returns:
      [height, width, B] uint8, B = bytes_per_pixel(num_persons).
    """
    num_bytes = bytes_per_pixel(num_persons)
    raw = tf.io.decode_raw(tf.io.decode_compressed(data, compression_type="ZLIB"), tf.uint8)
    return tf.reshape(raw, tf.stack([height, width, num_bytes]))


def pack_part_labels(labels: Optional[np.ndarray]) -> bytes:
    """zlib bytes of a [H, W] uint8 part class map (C order); b"" for None (no part labels)."""
    if labels is None:
        return b""
    return zlib.compress(np.ascontiguousarray(labels, np.uint8).tobytes(), 1)


def unpack_part_labels_numpy(data: bytes, height: int, width: int) -> Optional[np.ndarray]:
    """Inverse of `pack_part_labels` in numpy: [H, W] uint8, or None for b""."""
    if not data:
        return None
    return np.frombuffer(zlib.decompress(data), np.uint8).reshape(height, width)


def decode_part_labels(data: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """The [height, width] uint8 part class map of the `image/part_labels` feature, zeros when it is empty."""
    return tf.cond(tf.strings.length(data) > 0,
                   lambda: tf.reshape(tf.io.decode_raw(tf.io.decode_compressed(data, compression_type="ZLIB"),
                                                       tf.uint8), tf.stack([height, width])),
                   lambda: tf.zeros(tf.stack([height, width]), tf.uint8))


def unpack_bits(packed: tf.Tensor, num_persons: Union[int, tf.Tensor]) -> tf.Tensor:
    """Unpacks [..., B] uint8 packed masks into [..., num_persons] bool (bit n % 8 of byte n // 8)."""
    shifts = tf.constant(list(range(8)), dtype=tf.uint8)
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(packed[..., tf.newaxis], shifts), 1)
    flat = tf.reshape(bits, tf.concat([tf.shape(packed)[:-1], [-1]], axis=0))
    return tf.cast(flat[..., :num_persons], tf.bool)

