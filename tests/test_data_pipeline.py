"""The tf.data pipeline: records -> batched (features, targets), deterministic on request, and a resumed stream
that continues where it stopped."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.data import decoder, pipeline, record_format
from personlab_tf.tasks.personlab.targets import PersonLabData
from personlab_tf.tasks.personlab.task import PersonLabTask

from sample_factory import keypoint_array, serialized_record

CROP = 129
STRIDE = 8
GRID = 17
TASK = PersonLabTask(data=PersonLabData(CROP, STRIDE))


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
        sample = decoder.decode_example(serialized_record(png_bytes(12, 16, 0, mode), keypoint_array(9, {}), masks), COCO17.num_keypoints)
        assert sample[keys.Sample.IMAGE].shape == (12, 16, 3)
        assert sample[keys.Sample.PACKED_MASKS].shape == (12, 16, 2)
        unpacked = record_format.unpack_bits(sample[keys.Sample.PACKED_MASKS], sample[keys.Sample.NUM_PERSONS]).numpy()
        np.testing.assert_array_equal(np.transpose(unpacked, (2, 0, 1)), masks)
        assert sample[keys.Sample.KEYPOINTS].shape == (9, COCO17.num_keypoints, 3)


def test_numpy_and_graph_unpacking_agree():
    rng = np.random.default_rng(3)
    masks = rng.random([13, 7, 5]) < 0.4
    data = record_format.pack_masks(masks)
    np.testing.assert_array_equal(record_format.unpack_masks_numpy(data, 13, 7, 5), masks)
    packed = record_format.decode_packed_masks(tf.constant(data), 7, 5, 13)
    np.testing.assert_array_equal(np.transpose(record_format.unpack_bits(packed, 13).numpy(), (2, 0, 1)), masks)


def test_training_batches_have_the_documented_shapes(record_file):
    dataset = TASK.build_dataset(record_file, batch_size=4, training=True, seed=1)
    features, targets = next(iter(dataset))
    assert features[keys.Sample.IMAGE].shape == (4, CROP, CROP, 3) and features[keys.Sample.IMAGE].dtype == tf.uint8
    expected = {
        keys.Map.HEATMAPS: (4, GRID, GRID, 17), keys.Map.HEATMAP_WEIGHTS: (4, GRID, GRID, 17),
        keys.Map.SHORT_OFFSETS: (4, GRID, GRID, 17, 2), keys.Map.SHORT_WEIGHTS: (4, GRID, GRID, 17),
        keys.Map.MID_OFFSETS: (4, GRID, GRID, 32, 2), keys.Map.MID_WEIGHTS: (4, GRID, GRID, 32),
        keys.Map.SEGMENTATION: (4, GRID, GRID, 1), keys.Map.SEGMENTATION_WEIGHTS: (4, GRID, GRID, 1),
        keys.Map.LONG_OFFSETS: (4, GRID, GRID, 17, 2), keys.Map.LONG_WEIGHTS: (4, GRID, GRID, 17),
    }
    assert {k: tuple(v.shape) for k, v in targets.items()} == expected
    assert float(tf.reduce_sum(targets[keys.Map.HEATMAPS])) > 0


def first_batches(record_file, seed, count=3, start_batch=0, batch_size=2):
    dataset = TASK.build_dataset(record_file, batch_size=batch_size, training=True, seed=seed, deterministic=True,
                                 start_batch=start_batch)
    return [(f[keys.Sample.IMAGE].numpy(), t[keys.Map.SHORT_OFFSETS].numpy()) for f, t in dataset.take(count)]


def test_same_seed_gives_the_same_batches_and_another_seed_does_not(record_file):
    first, again, other = (first_batches(record_file, s) for s in (5, 5, 6))
    for (image_a, short_a), (image_b, short_b) in zip(first, again):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(short_a, short_b)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_a_resumed_stream_continues_with_the_batch_of_the_uninterrupted_run(record_file):
    """6 records, batches of 4: batch 4 starts in epoch 2 (element 16 = 2 * 6 + 4)."""
    uninterrupted = first_batches(record_file, 5, count=7, batch_size=4)
    resumed = first_batches(record_file, 5, count=3, start_batch=4, batch_size=4)
    for (image_a, short_a), (image_b, short_b) in zip(uninterrupted[4:], resumed):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(short_a, short_b)
    # Each epoch serves every record once, in another order than the epoch before.
    ids = [i for f, _ in TASK.build_dataset(record_file, 6, True, seed=5, deterministic=True).take(3)
           for i in f[keys.Sample.IMAGE_ID].numpy()]
    assert [sorted(ids[e * 6:(e + 1) * 6]) for e in range(3)] == [list(range(100, 106))] * 3
    assert ids[:6] != ids[6:12]


def test_evaluation_pass_is_ordered_complete_and_unaugmented(record_file):
    dataset = TASK.build_dataset(record_file, batch_size=4, training=False)
    ids = [i for f, _ in dataset for i in f[keys.Sample.IMAGE_ID].numpy()]
    assert ids == list(range(100, 106))
    maps = [m for f, _ in dataset for m in f[keys.Sample.CROP_TO_IMAGE].numpy()]
    assert all(m[0] > 0 and m[0] == m[4] and m[1] == m[3] == 0 for m in maps)


def test_crop_must_fit_the_stride():
    with pytest.raises(ValueError, match="multiple of the target stride"):
        PersonLabData(crop_size=128, target_stride=8)


def test_missing_files_are_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        TASK.build_dataset(str(tmp_path / "nothing-here-*.tfrecord"), batch_size=1, training=True)


def test_files_without_records_are_refused_for_training(tmp_path):
    path = tmp_path / "empty-00000-of-00001.tfrecord"
    tf.io.TFRecordWriter(str(path)).close()
    with pytest.raises(ValueError, match="hold no record: nothing to train on"):
        TASK.build_dataset(str(path), batch_size=1, training=True)
    assert pipeline.count_records([str(path)]) == 0


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
        task = PersonLabTask(data=PersonLabData(97, STRIDE, 16.0, use_imputed_keypoints=use_imputed))
        _, t = task.make_example(record, seed, False)
        return t[keys.Map.HEATMAPS][..., 0].numpy(), t[keys.Map.HEATMAP_WEIGHTS][..., 0].numpy()

    with_heat, with_weights = heat_and_weights(True)
    without_heat, without_weights = heat_and_weights(False)
    assert with_heat[7, 7] == 1 and without_heat[7, 7] == 0          # imputed nose at (60, 60)
    assert with_heat[2, 2] == 1 and without_heat[2, 2] == 1          # labelled nose at (20, 20)
    assert with_weights[6, 6] == 1 and without_weights[6, 6] == 0    # its mask becomes an ignored region
