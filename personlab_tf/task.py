"""The task interface: what the shared trainer, export, evaluation, prediction and oracle need of a task.

A task (tasks/personlab, tasks/parts) is a `Task` subclass with one configuration object, a `TaskOptions`
frozen dataclass whose fields are the task's option dataclasses (each configurable by gin) and its skeleton,
the way a TF Model Garden task is built from one params dataclass. The plumbing every task shares lives
here once: building a task from option fields (the others at their gin-configured defaults), recording its
options as JSON (`config`), restoring them (`from_config`), replacing the inference options (`with_inference`)
or any other (`replace`). The experiment's task is injected by gin (`experiment.task = @PersonLabTask()`,
config.py). docs/tasks.md walks through what a new task provides. The core never imports a task: the
registry (personlab_tf/registry.py) does, so gin and the scripts can name them.
"""

import abc
import dataclasses
import typing
from typing import Any, ClassVar, Dict, Iterator, Optional, Protocol, Sequence, Tuple, Type, Union

import keras
import numpy as np
import tensorflow as tf

from personlab_tf.data import coco_problems, coco_records, pipeline
from personlab_tf import skeleton as skeleton_lib
from personlab_tf.inference import overlay
from personlab_tf.model.training import LossModel
from personlab_tf.skeleton import Skeleton


@dataclasses.dataclass
class EvaluationImage:
    """One image to evaluate: its id, its file bytes and, when read from a COCO JSON, its record (ground
    truth, with part labels if any); None for images read from a tfds split."""

    image_id: int
    encoded: bytes
    record: Optional[coco_records.ImageRecord] = None


class Evaluator(abc.ABC):
    """Accumulates one task's detections image by image and computes its metrics."""

    @abc.abstractmethod
    def add(self, image: EvaluationImage, detections: Dict[str, np.ndarray]) -> None:
        """Adds the detections (keys.Detection, numpy, masks cropped to the image) of one image."""

    @abc.abstractmethod
    def results(self) -> Dict[str, Any]:
        """Every metric (JSON-able)."""

    @abc.abstractmethod
    def headline(self, results: Dict[str, Any]) -> Dict[str, float]:
        """The task's main figures, the last stdout line of the evaluation scripts."""


class Detector(Protocol):
    """What the serving module (inference/serving.py) needs of a task's detector (tasks/*/detector.py),
    which `Task.build_detector` makes."""

    model: keras.Model

    def detect(self, image: tf.Tensor) -> Dict[str, tf.Tensor]:
        """keys.Detection outputs of one [H, W, 3] image, the image maps on its lattice with its
        LATTICE_SCALE (inference/maps.py)."""

    def output_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (shape, dtype)} of the fixed-size outputs."""

    def image_map_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (leading shape, dtype)} of the outputs shaped [*leading, H, W] like the image."""


# The fields of every task's options that the core reads: the inference options (export records them,
# `with_inference` replaces them) and the skeleton.
CORE_OPTIONS = ("inference", skeleton_lib.CONFIG_KEY)


@dataclasses.dataclass(frozen=True)
class TaskOptions:
    """Base of a task's one configuration object: a frozen dataclass whose fields are option dataclasses
    (each with a `default_factory` that is its gin-configurable class, so an absent field takes its gin
    configuration) and `skeleton` (a Skeleton). Every task's options have an `inference` field (the frame,
    strides and masks of an exported model, which `with_inference` replaces) and a `skeleton` field.
    A subclass validates combinations of its fields in `__post_init__` (ValueError)."""

    def to_config(self) -> Dict[str, Any]:
        """{field: dataclasses.asdict(value)} (JSON-able; the skeleton under skeleton.CONFIG_KEY)."""
        return {field.name: dataclasses.asdict(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "TaskOptions":
        """The options of a `to_config` dict. A field the dict lacks (an option added after it was recorded)
        takes its default, the skeleton coco17's (skeleton.of_task_config)."""
        kinds = typing.get_type_hints(cls)
        values = {}
        for field in dataclasses.fields(cls):
            if field.name == skeleton_lib.CONFIG_KEY:
                values[field.name] = skeleton_lib.of_task_config(config)
            elif field.name in config:
                values[field.name] = dataclass_from_config(kinds[field.name], config[field.name])
        return cls(**values)

    def fields(self) -> Dict[str, Any]:
        """{field name: value}, the arguments that rebuild these options (shallow: the option objects)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


class Task(abc.ABC):
    """One task: data and targets, network and losses, detector, oracle, evaluation and pictures.

    Built from option fields: `PersonLabTask(network=PersonLabNetwork(...))`; every field not given takes its
    gin-configured default (`options_class`)."""

    name: ClassVar[str]
    # Its configuration object's class (a TaskOptions subclass).
    options_class: ClassVar[Type[TaskOptions]]
    # Whether its evaluator takes a tfds `coco_person` split (COCO metrics need no per-image records).
    evaluates_on_tfds: ClassVar[bool] = False
    # Its gin bindings a resumed run may change besides the trainer's (trainer.RESUMABLE_CHANGES): how fast its
    # step runs, not what it computes.
    resumable_bindings: ClassVar[Tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any):
        """A task's options hold what the core reads of them: TypeError naming a missing field."""
        super().__init_subclass__(**kwargs)
        missing = sorted(set(CORE_OPTIONS) - {field.name for field in dataclasses.fields(cls.options_class)})
        if missing:
            raise TypeError(f"{cls.__name__}.options_class {cls.options_class.__name__} lacks {', '.join(missing)}")

    def __init__(self, **options: Any):
        """The task of `options` (fields of `options_class`); ValueError naming an unknown field or an
        invalid combination."""
        _check_names(options, self.options_class, f"{{unknown}}: not options of the {self.name} task "
                     "(its options: {known})")
        self.options = self.options_class(**options)

    @property
    def skeleton(self) -> Skeleton:
        """The keypoint set of its records, network and detections (personlab_tf/skeleton.py)."""
        return self.options.skeleton

    # ---------------------------------------------------------------- configuration
    def config(self) -> Dict[str, Any]:
        """The task's options as a JSON-able dict (recorded in the SavedModel; `from_config` inverts it)."""
        return self.options.to_config()

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Task":
        """The task of a `config()` dict (TaskOptions.from_config)."""
        return cls(**cls.options_class.from_config(config).fields())

    def replace(self, **options: Any) -> "Task":
        """The task with some options replaced (`dataclasses.replace` of its options)."""
        return type(self)(**{**self.options.fields(), **options})

    def with_inference(self, **overrides: Any) -> "Task":
        """The task with inference options replaced (export and evaluation flags, cli.inference_overrides);
        ValueError naming an option that does not apply to this task."""
        inference = self.options.inference
        _check_names(overrides, inference, f"{{unknown}} does not apply to the {self.name} task "
                     "(its inference options: {known})")
        return self.replace(inference=dataclasses.replace(inference, **overrides))

    # ---------------------------------------------------------------- training
    @abc.abstractmethod
    def make_example(self, serialized: tf.Tensor, seed: tf.Tensor,
                     training: bool) -> Tuple[Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
        """One record -> (features dict with keys.Sample.IMAGE, targets dict of keys.Map): decode, augment
        (random box when training, else the resized image) and make the targets."""

    def build_dataset(self, file_pattern: Union[str, Sequence[str]], batch_size: int, training: bool,
                      seed: Optional[int] = None, deterministic: bool = False, start_batch: int = 0,
                      input_context: Optional[tf.distribute.InputContext] = None,
                      options: Optional[pipeline.InputOptions] = None) -> tf.data.Dataset:
        """The batched input pipeline of `make_example` (data/pipeline.py); `start_batch` resumes the
        stream of a training run at that batch; `options` None: the gin-configured InputOptions."""
        return pipeline.batched_examples(file_pattern, batch_size, training, self.make_example, seed,
                                         deterministic, options, start_batch, input_context)

    @abc.abstractmethod
    def build_model(self, inference: bool = False) -> LossModel:
        """The network with its losses.

        Training (`inference=False`): with its initial (ImageNet) weights; a network with frozen batch norm
        and no initial weights is refused unless its options allow it (model/resnet.check_initialisation).
        `inference=True`: as exported (e.g. PersonLab at its evaluation stride), without initial weights
        (a checkpoint gives them)."""

    # ---------------------------------------------------------------- inference
    @abc.abstractmethod
    def build_detector(self, model: keras.Model) -> Detector:
        """The detector of an inference model (`LossModel.inference_model()`), with the task's options."""

    @abc.abstractmethod
    def oracle_detections(self, record: coco_records.ImageRecord,
                          noise_seed: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Detections (keys.Detection, numpy, original-image pixels) decoded from an image's ground-truth
        maps made on its inference frame: the upper bound of the decoder (scripts/oracle_eval.py). With a
        `noise_seed`, the maps are first degraded the way a trained network errs (the realistic oracle);
        a task without a calibrated noise model raises ValueError."""

    @abc.abstractmethod
    def pictures(self, image: np.ndarray, detections: Dict[str, np.ndarray],
                 min_score: float = overlay.MIN_SCORE) -> Dict[str, np.ndarray]:
        """{file name suffix: RGB picture} drawn from one image's detections (scripts/predict.py);
        detections scoring below `min_score` are not drawn."""

    @abc.abstractmethod
    def instance_masks(self, detections: Dict[str, np.ndarray]) -> np.ndarray:
        """[D, H, W] bool masks of the detected persons (COCO segmentation results)."""

    # ---------------------------------------------------------------- evaluation
    @abc.abstractmethod
    def evaluation_images(self, annotations: str, images_dir: str, part_labels_dir: Optional[str],
                          problems: coco_problems.ProblemCounter) -> Iterator[EvaluationImage]:
        """The images of a COCO JSON the task evaluates on, with their records; unusable ones are skipped
        and counted in `problems`."""

    @abc.abstractmethod
    def evaluator(self, ground_truth: Dict[str, Any], output_dir: Optional[str] = None,
                  coco_backend: str = "pycocotools", only_added_images: bool = False) -> Evaluator:
        """A fresh evaluator against a COCO ground truth dict (the JSON, or rebuilt from tfds).

        Args:
          ground_truth: COCO person-keypoints dict.
          output_dir: where the results and metrics files go (None: nowhere).
          coco_backend: the COCOeval implementation, where the task's metrics are COCO's
            (evaluation/backends.py).
          only_added_images: score only the images added (a quick run over part of a dataset); default:
            every image of the ground truth counts.
        """


def dataclass_from_config(cls: Type[Any], values: Dict[str, Any]) -> Any:
    """The `cls` dataclass of its `dataclasses.asdict` dict read back from JSON: lists become tuples again."""
    return cls(**{key: tuple(_tuples(value)) if isinstance(value, list) else value for key, value in values.items()})


def _tuples(values: list) -> list:
    """Nested JSON lists as nested tuples."""
    return [tuple(_tuples(value)) if isinstance(value, list) else value for value in values]


def _check_names(names: Any, options: Any, message: str) -> None:
    """ValueError `message` (its {unknown} and {known}: comma-separated names) when `names` holds a name that
    is not a field of the dataclass (or dataclass instance) `options`."""
    known = {field.name for field in dataclasses.fields(options)}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(message.format(unknown=", ".join(unknown), known=", ".join(sorted(known))))
