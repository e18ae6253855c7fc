"""tfds builder `coco_person` (importing this package registers it with tfds)."""

from personlab_tf.tfds_builders.coco_person.coco_person_dataset_builder import (
    ANNOTATIONS_SHA256,
    IMAGES_SKIPPED,
    SKELETON,
    SKIPPED_IMAGE_IDS,
    WARNINGS,
    Builder,
    StaleDatasetError,
    annotations_fingerprint,
    manual_skeleton,
    prepare,
    recorded_skeleton,
    stale_splits,
)
from personlab_tf.tfds_builders.coco_person.layout import (
    SPLIT_FILES,
    TRAIN,
    VALIDATION,
    arrange_coco_tree,
)

__all__ = ["Builder", "prepare", "stale_splits", "StaleDatasetError", "annotations_fingerprint", "ANNOTATIONS_SHA256",
           "IMAGES_SKIPPED", "SKIPPED_IMAGE_IDS", "WARNINGS", "SKELETON", "recorded_skeleton", "manual_skeleton",
           "arrange_coco_tree", "SPLIT_FILES", "TRAIN", "VALIDATION"]
