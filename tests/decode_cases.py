"""Hand-made decoding cases shared by tests/test_personlab_decode.py and tests/test_personlab_greedy.py."""

import numpy as np
import tensorflow as tf

from personlab_tf.tasks.personlab import synthetic_maps

STRIDE = 8
CELLS = 40  # 40 x 40 cells at stride 8: a 313 x 313 pixel image


def two_persons():
    """[2, K, 2] keypoints of two standing persons 144 px apart, every keypoint on a cell centre."""
    template = np.round(synthetic_maps.POSE_TEMPLATE * 160 / STRIDE) * STRIDE
    return np.stack([template + (88, 176), template + (232, 184)]).astype(np.float32)


def perfect_maps(keypoints, cells=CELLS, stride=STRIDE):
    """synthetic_maps.perfect_maps of `keypoints` as tf constants on a cells x cells grid."""
    size = (cells - 1) * stride + 1
    return {k: tf.constant(v) for k, v in synthetic_maps.perfect_maps(keypoints, size, size, stride).items()}


def match(decoded, expected):
    """Index of the expected person nearest to each decoded person, and the largest keypoint error."""
    errors = np.abs(decoded[:, np.newaxis] - expected[np.newaxis]).max(axis=(2, 3))
    return errors.argmin(axis=1), errors.min(axis=1).max()
