"""The PersonLab task: pose estimation and person instance segmentation (Papandreou et al., ECCV 2018).

Its options, each a frozen dataclass configured by gin (gin/personlab_resnet101.gin is the paper's):

| options | module | what |
| --- | --- | --- |
| `PersonLabData` | targets.py | crops, target stride, disk radius, imputed keypoints |
| `BoxOptions` | data/augment.py | the random box of the augmentation (scale, translation, rotation, flip) |
| `ColorJitter` | data/augment.py | the colour jitter of the training crop (off by default) |
| `PersonLabNetwork` | model.py | backbone, output stride, refinement, heads, loss weights |
| `PersonLabDecoding` | decode.py | seeds, rejection, scoring, NMS, masks |
| `PersonLabInference` | detector.py | the exported model's frame, stride, scales, mask resolution |

and its keypoint set, a `Skeleton` (personlab_tf/skeleton.py; gin: `keypoint_skeleton.name = 'crowdpose'`).
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
from personlab_tf.task import (EvaluationImage, Evaluator, Task, configured_skeleton, dataclass_config,
                               dataclass_from_config, replace_options)
from personlab_tf.tasks.personlab import detector, evaluation, model, oracle, targets
from personlab_tf.tasks.personlab.decode import PersonLabDecoding
from personlab_tf.tasks.personlab.noise import MapNoise


@gin.configurable
class PersonLabTask(Task):
    """PersonLab (gin: `experiment.task = @PersonLabTask()`); each option defaults to its gin configuration."""

    name = "personlab"
    evaluates_on_tfds = True
    resumable_bindings = ("PersonLabNetwork.jit_refinement",)

    def __init__(self, data: Optional[targets.PersonLabData] = None, box: Optional[augment.BoxOptions] = None,
                 network: Optional[model.PersonLabNetwork] = None, decoding: Optional[PersonLabDecoding] = None,
                 inference: Optional[detector.PersonLabInference] = None, skeleton: Optional[Skeleton] = None,
                 color: Optional[augment.ColorJitter] = None):
        self.data = data or targets.PersonLabData()
        self.box = box or augment.BoxOptions()
        self.color = color or augment.ColorJitter()
        self.network = network or model.PersonLabNetwork()
        self.decoding = decoding or PersonLabDecoding()
        self.inference = inference or detector.PersonLabInference()
        self.skeleton = configured_skeleton(skeleton)
        if (self.data.crop_size - 1) % self.network.output_stride:
            raise ValueError(f"crop size {self.data.crop_size} - 1 must be a multiple of the output stride "
                             f"{self.network.output_stride}")

    def config(self) -> Dict[str, Any]:
        return {**dataclass_config(data=self.data, box=self.box, color=self.color, network=self.network,
                                   decoding=self.decoding, inference=self.inference),
                skeleton_lib.CONFIG_KEY: self.skeleton.to_config()}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "PersonLabTask":
        return cls(data=dataclass_from_config(targets.PersonLabData, config["data"]),
                   box=dataclass_from_config(augment.BoxOptions, config["box"]),
                   network=dataclass_from_config(model.PersonLabNetwork, config["network"]),
                   decoding=dataclass_from_config(PersonLabDecoding, config["decoding"]),
                   inference=dataclass_from_config(detector.PersonLabInference, config["inference"]),
                   skeleton=skeleton_lib.of_task_config(config),
                   color=dataclass_from_config(augment.ColorJitter, config.get("color", {})))

    def with_inference(self, **overrides: Any) -> "PersonLabTask":
        return PersonLabTask(self.data, self.box, self.network, self.decoding,
                             replace_options(self.inference, overrides, self.name), self.skeleton, self.color)

    # ---------------------------------------------------------------- training
    def make_example(self, serialized: tf.Tensor, seed: tf.Tensor,
                     training: bool) -> Tuple[Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
        sample = decoder.decode_example(serialized, self.skeleton.num_keypoints)
        if not self.data.use_imputed_keypoints:
            sample = decoder.drop_imputed_keypoints(sample)
        sample = augment.augment(sample, self.data.crop_size, self.skeleton.flip_permutation, seed=seed,
                                 training=training, box=self.box, color=self.color)
        features = {k: sample[k] for k in (keys.Sample.IMAGE, keys.Sample.IMAGE_ID, keys.Sample.CROP_TO_IMAGE)}
        return features, targets.make_targets(sample, self.data.crop_size, self.skeleton.directed_edges,
                                              self.data.target_stride, self.data.disk_radius)

    def build_model(self, inference: bool = False) -> model.PersonLabModel:
        if not inference:
            self.network.check_initialisation()
        return model.build_model(self.skeleton, self.network, self.inference.output_stride if inference else None,
                                 initial=not inference, disk_radius=self.data.disk_radius)

    # ---------------------------------------------------------------- inference
    def build_detector(self, inference_model: keras.Model) -> detector.Detector:
        return detector.Detector(inference_model, self.data.disk_radius, self.skeleton, self.inference, self.decoding)

    def oracle_detections(self, record: coco_records.ImageRecord,
                          noise_seed: Optional[int] = None) -> Dict[str, np.ndarray]:
        sample = decoder.decode_record(record, self.skeleton.num_keypoints)
        noise = None if noise_seed is None else MapNoise()
        maps, scale = oracle.oracle_maps(sample, self.skeleton, self.inference.max_side, self.inference.output_stride,
                                         self.data.disk_radius, self.network.refine_mid_steps,
                                         self.network.refine_long_steps, self.network.refine_long_gate,
                                         noise=noise, noise_seed=noise_seed or 0)
        detections = self._oracle_decoder(maps, scale, sample[keys.Sample.ORIGINAL_SIZE])
        return {key: np.asarray(value) for key, value in detections.items()}

    @functools.cached_property
    def _oracle_decoder(self):
        """The oracle's decoding tf.function, traced once per task."""
        return oracle.decoding_function(self.inference, self.data.disk_radius, self.skeleton, self.decoding)

    def pictures(self, image: np.ndarray, detections: Dict[str, np.ndarray],
                 min_score: float = overlay.MIN_SCORE) -> Dict[str, np.ndarray]:
        return {"": overlay.draw_detections(image, detections, self.skeleton, min_score)}

    def instance_masks(self, detections: Dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(detections[keys.Detection.MASKS], bool)

    # ---------------------------------------------------------------- evaluation
    def evaluation_images(self, annotations: str, images_dir: str, part_labels_dir: Optional[str],
                          problems: coco_problems.ProblemCounter) -> Iterator[EvaluationImage]:
        return evaluation.coco_images(annotations, images_dir, problems, self.skeleton)

    def evaluator(self, ground_truth: Dict[str, Any], output_dir: Optional[str] = None,
                  coco_backend: str = "pycocotools", only_added_images: bool = False) -> Evaluator:
        return evaluation.PersonLabEvaluator(ground_truth, self.skeleton, output_dir, coco_backend, only_added_images)

