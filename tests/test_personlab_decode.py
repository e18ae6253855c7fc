"""The whole decoder on perfect maps: poses, scores, masks, padding, zero detections, tf.function, batches."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.tasks.personlab import synthetic_maps
from personlab_tf.tasks.personlab.decode import PersonLabDecoding, decode, decode_batch

from decode_cases import CELLS, STRIDE, match, perfect_maps, two_persons

RADIUS = 32.0
MAP_SPECS = {
    keys.Map.HEATMAPS: tf.TensorSpec([None, None, COCO17.num_keypoints]),
    keys.Map.SHORT_OFFSETS: tf.TensorSpec([None, None, COCO17.num_keypoints, 2]),
    keys.Map.MID_OFFSETS: tf.TensorSpec([None, None, COCO17.num_edges, 2]),
    keys.Map.SEGMENTATION: tf.TensorSpec([None, None, 1]),
    keys.Map.LONG_OFFSETS: tf.TensorSpec([None, None, COCO17.num_keypoints, 2]),
}


def check_two_persons(result, persons, cells=CELLS):
    """Both persons exactly, best first, padded slots empty, and masks that split the body pixels."""
    count = int(result[keys.Detection.NUM_DETECTIONS])
    assert count == 2
    keypoints = result[keys.Detection.KEYPOINTS].numpy()
    which, error = match(keypoints[:count], persons)
    assert sorted(which) == [0, 1] and error < 1e-3
    scores = result[keys.Detection.INSTANCE_SCORES].numpy()
    assert scores[0] >= scores[1] > 0.9   # perfect peaks: Expected-OKS ~ p = 1
    assert not keypoints[count:].any() and not scores[count:].any()
    assert not result[keys.Detection.KEYPOINT_SCORES].numpy()[count:].any()
    if keys.Detection.MASKS in result:
        masks = result[keys.Detection.MASKS].numpy()
        assert masks.shape == (20, cells, cells) and not masks[count:].any()
        size = (cells - 1) * STRIDE + 1
        owners = synthetic_maps.body_owners(persons, size, size, STRIDE)
        for slot, person in enumerate(which):
            np.testing.assert_array_equal(masks[slot], owners == person)


def test_two_persons_from_perfect_maps():
    persons = two_persons()
    check_two_persons(decode(perfect_maps(persons), STRIDE, RADIUS, COCO17), persons)


@pytest.mark.parametrize("scoring, nms", [("hough", "soft"), ("expected_oks", "hard"), ("hough", "hard")])
def test_scoring_and_nms_variants(scoring, nms):
    persons = two_persons()
    result = decode(perfect_maps(persons), STRIDE, RADIUS, COCO17, PersonLabDecoding(scoring=scoring, nms=nms), with_masks=False)
    assert keys.Detection.MASKS not in result
    count = int(result[keys.Detection.NUM_DETECTIONS])
    assert count == 2 and match(result[keys.Detection.KEYPOINTS].numpy()[:count], persons)[1] < 1e-3


def test_max_detections():
    result = decode(perfect_maps(two_persons()), STRIDE, RADIUS, COCO17, PersonLabDecoding(max_detections=1))
    assert int(result[keys.Detection.NUM_DETECTIONS]) == 1
    assert result[keys.Detection.KEYPOINTS].shape == (1, COCO17.num_keypoints, 2)
    assert result[keys.Detection.MASKS].shape == (1, CELLS, CELLS)


def test_zero_seeds_give_zero_detections():
    result = decode(perfect_maps(np.zeros([0, COCO17.num_keypoints, 2], np.float32)), STRIDE, RADIUS, COCO17)
    assert int(result[keys.Detection.NUM_DETECTIONS]) == 0
    assert result[keys.Detection.KEYPOINTS].shape == (20, COCO17.num_keypoints, 2)
    assert result[keys.Detection.MASKS].shape == (20, CELLS, CELLS)
    assert not any(result[key].numpy().any() for key in result)


def test_unknown_map_size_in_a_tf_function_and_a_batch_of_two():
    single = tf.function(lambda maps: decode(maps, STRIDE, RADIUS, COCO17), input_signature=[MAP_SPECS])
    batched_specs = {key: tf.TensorSpec([None] + spec.shape.as_list(), spec.dtype)
                     for key, spec in MAP_SPECS.items()}
    batched = tf.function(lambda maps: decode_batch(maps, STRIDE, RADIUS, COCO17), input_signature=[batched_specs])

    persons = two_persons()
    check_two_persons(single(perfect_maps(persons)), persons)
    small = persons * 0.5 + 4       # another map size through the same graph: 21 x 21 cells
    small_maps = perfect_maps(np.round(small / STRIDE) * STRIDE, cells=21)
    assert int(single(small_maps)[keys.Detection.NUM_DETECTIONS]) >= 1
    assert int(single(perfect_maps(np.zeros([0, COCO17.num_keypoints, 2], np.float32)))[keys.Detection.NUM_DETECTIONS]) == 0

    empty = perfect_maps(np.zeros([0, COCO17.num_keypoints, 2], np.float32))
    both = {key: tf.stack([perfect_maps(persons)[key], empty[key]]) for key in MAP_SPECS}
    result = batched(both)
    assert result[keys.Detection.NUM_DETECTIONS].numpy().tolist() == [2, 0]
    assert result[keys.Detection.MASKS].shape == (2, 20, CELLS, CELLS)
    check_two_persons({key: value[0] for key, value in result.items()}, persons)


def test_saved_model_round_trip(tmp_path):
    module = tf.Module()
    module.decode = tf.function(lambda maps: decode(maps, STRIDE, RADIUS, COCO17), input_signature=[MAP_SPECS])
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    persons = two_persons()
    check_two_persons(loaded.decode(perfect_maps(persons)), persons)
    empty = perfect_maps(np.zeros([0, COCO17.num_keypoints, 2], np.float32))
    assert int(loaded.decode(empty)[keys.Detection.NUM_DETECTIONS]) == 0
