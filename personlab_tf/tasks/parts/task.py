"""The part-parsing task: instance-aware human part parsing (second paper, CVPR 2021; docs/parts.md).

Its configuration object, `PartsOptions`, holds these option dataclasses, each configured by gin
(gin/parts_resnet101.gin is the paper's setup):

| options | module | what |
| --- | --- | --- |
| `PartsData` | targets.py | part set, crops, pose and part strides, disk radius, limb sigma |
| `BoxOptions` | data/augment.py | the random box of the augmentation (rotation too; flips also swap left/right parts) |
| `ColorJitter` | data/augment.py | the colour jitter of the training crop |
| `PartsNetwork` | model.py | backbone, FPN width, matching loss, projection field variant (Table 4) |
| `PartsDecoding` | decode.py | candidates, limb threshold, matcher |
| `PartsInference` | detector.py | the exported model's frame |

The keypoints and the limbs are the task's skeleton's (`keypoint_skeleton`, personlab_tf/skeleton.py;
recorded in `config()` under "skeleton"): coco17 for DensePose-COCO, mhp_v2 for MHP v2
(`keypoint_skeleton.name = 'mhp_v2'`). The records are PersonLab's with part labels
(scripts/create_tfrecords.py --part_labels DIR --part_set NAME).
"""

import dataclasses
import functools
from typing import Any, Dict, Iterator, Optional, Tuple

import gin
import keras
import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import augment, coco_problems, coco_records, decoder
from personlab_tf.inference import overlay
from personlab_tf.skeleton import Skeleton, keypoint_skeleton
from personlab_tf.task import EvaluationImage, Evaluator, Task, TaskOptions
from personlab_tf.tasks.parts import decode, detector, evaluation, model, oracle, part_sets, targets


@dataclasses.dataclass(frozen=True)
class PartsOptions(TaskOptions):
    """The part parser's configuration object (the table of the module docstring); its part set is checked
    to exist."""

    data: targets.PartsData = dataclasses.field(default_factory=targets.PartsData)
    box: augment.BoxOptions = dataclasses.field(default_factory=augment.BoxOptions)
    color: augment.ColorJitter = dataclasses.field(default_factory=augment.ColorJitter)
    network: model.PartsNetwork = dataclasses.field(default_factory=model.PartsNetwork)
    decoding: decode.PartsDecoding = dataclasses.field(default_factory=decode.PartsDecoding)
    inference: detector.PartsInference = dataclasses.field(default_factory=detector.PartsInference)
    skeleton: Skeleton = dataclasses.field(default_factory=keypoint_skeleton)

    def __post_init__(self):
        part_sets.part_set(self.data.part_set)


@gin.configurable
class PartsTask(Task):
    """Instance-aware part parsing (gin: `experiment.task = @PartsTask()`); built from `PartsOptions` fields,
    each, the skeleton too, defaulting to its gin configuration. A record without a skeleton (written before
    skeletons were) is coco17's."""

    name = "parts"
    options_class = PartsOptions
    options: PartsOptions

    @functools.cached_property
    def part_set(self) -> part_sets.PartSet:
        """The part set of its data options (tasks/parts/part_sets.py)."""
        return part_sets.part_set(self.options.data.part_set)

    # ---------------------------------------------------------------- training
    def make_example(self, serialized: tf.Tensor, seed: tf.Tensor,
                     training: bool) -> Tuple[Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
        data = self.options.data
        sample = decoder.decode_example(serialized, self.skeleton.num_keypoints, with_parts=True)
        sample = augment.augment(sample, data.crop_size, self.skeleton.flip_permutation, seed=seed,
                                 training=training, box=self.options.box, color=self.options.color)
        features = {k: sample[k] for k in (keys.Sample.IMAGE, keys.Sample.IMAGE_ID, keys.Sample.CROP_TO_IMAGE)}
        return features, targets.make_part_targets(sample, data.crop_size, self.part_set, self.skeleton.limbs,
                                                   data.pose_stride, data.disk_radius, data.limb_sigma,
                                                   max_persons=data.max_persons, part_stride=data.part_stride)

    def build_model(self, inference: bool = False) -> model.PartParsingModel:
        if not inference:
            self.options.network.check_initialisation()
        return model.build_model(self.options.network, self.part_set.num_classes, self.skeleton,
                                 self.options.data.disk_radius, initial=not inference,
                                 part_stride=self.options.data.part_stride)

    # ---------------------------------------------------------------- inference
    def build_detector(self, inference_model: keras.Model) -> detector.PartsDetector:
        options = self.options
        return detector.PartsDetector(inference_model, options.data.disk_radius, self.skeleton, options.inference,
                                      options.decoding, options.data.part_stride)

    def oracle_detections(self, record: coco_records.ImageRecord,
                          noise_seed: Optional[int] = None) -> Dict[str, np.ndarray]:
        if noise_seed is not None:
            raise ValueError("realistic oracle maps are calibrated for PersonLab only (docs/decoding.md); "
                             "the part parser's oracle decodes perfect maps")
        if record.skeleton != self.skeleton.name:
            raise ValueError(f"skeleton mismatch: image {record.image_id} holds {record.skeleton} keypoints, "
                             f"the task {self.skeleton.describe()}")
        data = self.options.data
        sample = decoder.decode_record(record, self.skeleton.num_keypoints, with_parts=True)
        maps, scale = oracle.oracle_maps(sample, self.options.inference.max_side, self.part_set, self.skeleton.limbs,
                                         data.disk_radius, data.limb_sigma, data.part_stride)
        detections = self._oracle_parser(maps, scale, sample[keys.Sample.ORIGINAL_SIZE])
        return {key: np.asarray(value) for key, value in detections.items()}

    @functools.cached_property
    def _oracle_parser(self):
        """The oracle's decoding tf.function, traced once per task."""
        data = self.options.data
        return oracle.parsing_function(data.disk_radius, self.skeleton.limbs, self.options.decoding, data.part_stride)

    def pictures(self, image: np.ndarray, detections: Dict[str, np.ndarray],
                 min_score: float = overlay.MIN_SCORE) -> Dict[str, np.ndarray]:
        shown = dict(detections, **{keys.Detection.MASKS: self.instance_masks(detections)})
        return {"": overlay.draw_detections(image, shown, self.skeleton, min_score),
                "_parts": overlay.draw_part_map(image, detections[keys.Detection.PART_MAP])}

    def instance_masks(self, detections: Dict[str, np.ndarray]) -> np.ndarray:
        """The supports of the instance part maps."""
        return np.asarray(detections[keys.Detection.INSTANCE_PART_MAPS]) > 0

    # ---------------------------------------------------------------- evaluation
    def evaluation_images(self, annotations: str, images_dir: str, part_labels_dir: Optional[str],
                          problems: coco_problems.ProblemCounter) -> Iterator[EvaluationImage]:
        return evaluation.part_images(annotations, images_dir, part_labels_dir, self.part_set, problems, self.skeleton)

    def evaluator(self, ground_truth: Dict[str, Any], output_dir: Optional[str] = None,
                  coco_backend: str = "pycocotools", only_added_images: bool = False) -> Evaluator:
        """evaluation.PartsEvaluator; every figure, the keypoint AP too, covers the images added (those with
        part labels), whatever `only_added_images`."""
        return evaluation.PartsEvaluator(self.part_set, self.skeleton, ground_truth, output_dir, coco_backend)
