"""The tf.data pipeline: records -> batched (features, targets), deterministic on request."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from personlab_tf import constants, keys
from personlab_tf.data import decoder, pipeline, record_format
from sample_factory import keypoint_array, serialized_record

CROP = 129
STRIDE = 8
GRID = 17


def png_bytes(height, width, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 255, [height, width, channels], dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array.squeeze(-1) if mode == "L" else array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def record_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("records") / "data-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(6):
            height, width = 60 + 10 * i, 90
            num = i % 3 + 1
            kp = keypoint_array(num, {(n, k): (10 + 5 * n + k, 20 + k) for n in range(num) for k in range(0, 17, 3)})
            masks = np.zeros([num, height, width], bool)
            for n in range(num):
                masks[n, 10 + n:40, 5 + 10 * n:50] = True
            writer.write(serialized_record(png_bytes(height, width, i), kp, masks, image_id=100 + i))
    return str(path)


def test_decoder_reads_grey_rgba_and_masks():
    masks = np.zeros([9, 12, 16], bool)
    masks[8, 3:5, 4:9] = True
    masks[0, 0, 0] = True
    for mode in ("L", "RGBA"):
        sample = decoder.decode_example(serialized_record(png_bytes(12, 16, 0, mode), keypoint_array(9, {}), masks))
        assert sample[keys.IMAGE].shape == (12, 16, 3)
        assert sample[keys.PACKED_MASKS].shape == (12, 16, 2)
        unpacked = record_format.unpack_bits(sample[keys.PACKED_MASKS], sample[keys.NUM_PERSONS]).numpy()
        np.testing.assert_array_equal(np.transpose(unpacked, (2, 0, 1)), masks)
        assert sample[keys.KEYPOINTS].shape == (9, constants.NUM_KEYPOINTS, 3)


def test_numpy_and_graph_unpacking_agree():
    rng = np.random.default_rng(3)
    masks = rng.random([13, 7, 5]) < 0.4
    data = record_format.pack_masks(masks)
    np.testing.assert_array_equal(record_format.unpack_masks_numpy(data, 13, 7, 5), masks)
    packed = record_format.decode_packed_masks(tf.constant(data), 7, 5, 13)
    np.testing.assert_array_equal(np.transpose(record_format.unpack_bits(packed, 13).numpy(), (2, 0, 1)), masks)


def test_training_batches_have_the_documented_shapes(record_file):
    dataset = pipeline.build_dataset(record_file, batch_size=4, training=True, crop_size=CROP,
                                     target_stride=STRIDE, seed=1)
    features, targets = next(iter(dataset))
    assert features[keys.IMAGE].shape == (4, CROP, CROP, 3) and features[keys.IMAGE].dtype == tf.uint8
    expected = {
        keys.HEATMAPS: (4, GRID, GRID, 17), keys.HEATMAP_WEIGHTS: (4, GRID, GRID, 17),
        keys.SHORT_OFFSETS: (4, GRID, GRID, 17, 2), keys.SHORT_WEIGHTS: (4, GRID, GRID, 17),
        keys.MID_OFFSETS: (4, GRID, GRID, 32, 2), keys.MID_WEIGHTS: (4, GRID, GRID, 32),
        keys.SEGMENTATION: (4, GRID, GRID, 1), keys.SEGMENTATION_WEIGHTS: (4, GRID, GRID, 1),
        keys.LONG_OFFSETS: (4, GRID, GRID, 17, 2), keys.LONG_WEIGHTS: (4, GRID, GRID, 17),
    }
    assert {k: tuple(v.shape) for k, v in targets.items()} == expected
    assert float(tf.reduce_sum(targets[keys.HEATMAPS])) > 0


def first_batches(record_file, seed, count=3):
    dataset = pipeline.build_dataset(record_file, batch_size=2, training=True, crop_size=CROP,
                                     target_stride=STRIDE, seed=seed, deterministic=True)
    return [(f[keys.IMAGE].numpy(), t[keys.SHORT_OFFSETS].numpy()) for f, t in dataset.take(count)]


def test_same_seed_gives_the_same_batches_and_another_seed_does_not(record_file):
    first, again, other = (first_batches(record_file, s) for s in (5, 5, 6))
    for (image_a, short_a), (image_b, short_b) in zip(first, again):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(short_a, short_b)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_evaluation_pass_is_ordered_complete_and_unaugmented(record_file):
    dataset = pipeline.build_dataset(record_file, batch_size=4, training=False, crop_size=CROP,
                                     target_stride=STRIDE)
    ids = [i for f, _ in dataset for i in f[keys.IMAGE_ID].numpy()]
    assert ids == list(range(100, 106))
    maps = [m for f, _ in dataset for m in f[keys.CROP_TO_IMAGE].numpy()]
    assert all(m[0] > 0 and m[0] == m[2] for m in maps)


def test_crop_must_fit_the_stride(record_file):
    with pytest.raises(ValueError, match="multiple of the target stride"):
        pipeline.build_dataset(record_file, batch_size=1, training=True, crop_size=128, target_stride=8)


def test_missing_files_are_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        pipeline.build_dataset(str(tmp_path / "nothing-here-*.tfrecord"), batch_size=1, training=True)


def test_imputed_keypoints_can_be_left_out_for_the_ablation():
    kp = keypoint_array(2, {(0, 0): (20, 20), (1, 0): (60, 60)})
    masks = np.zeros([2, 97, 97], bool)
    masks[1, 40:80, 40:80] = True
    record = serialized_record(png_bytes(97, 97, 0), kp, masks)
    example = tf.train.Example.FromString(record)
    example.features.feature[record_format.PERSON_IMPUTED].int64_list.value[:] = [0, 1]
    record = example.SerializeToString()
    seed = tf.constant([0, 0], tf.int64)

    def heat_and_weights(use_imputed):
        _, t = pipeline.sample_to_example(record, seed, False, 97, STRIDE, 16.0, {}, use_imputed)
        return t[keys.HEATMAPS][..., 0].numpy(), t[keys.HEATMAP_WEIGHTS][..., 0].numpy()

    with_heat, with_weights = heat_and_weights(True)
    without_heat, without_weights = heat_and_weights(False)
    assert with_heat[7, 7] == 1 and without_heat[7, 7] == 0          # imputed nose at (60, 60)
    assert with_heat[2, 2] == 1 and without_heat[2, 2] == 1          # labelled nose at (20, 20)
    assert with_weights[6, 6] == 1 and without_weights[6, 6] == 0    # its mask becomes an ignored region
