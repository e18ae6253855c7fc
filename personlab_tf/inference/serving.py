"""The SavedModel of either task (docs/inference.md): a tf.Module with two signatures and its task record.

`serving_default(images)`: images [B] string, encoded JPEG / PNG (also GIF, BMP: first frame) of any
size, grey, RGB or RGBA (alpha dropped). `serving_image(images)`: images [B, H, W, 3] uint8 RGB.
PersonLab's outputs, per image, padded to D = 20 detections (keys.Detection):

| output | shape, dtype | content |
| --- | --- | --- |
| keypoints | [B, D, 17, 2] float32 | (x, y) in original-image pixels, pixel centres at integer coordinates |
| keypoint_scores | [B, D, 17] float32 | s_{j,k} (Eq. 3) |
| instance_scores | [B, D] float32 | after NMS, descending; also the masks' scores |
| num_detections | [B] int32 | slots at and past it are zero / False |
| masks | [B, D, Hmax, Wmax] bool | at the original resolution; image b's mask is masks[b, :, :h_b, :w_b] |
| image_size | [B, 2] int32 | (h_b, w_b), the original size of image b |

A batch of encoded images may mix sizes: masks are padded (False) at the bottom and right to the
largest height and width of the batch. Images are processed one after the other (their frames differ
in size). A byte string that does not decode raises InvalidArgumentError for the call; nothing else is
affected. Graph ops only (no py_function, no custom op): stock TensorFlow Serving loads it.
The part parser's SavedModel has the same signatures with `part_map` and `instance_part_maps` instead of
`masks` (docs/parts.md).

The task record: the module also saves `metadata()`, a function without inputs (not a signature, so
TensorFlow Serving does not expose it) returning a JSON string: the task's name and its configuration
(tasks' `Task.config()`), the export's checkpoint and step. `read_metadata` reads it back; the scripts
take the task of a SavedModel from it.
"""

import json
from typing import Dict, Protocol, Tuple

import keras
import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import NUM_KEYPOINTS

SERVING_DEFAULT = "serving_default"
SERVING_IMAGE = "serving_image"
INPUT_NAME = "images"
METADATA = "metadata"
# The outputs shaped [..., H, W] like the image, padded to the largest image of a batch.
IMAGE_MAP_KEYS = (keys.Detection.MASKS, keys.Detection.PART_MAP, keys.Detection.INSTANCE_PART_MAPS)


class Detector(Protocol):
    """What the serving module needs of a task's detector (tasks/*/detector.py)."""

    model: keras.Model

    def detect(self, image: tf.Tensor) -> Dict[str, tf.Tensor]:
        """keys.Detection outputs of one [H, W, 3] image."""

    def output_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (shape, dtype)} of the fixed-size outputs."""

    def image_map_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (leading shape, dtype)} of the outputs shaped [*leading, H, W] like the image."""


def pose_output_specs(slots: int) -> Dict[str, Tuple[list, tf.DType]]:
    """{key: (shape, dtype)} of the per-image pose outputs padded to `slots` detections (both tasks)."""
    return {
        keys.Detection.KEYPOINTS: ([slots, NUM_KEYPOINTS, 2], tf.float32),
        keys.Detection.KEYPOINT_SCORES: ([slots, NUM_KEYPOINTS], tf.float32),
        keys.Detection.INSTANCE_SCORES: ([slots], tf.float32),
        keys.Detection.NUM_DETECTIONS: ([], tf.int32),
    }


class ServingModule(tf.Module):
    """tf.Module around an inference `detector.Detector`; `export` saves it with both signatures.

    What is tracked (and saved) are the TensorFlow variables behind the Keras model's variables,
    `model_variables`, in the order of `model.variables` (the EMA weights when exported by
    scripts/export_saved_model.py; a loaded SavedModel exposes them) — the very variables the signature
    functions read. Tracking the Keras model or its Keras variables instead saves a second set of
    variables: TF2 loading copes, but TF1-style loaders (TensorFlow Serving, `saved_model_cli run`)
    restore one set and run the graph on the other ("Could not find variable ...").
    """

    def __init__(self, detector: Detector, metadata: dict, name="personlab_serving"):
        """`detector`: a task's detector (`Detector`); `metadata`: the JSON-able task record."""
        super().__init__(name=name)
        self._detector = detector  # a plain Python object: not tracked
        self.model_variables = [variable.value for variable in detector.model.variables]
        record = json.dumps(metadata, sort_keys=True)
        self.metadata = tf.function(lambda: tf.constant(record), input_signature=[], autograph=False)

    def _detect_batch(self, count, image_at):
        """Runs the detector on images image_at(0 .. count - 1); stacks the results, padding the
        per-image maps (the detector's `image_map_specs`) to the largest image."""
        specs = dict(self._detector.output_specs())
        specs[keys.Detection.IMAGE_SIZE] = ([2], tf.int32)
        map_specs = self._detector.image_map_specs()
        arrays = {key: tf.TensorArray(dtype, size=count, element_shape=shape) for key, (shape, dtype) in specs.items()}
        arrays.update({key: tf.TensorArray(dtype, size=count, element_shape=leading + [None, None], infer_shape=False)
                       for key, (leading, dtype) in map_specs.items()})

        def detect_one(index, arrays):
            image = image_at(index)
            result = self._detector.detect(image)
            result[keys.Detection.IMAGE_SIZE] = tf.shape(image)[:2]
            return index + 1, {key: array.write(index, result[key]) for key, array in arrays.items()}

        _, arrays = tf.while_loop(lambda index, _: index < count, detect_one, (tf.constant(0), arrays),
                                  parallel_iterations=1)
        outputs = {key: arrays[key].stack() for key in specs}
        for key, (leading, dtype) in map_specs.items():
            outputs[key] = tf.cond(
                count > 0, lambda array=arrays[key], leading=leading: _pad_maps(array, outputs[keys.Detection.IMAGE_SIZE], count,
                                                                               leading),
                lambda leading=leading, dtype=dtype: tf.zeros([0] + leading + [0, 0], dtype))
        return outputs

    def serve_encoded(self, images):
        """Detections of a batch of encoded images (JPEG / PNG / GIF / BMP, any size, grey / RGB / RGBA)."""
        def image_at(index):
            image = tf.io.decode_image(images[index], channels=3, dtype=tf.uint8, expand_animations=False)
            return tf.ensure_shape(image, [None, None, 3])

        return self._detect_batch(tf.shape(images)[0], image_at)

    def serve_image(self, images):
        """Detections of a batch of uint8 RGB images [B, H, W, 3]."""
        return self._detect_batch(tf.shape(images)[0], lambda index: images[index])


def _pad_maps(maps, sizes, count, leading):
    """Stacks per-image maps [*leading, h_b, w_b] into [B, *leading, Hmax, Wmax], zero / False at the
    bottom and right."""
    largest = tf.reduce_max(sizes, axis=0)
    rank = len(leading)

    def pad_one(index, padded):
        values = maps.read(index)
        extra = largest - tf.shape(values)[rank:]
        return index + 1, padded.write(index, tf.pad(values, [[0, 0]] * rank + [[0, extra[0]], [0, extra[1]]]))

    padded = tf.TensorArray(maps.dtype, size=count, element_shape=leading + [None, None], infer_shape=False)
    _, padded = tf.while_loop(lambda index, _: index < count, pad_one, (tf.constant(0), padded))
    return padded.stack()


def signature_functions(module):
    """{signature name: concrete function} of a ServingModule (graph mode, no AutoGraph: the loops are
    explicit tf.while_loops)."""
    encoded = tf.TensorSpec([None], tf.string, name=INPUT_NAME)
    images = tf.TensorSpec([None, None, None, 3], tf.uint8, name=INPUT_NAME)
    return {
        SERVING_DEFAULT: tf.function(module.serve_encoded, input_signature=[encoded],
                                     autograph=False).get_concrete_function(),
        SERVING_IMAGE: tf.function(module.serve_image, input_signature=[images],
                                   autograph=False).get_concrete_function(),
    }


def export(detector: Detector, export_dir: str, metadata: dict) -> ServingModule:
    """Saves `detector` as a SavedModel with both signatures and the task record `metadata`.

    The signature functions are not attributes of the module, so saving does not trace them again.

    Returns:
      the ServingModule that was saved.
    """
    module = ServingModule(detector, metadata)
    tf.saved_model.save(module, export_dir, signatures=signature_functions(module))
    return module


def read_metadata(loaded) -> dict:
    """The task record of a loaded SavedModel (`tf.saved_model.load`).

    Raises:
      ValueError: the SavedModel has no record (not exported by this project, or before it recorded one).
    """
    if not hasattr(loaded, METADATA):
        raise ValueError("the SavedModel has no task record (metadata); export it again with "
                         "scripts/export_saved_model.py")
    return json.loads(loaded.metadata().numpy().decode("utf-8"))


def image_outputs(outputs: Dict[str, tf.Tensor], index: int = 0) -> Dict[str, np.ndarray]:
    """The outputs of image `index` of a signature's batch as numpy, its image maps cropped to its size
    (keys.Detection.IMAGE_SIZE, which is dropped)."""
    result = {key: np.asarray(value[index]) for key, value in outputs.items()}
    height, width = (int(n) for n in result.pop(keys.Detection.IMAGE_SIZE))
    for key in IMAGE_MAP_KEYS:
        if key in result:
            result[key] = result[key][..., :height, :width]
    return result
