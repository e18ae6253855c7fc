"""The PersonLab task: pose estimation and person instance segmentation (Papandreou et al., ECCV 2018).

Its configuration object, `PersonLabOptions`, holds these option dataclasses, each configured by gin
(gin/personlab_resnet101.gin is the paper's):

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
from personlab_tf.tasks.personlab import detector, evaluation, model, oracle, targets
from personlab_tf.tasks.personlab.decode import PersonLabDecoding
from personlab_tf.tasks.personlab.noise import MapNoise


@dataclasses.dataclass(frozen=True)
class PersonLabOptions(TaskOptions):
    """PersonLab's configuration object (the table of the module docstring); ValueError when the crop does
    not fit the output stride."""

    data: targets.PersonLabData = dataclasses.field(default_factory=targets.PersonLabData)
    box: augment.BoxOptions = dataclasses.field(default_factory=augment.BoxOptions)
    color: augment.ColorJitter = dataclasses.field(default_factory=augment.ColorJitter)
    network: model.PersonLabNetwork = dataclasses.field(default_factory=model.PersonLabNetwork)
    decoding: PersonLabDecoding = dataclasses.field(default_factory=PersonLabDecoding)
    inference: detector.PersonLabInference = dataclasses.field(default_factory=detector.PersonLabInference)
    skeleton: Skeleton = dataclasses.field(default_factory=keypoint_skeleton)

    def __post_init__(self):
        if (self.data.crop_size - 1) % self.network.output_stride:
            raise ValueError(f"crop size {self.data.crop_size} - 1 must be a multiple of the output stride "
                             f"{self.network.output_stride}")


@gin.configurable
class PersonLabTask(Task):
    """PersonLab (gin: `experiment.task = @PersonLabTask()`); built from `PersonLabOptions` fields, each
    defaulting to its gin configuration."""

    name = "personlab"
    options_class = PersonLabOptions
    evaluates_on_tfds = True
    resumable_bindings = ("PersonLabNetwork.jit_refinement",)
    options: PersonLabOptions

    # ---------------------------------------------------------------- training
    def make_example(self, serialized: tf.Tensor, seed: tf.Tensor,
                     training: bool) -> Tuple[Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
        data = self.options.data
        sample = decoder.decode_example(serialized, self.skeleton.num_keypoints)
        if not data.use_imputed_keypoints:
            sample = decoder.drop_imputed_keypoints(sample)
        sample = augment.augment(sample, data.crop_size, self.skeleton.flip_permutation, seed=seed,
                                 training=training, box=self.options.box, color=self.options.color)
        features = {k: sample[k] for k in (keys.Sample.IMAGE, keys.Sample.IMAGE_ID, keys.Sample.CROP_TO_IMAGE)}
        return features, targets.make_targets(sample, data.crop_size, self.skeleton.directed_edges,
                                              data.target_stride, data.disk_radius)

    def build_model(self, inference: bool = False) -> model.PersonLabModel:
        network = self.options.network
        if inference:
            network = dataclasses.replace(network, output_stride=self.options.inference.output_stride)
        else:
            network.check_initialisation()
        return model.build_model(self.skeleton, network, self.options.data.disk_radius, initial=not inference)

    # ---------------------------------------------------------------- inference
    def build_detector(self, inference_model: keras.Model) -> detector.Detector:
        options = self.options
        return detector.Detector(inference_model, options.data.disk_radius, self.skeleton, options.inference,
                                 options.decoding)

    def oracle_detections(self, record: coco_records.ImageRecord,
                          noise_seed: Optional[int] = None) -> Dict[str, np.ndarray]:
        options = self.options
        sample = decoder.decode_record(record, self.skeleton.num_keypoints)
        noise = None if noise_seed is None else MapNoise()
        maps, scale = oracle.oracle_maps(sample, self.skeleton, options.inference.max_side,
                                         options.inference.output_stride, options.data.disk_radius,
                                         options.network.refine_mid_steps, options.network.refine_long_steps,
                                         options.network.refine_long_gate, noise=noise, noise_seed=noise_seed or 0)
        detections = self._oracle_decoder(maps, scale, sample[keys.Sample.ORIGINAL_SIZE])
        return {key: np.asarray(value) for key, value in detections.items()}

    @functools.cached_property
    def _oracle_decoder(self):
        """The oracle's decoding tf.function, traced once per task."""
        options = self.options
        return oracle.decoding_function(options.inference, options.data.disk_radius, self.skeleton,
                                        options.decoding)

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

