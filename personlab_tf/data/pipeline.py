"""TFRecord shards -> examples made by a task -> batched, prefetched `tf.data.Dataset`.

The stream of a training run is a function of its seed alone, so a resumed run continues it exactly:

    epoch e:   the shards in an order permuted by a key of (seed, e), read `cycle_length` at a time and
               interleaved record by record, then permuted in consecutive blocks of `shuffle_buffer` records,
               block b by a key of (seed, e, b);
    stream:    epoch 0, epoch 1, ... concatenated; element i gets the augmentation seed (seed, i);
    batches:   consecutive elements, `batch_size` (the global batch) at a time.

The permutations are stateless (tf.random.experimental.index_shuffle), so no shuffle state needs saving: a
block shuffle instead of tf.data's sliding shuffle buffer, whose state a restart would lose.

A run resumed after batch N (`start_batch=N`) counts the records of an epoch once, starts at the epoch
holding element N * batch_size and skips the records before it (raw records, not decoded), so its next
batch is the one the uninterrupted run would have used at step N + 1 (tests/test_data_pipeline.py). The map that
decodes, augments and makes targets runs in parallel; with `deterministic=False` (the default, faster) its
outputs may leave it slightly out of order, each element keeping its own seed.
"""

import dataclasses
import random
from typing import Callable, Dict, Optional, Sequence, Union

import gin
import tensorflow as tf

from personlab_tf import errors
from personlab_tf.data import record_format
from personlab_tf.skeleton import BUILTIN, Skeleton

@gin.configurable
@dataclasses.dataclass(frozen=True)
class InputOptions:
    """Performance settings of the input pipeline (gin: `InputOptions.shuffle_buffer = 256`, ...).

    Attributes:
      shuffle_buffer: records per shuffled block (module docstring).
      cycle_length: shards read at once.
      num_parallel_calls: parallelism of the per-record map (tf.data.AUTOTUNE = -1).
    """

    shuffle_buffer: int = 256
    cycle_length: int = 4
    num_parallel_calls: int = tf.data.AUTOTUNE


def shard_files(file_pattern: Union[str, Sequence[str]]) -> list:
    """The sorted files matching a glob (or several globs).

    Raises:
      FileNotFoundError: nothing matches.
    """
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted({path for pattern in patterns for path in tf.io.gfile.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no TFRecord file matches {file_pattern!r}")
    return files


def count_records(files: Sequence[str]) -> int:
    """Number of records in the files (reads them once, without parsing).

    Raises:
      tf.errors.DataLossError: a file is truncated or corrupt.
    """
    return int(tf.data.TFRecordDataset(list(files)).reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def records_skeletons(file_pattern: Union[str, Sequence[str]]) -> Dict[str, str]:
    """{shard path: the skeleton name of its first record (record_format.IMAGE_SKELETON)} of the shards
    matching `file_pattern` that hold a record (one record read per shard).

    Raises:
      FileNotFoundError: nothing matches; tf.errors.DataLossError: a shard's first record is damaged.
    """
    spec = {record_format.IMAGE_SKELETON: record_format.FEATURE_SPEC[record_format.IMAGE_SKELETON]}
    names = {}
    for path in shard_files(file_pattern):
        for serialized in tf.data.TFRecordDataset(path).take(1):
            names[path] = tf.io.parse_single_example(serialized, spec)[record_format.IMAGE_SKELETON].numpy().decode()
    return names


def check_records_skeleton(file_pattern: Union[str, Sequence[str]], skeleton: Skeleton) -> None:
    """ValueError, one line naming both, when a shard of `file_pattern` holds keypoints of another skeleton
    than `skeleton` (the configuration's), before any training work."""
    for path, name in records_skeletons(file_pattern).items():
        if name != skeleton.name:
            hint = (f"keypoint_skeleton.name = '{name}'" if name in BUILTIN
                    else "keypoint_skeleton.annotations = the annotation file the records were written from")
            raise ValueError(f"skeleton mismatch: records {path} hold skeleton {name!r}, the configuration "
                             f"holds {skeleton.describe()} (bind {hint})")


def damaged_shard_error(file_pattern: Union[str, Sequence[str]], error: tf.errors.DataLossError) -> ValueError:
    """The error to raise when reading the shards of `file_pattern` failed with `error`: it names the first
    shard that does not read to its end (each is read again, once), or says that none was found."""
    for path in shard_files(file_pattern):
        try:
            count_records([path])
        except tf.errors.DataLossError as damage:
            return ValueError(f"TFRecord shard {path} is truncated or corrupt ({errors.one_line(damage)}): write it "
                              "again (scripts/create_tfrecords.py) or leave it out of train.train_files")
    return ValueError(f"reading the TFRecord shards {file_pattern!r} failed ({errors.one_line(error)}), yet each "
                      "reads to its end now")


def _permutation(size, key):
    """A random permutation of range(size) given by the stateless key [2], as [size] int64."""
    size = tf.cast(size, tf.int64)
    return tf.random.experimental.index_shuffle(tf.range(size), key, tf.maximum(size - 1, 0))


def _epoch_records(files, epoch, seed, options):
    """The records of one training epoch, in the order of (seed, epoch) (module docstring)."""
    epoch_key = tf.random.experimental.stateless_fold_in(tf.stack([tf.cast(seed, tf.int64), 0]), epoch)
    order = tf.gather(tf.constant(files), _permutation(len(files), epoch_key))
    records = tf.data.Dataset.from_tensor_slices(order).interleave(
        tf.data.TFRecordDataset, cycle_length=options.cycle_length, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)

    def permute_block(block, block_records):
        block_key = tf.random.experimental.stateless_fold_in(epoch_key, block + 1)
        return tf.gather(block_records, _permutation(tf.size(block_records), block_key))

    blocks = records.batch(options.shuffle_buffer).enumerate().map(permute_block)
    return blocks.unbatch()


def training_records(files: Sequence[str], seed: int, options: InputOptions, start_element: int = 0) -> tf.data.Dataset:
    """The endless training stream of records from element `start_element` on, and its indices.

    Returns:
      tf.data.Dataset of (element index [] int64, serialized record [] string).

    Raises:
      ValueError: the files hold no record.
    """
    if next(iter(tf.data.TFRecordDataset(list(files)).take(1)), None) is None:
        raise ValueError(f"the {len(files)} TFRecord files ({files[0]} ...) hold no record: nothing to train on")
    start_epoch, offset = 0, 0
    if start_element:
        start_epoch, offset = divmod(start_element, count_records(files))
    epochs = tf.data.Dataset.range(start_epoch, tf.int64.max)
    records = epochs.flat_map(lambda epoch: _epoch_records(files, epoch, seed, options)).skip(offset)
    indices = tf.data.Dataset.range(start_element, tf.int64.max)
    return tf.data.Dataset.zip((indices, records))


def batched_examples(file_pattern: Union[str, Sequence[str]], batch_size: int, training: bool,
                     to_example: Callable, seed: Optional[int] = None, deterministic: bool = False,
                     options: Optional[InputOptions] = None, start_batch: int = 0,
                     input_context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
    """TFRecord shards -> examples made by `to_example` -> batched, prefetched `tf.data.Dataset`.

    Args:
      file_pattern: glob (or list of globs) of TFRecord shards (scripts/create_tfrecords.py).
      batch_size: examples per batch (the global batch; per replica when `input_context` is given).
      training: the endless, shuffled stream of the module docstring (batches of exactly `batch_size`);
        otherwise one ordered pass over the files.
      to_example: (serialized [] string, element seed [2] int64, training) -> one example (nested tensors).
      seed: seed of the stream and of the augmentation; None draws one.
      deterministic: the map's outputs in stream order (reproducible batches, slower).
      options: InputOptions (None: the gin-configured ones).
      start_batch: training: the first batch is the one an uninterrupted run would make at step
        `start_batch` (a resumed run).
      input_context: tf.distribute.InputContext for per-worker sharding of the files, or None.

    Returns:
      tf.data.Dataset of batches of `to_example`'s results.

    Raises:
      FileNotFoundError: no file matches `file_pattern`; ValueError: training on files without records.
    """
    options = options or InputOptions()
    files = shard_files(file_pattern)
    if input_context is not None and input_context.num_input_pipelines > 1:
        files = files[input_context.input_pipeline_id::input_context.num_input_pipelines]
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if training:
        dataset = training_records(files, seed, options, start_batch * batch_size)
    else:
        dataset = tf.data.Dataset.zip((tf.data.Dataset.range(tf.int64.max), tf.data.TFRecordDataset(files)))

    def with_seed(index, serialized):
        return to_example(serialized, tf.stack([tf.constant(seed, tf.int64), index]), training)

    dataset = dataset.map(with_seed, num_parallel_calls=options.num_parallel_calls, deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.prefetch(tf.data.AUTOTUNE)
