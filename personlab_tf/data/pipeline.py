"""TFRecords -> decoded samples -> augmentation -> targets -> batched, prefetched `tf.data.Dataset`."""

import random

import gin
import tensorflow as tf

from personlab_tf import constants, keys
from personlab_tf.data import augment, decoder, targets


def sample_to_example(serialized, seed, training, crop_size, stride, radius, box_options,
                      use_imputed_keypoints=True):
    """One record -> (features, targets): decode, augment (or resize) and make the targets.

    Args:
      serialized: [] string record; seed: [2] int64 stateless seed of this element.
      training: random box and flip when True, plain resize otherwise.
      crop_size, stride, radius: crop side S, target stride s and disk radius R.
      box_options: dict for augment.sample_box.
      use_imputed_keypoints: False treats persons with imputed keypoints as persons without keypoints
        (the ablation of paper Tables 8-9).

    Returns:
      features: dict with keys.IMAGE [S, S, 3] uint8, keys.IMAGE_ID [] int64, keys.CROP_TO_IMAGE [4];
      targets: dict over keys.TARGET_KEYS.
    """
    sample = decoder.decode_example(serialized)
    if not use_imputed_keypoints:
        sample = decoder.drop_imputed_keypoints(sample)
    sample = augment.augment(sample, crop_size, seed=seed, training=training, **box_options)
    features = {k: sample[k] for k in (keys.IMAGE, keys.IMAGE_ID, keys.CROP_TO_IMAGE)}
    return features, targets.make_targets(sample, crop_size, stride=stride, radius=radius)


@gin.configurable(denylist=["file_pattern", "batch_size", "training"])
def build_dataset(file_pattern, batch_size, training, crop_size=801, target_stride=8,
                  disk_radius=constants.DISK_RADIUS, seed=None, deterministic=False,
                  shuffle_buffer=256, num_parallel_calls=tf.data.AUTOTUNE, repeat=None,
                  min_scale=0.5, max_scale=1.5, max_translation=0.2, flip_probability=0.5,
                  use_imputed_keypoints=True, input_context=None):
    """The batched PersonLab input pipeline.

    Args:
      file_pattern: glob (or list of globs) of TFRecord shards (scripts/create_tfrecords.py).
      batch_size: examples per batch (per replica when `input_context` is given).
      training: shuffle, repeat and augment when True; otherwise one ordered pass, resize only.
      crop_size: crop side S in pixels (801 in the paper); S - 1 must be a multiple of target_stride.
      target_stride: stride s of the target grid (a divisor of the model's output stride).
      disk_radius: R in pixels (32 in the paper).
      seed: seed of shuffling and augmentation; None draws one.
      deterministic: same seed -> same batches in the same order (slower: ordered parallel maps).
      shuffle_buffer: shuffle buffer size in records.
      num_parallel_calls: parallelism of the per-sample map.
      repeat: repeat forever when training (None means `training`).
      min_scale, max_scale, max_translation, flip_probability: augmentation (augment.sample_box).
      use_imputed_keypoints: train on imputed keypoints (paper §3.3); False for the ablation.
      input_context: tf.distribute.InputContext for per-worker sharding, or None.

    Returns:
      tf.data.Dataset of (features, targets) batches; see `sample_to_example` for the dicts.
    """
    targets.grid_size(crop_size, target_stride)
    box_options = dict(min_scale=min_scale, max_scale=max_scale, max_translation=max_translation,
                       flip_probability=flip_probability)

    def to_example(serialized, element_seed):
        return sample_to_example(serialized, element_seed, training, crop_size, target_stride,
                                 disk_radius, box_options, use_imputed_keypoints)

    return batched_examples(file_pattern, batch_size, training, to_example, seed, deterministic, shuffle_buffer,
                            num_parallel_calls, repeat, input_context)


def batched_examples(file_pattern, batch_size, training, to_example, seed=None, deterministic=False,
                     shuffle_buffer=256, num_parallel_calls=tf.data.AUTOTUNE, repeat=None, input_context=None):
    """TFRecord shards -> examples made by `to_example` -> batched, prefetched `tf.data.Dataset`.

    Shuffling, repetition, per-worker sharding and the stateless per-element seeds are shared by every
    task's pipeline (PersonLab's `build_dataset`, parts.pipeline.build_parts_dataset).

    Args:
      file_pattern, batch_size, training, seed, deterministic, shuffle_buffer, num_parallel_calls, repeat,
        input_context: as in `build_dataset`.
      to_example: (serialized [] string, element seed [2] int64) -> one example (nested tensors).

    Returns:
      tf.data.Dataset of batches of `to_example`'s results.

    Raises:
      FileNotFoundError: no file matches `file_pattern`.
    """
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    if not any(tf.io.gfile.glob(p) for p in patterns):
        raise FileNotFoundError(f"no TFRecord file matches {file_pattern!r}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    files = tf.data.Dataset.list_files(patterns, shuffle=training, seed=seed)
    if input_context is not None and input_context.num_input_pipelines > 1:
        files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    dataset = files.interleave(tf.data.TFRecordDataset, cycle_length=4,
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if training if repeat is None else repeat:
        dataset = dataset.repeat()

    def with_seed(index, serialized):
        return to_example(serialized, tf.stack([tf.constant(seed, tf.int64), index]))

    dataset = dataset.enumerate().map(with_seed, num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
