"""TFRecords with part labels -> augmented crops -> part-parsing targets -> batched `tf.data.Dataset`.

The records are PersonLab's (scripts/create_tfrecords.py --part_labels DIR --part_set NAME); the decoding,
the augmentation (paper §4.1 box, scale, translation and flip; the flip also swaps left/right part
classes) and the batching are the PersonLab pipeline's (data.pipeline.batched_examples).
"""

import gin
import tensorflow as tf

from personlab_tf import constants, keys
from personlab_tf.data import augment, decoder, pipeline
from personlab_tf.parts import part_sets, targets

CROP_MULTIPLE = max(targets.PYRAMID_STRIDES)  # S - 1 must be a multiple of the coarsest stride


@gin.configurable(denylist=["file_pattern", "batch_size", "training"])
def build_parts_dataset(file_pattern, batch_size, training, part_set="synthetic", crop_size=801, pose_stride=4,
                        disk_radius=constants.DISK_RADIUS, limb_sigma=targets.LIMB_SIGMA, seed=None,
                        deterministic=False, shuffle_buffer=256, num_parallel_calls=tf.data.AUTOTUNE, repeat=None,
                        min_scale=0.5, max_scale=1.5, max_translation=0.2, flip_probability=0.5, input_context=None):
    """The batched part-parsing input pipeline.

    Args:
      file_pattern, batch_size, training, seed, deterministic, shuffle_buffer, num_parallel_calls, repeat,
        min_scale, max_scale, max_translation, flip_probability, input_context: as data.pipeline.build_dataset.
      part_set: name of the records' part set (part_sets.PART_SETS).
      crop_size: S; S - 1 must be a multiple of 32.
      pose_stride: stride of the part, keypoint and limb targets.
      disk_radius: R of the keypoint heatmaps and short-range offsets.
      limb_sigma: across-limb sigma of the limb heatmaps, crop pixels.

    Returns:
      tf.data.Dataset of (features, targets): features keys.IMAGE [B, S, S, 3] uint8, keys.IMAGE_ID,
      keys.CROP_TO_IMAGE; targets as targets.make_part_targets, batched.
    """
    if (crop_size - 1) % CROP_MULTIPLE:
        raise ValueError(f"crop size {crop_size} - 1 must be a multiple of {CROP_MULTIPLE}")
    labels = part_sets.part_set(part_set)
    box_options = dict(min_scale=min_scale, max_scale=max_scale, max_translation=max_translation,
                       flip_probability=flip_probability)

    def to_example(serialized, element_seed):
        sample = decoder.decode_example(serialized, with_parts=True)
        sample = augment.augment(sample, crop_size, seed=element_seed, training=training, **box_options)
        features = {k: sample[k] for k in (keys.IMAGE, keys.IMAGE_ID, keys.CROP_TO_IMAGE)}
        return features, targets.make_part_targets(sample, crop_size, labels, pose_stride, disk_radius, limb_sigma)

    return pipeline.batched_examples(file_pattern, batch_size, training, to_example, seed, deterministic,
                                     shuffle_buffer, num_parallel_calls, repeat, input_context)
