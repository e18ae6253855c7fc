"""The part-parsing task: instance-aware human part parsing (second paper, CVPR 2021; docs/parts.md).

Its options, each a frozen dataclass configured by gin (gin/parts_resnet101.gin is the paper's setup):

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

import functools
from typing import Any, Dict, Iterator, Optional, Tuple

import gin
import keras
import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import augment, coco_problems, coco_records, decoder
from personlab_tf.inference import overlay
from personlab_tf.skeleton import Skeleton
from personlab_tf.task import (
    EvaluationImage,
    Evaluator,
    Task,
    configured_skeleton,
    dataclass_config,
    dataclass_from_config,
    replace_options,
)
from personlab_tf.tasks.parts import decode, detector, evaluation, model, oracle, part_sets, targets


@gin.configurable
class PartsTask(Task):
    """Instance-aware part parsing (gin: `experiment.task = @PartsTask()`); each option, and the skeleton,
    defaults to its gin configuration."""

    name = "parts"

    def __init__(self, data: Optional[targets.PartsData] = None, box: Optional[augment.BoxOptions] = None,
                 network: Optional[model.PartsNetwork] = None, decoding: Optional[decode.PartsDecoding] = None,
                 inference: Optional[detector.PartsInference] = None, skeleton: Optional[Skeleton] = None,
                 color: Optional[augment.ColorJitter] = None):
        self.data = data or targets.PartsData()
        self.box = box or augment.BoxOptions()
        self.color = color or augment.ColorJitter()
        self.network = network or model.PartsNetwork()
        self.decoding = decoding or decode.PartsDecoding()
        self.inference = inference or detector.PartsInference()
        self.skeleton = configured_skeleton(skeleton)
        self.part_set = part_sets.part_set(self.data.part_set)

    def config(self) -> Dict[str, Any]:
        return {**dataclass_config(data=self.data, box=self.box, color=self.color, network=self.network,
                                   decoding=self.decoding, inference=self.inference),
                skeleton_lib.CONFIG_KEY: self.skeleton.to_config()}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "PartsTask":
        """The task of a `config()` dict; one without a skeleton (recorded before skeletons were) is coco17's."""
        return cls(data=dataclass_from_config(targets.PartsData, config["data"]),
                   box=dataclass_from_config(augment.BoxOptions, config["box"]),
                   network=dataclass_from_config(model.PartsNetwork, config["network"]),
                   decoding=dataclass_from_config(decode.PartsDecoding, config["decoding"]),
                   inference=dataclass_from_config(detector.PartsInference, config["inference"]),
                   skeleton=skeleton_lib.of_task_config(config),
                   color=dataclass_from_config(augment.ColorJitter, config.get("color", {})))

    def with_inference(self, **overrides: Any) -> "PartsTask":
        return PartsTask(self.data, self.box, self.network, self.decoding,
                         replace_options(self.inference, overrides, self.name), self.skeleton, self.color)

    # ---------------------------------------------------------------- training
    def make_example(self, serialized: tf.Tensor, seed: tf.Tensor,
                     training: bool) -> Tuple[Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
        sample = decoder.decode_example(serialized, self.skeleton.num_keypoints, with_parts=True)
        sample = augment.augment(sample, self.data.crop_size, self.skeleton.flip_permutation, seed=seed,
                                 training=training, box=self.box, color=self.color)
        features = {k: sample[k] for k in (keys.Sample.IMAGE, keys.Sample.IMAGE_ID, keys.Sample.CROP_TO_IMAGE)}
        return features, targets.make_part_targets(sample, self.data.crop_size, self.part_set, self.skeleton.limbs,
                                                   self.data.pose_stride, self.data.disk_radius, self.data.limb_sigma,
                                                   max_persons=self.data.max_persons, part_stride=self.data.part_stride)

    def build_model(self, inference: bool = False) -> model.PartParsingModel:
        if not inference:
            self.network.check_initialisation()
        return model.build_model(self.network, self.part_set.num_classes, self.skeleton, self.data.disk_radius,
                                 initial=not inference, part_stride=self.data.part_stride)

    # ---------------------------------------------------------------- inference
    def build_detector(self, inference_model: keras.Model) -> detector.PartsDetector:
        return detector.PartsDetector(inference_model, self.data.disk_radius, self.skeleton, self.inference,
                                      self.decoding, self.data.part_stride)

    def oracle_detections(self, record: coco_records.ImageRecord,
                          noise_seed: Optional[int] = None) -> Dict[str, np.ndarray]:
        if noise_seed is not None:
            raise ValueError("realistic oracle maps are calibrated for PersonLab only (docs/decoding.md); "
                             "the part parser's oracle decodes perfect maps")
        if record.skeleton != self.skeleton.name:
            raise ValueError(f"skeleton mismatch: image {record.image_id} holds {record.skeleton} keypoints, "
                             f"the task {self.skeleton.describe()}")
        sample = decoder.decode_record(record, self.skeleton.num_keypoints, with_parts=True)
        maps, scale = oracle.oracle_maps(sample, self.inference.max_side, self.part_set, self.skeleton.limbs,
                                         self.data.disk_radius, self.data.limb_sigma, self.data.part_stride)
        detections = self._oracle_parser(maps, scale, sample[keys.Sample.ORIGINAL_SIZE])
        return {key: np.asarray(value) for key, value in detections.items()}

    @functools.cached_property
    def _oracle_parser(self):
        """The oracle's decoding tf.function, traced once per task."""
        return oracle.parsing_function(self.data.disk_radius, self.skeleton.limbs, self.decoding,
                                       self.data.part_stride)

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
