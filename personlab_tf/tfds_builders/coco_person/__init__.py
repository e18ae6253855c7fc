"""tfds builder `coco_person` (importing this package registers it with tfds)."""

from personlab_tf.tfds_builders.coco_person.coco_person_dataset_builder import Builder, prepare
from personlab_tf.tfds_builders.coco_person.layout import SPLIT_FILES, TRAIN, VALIDATION, arrange_coco_tree

__all__ = ["Builder", "prepare", "arrange_coco_tree", "SPLIT_FILES", "TRAIN", "VALIDATION"]
