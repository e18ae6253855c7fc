"""The SavedModel of either task (docs/inference.md): a tf.Module with two signatures and its task record.

`serving_default(images)`: images [B] string, encoded JPEG / PNG (also GIF, BMP: first frame) of any
size, grey, RGB or RGBA (alpha dropped). `serving_image(images)`: images [B, H, W, 3] uint8 RGB.
PersonLab's outputs, per image, padded to D = 20 detections (keys.Detection):

| output | shape, dtype | content |
| --- | --- | --- |
| keypoints | [B, D, K, 2] float32 | (x, y) in original-image pixels, pixel centres at integer coordinates; K of the skeleton (17 for coco17) |
| keypoint_scores | [B, D, K] float32 | s_{j,k} (Eq. 3) |
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

Bounded memory (docs/operations.md): an image of more than `max_pixels` pixels (an export option, recorded
in the task record; DEFAULT_MAX_PIXELS) raises InvalidArgumentError, for JPEG, PNG, GIF and BMP from the size
in its header before it is decoded, for other formats and for `serving_image` from the decoded size. The
detectors compute the image maps on each image's lattice (inference/maps.py), at most the frame's size (twice
it per side for part parsing); the module takes them to the original pixels once, after the batch, in the
padded outputs.

The task record: the module also saves `metadata()`, a function without inputs (not a signature, so
TensorFlow Serving does not expose it) returning a JSON string: the task's name and its configuration
(tasks' `Task.config()`), the export's checkpoint and step, and MAX_PIXELS. `read_metadata` reads it back;
the scripts take the task of a SavedModel from it.
"""

import json
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.inference import maps as maps_lib
from personlab_tf.task import Detector

SERVING_DEFAULT = "serving_default"
SERVING_IMAGE = "serving_image"
INPUT_NAME = "images"
METADATA = "metadata"
MAX_PIXELS = "max_pixels"          # the task record's pixel limit
# Images above this many pixels are refused (50 MP: a 8660 x 5773 photo); `max_pixels` at export changes it.
DEFAULT_MAX_PIXELS = 50_000_000
# The outputs shaped [..., H, W] like the image, padded to the largest image of a batch.
IMAGE_MAP_KEYS = (keys.Detection.MASKS, keys.Detection.PART_MAP, keys.Detection.INSTANCE_PART_MAPS)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def detect_image(detector: Detector, image: tf.Tensor) -> Dict[str, tf.Tensor]:
    """`detector.detect(image)` with its image maps at the image's pixels, as the SavedModel gives them."""
    return maps_lib.detections_at_image(detector.detect(image), tf.shape(image)[:2], detector.image_map_specs())


def _header_number(data, start, count, little_endian, signed=False):
    """The unsigned (or two's complement) integer of `count` bytes of `data` from `start`: [] int64."""
    octets = tf.cast(tf.io.decode_raw(tf.strings.substr(data, start, count), tf.uint8)[:count], tf.int64)
    weights = tf.constant([256 ** (k if little_endian else count - 1 - k) for k in range(count)], tf.int64)
    value = tf.reduce_sum(octets * weights)
    return tf.where(value >= 2 ** (8 * count - 1), value - 2 ** (8 * count), value) if signed else value


def encoded_image_size(data: tf.Tensor) -> tf.Tensor:
    """[2] int64 (height, width) from the header of JPEG, PNG, GIF or BMP bytes, without decoding them;
    (0, 0) for other formats or bytes too short to tell (the decoder then says what is wrong)."""
    length = tf.strings.length(data)

    def starts_with(prefix, minimum):
        return tf.logical_and(length >= minimum, tf.equal(tf.strings.substr(data, 0, len(prefix)), prefix))

    def png():  # IHDR: width, height, big endian, at byte 16
        return tf.stack([_header_number(data, 20, 4, False), _header_number(data, 16, 4, False)])

    def gif():  # logical screen: width, height, little endian, at byte 6
        return tf.stack([_header_number(data, 8, 2, True), _header_number(data, 6, 2, True)])

    def bmp():  # BITMAPINFOHEADER: width, height (negative: top-down), little endian, at byte 18
        return tf.abs(tf.stack([_header_number(data, 22, 4, True, True), _header_number(data, 18, 4, True, True)]))

    return tf.case([(tf.io.is_jpeg(data), lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64)),
                    (starts_with(_PNG_SIGNATURE, 24), png), (starts_with(b"GIF8", 10), gif),
                    (starts_with(b"BM", 26), bmp)],
                   default=lambda: tf.zeros([2], tf.int64), exclusive=False)


def check_pixels(size: tf.Tensor, max_pixels: int) -> tf.Operation:
    """An assertion that an image of `size` [2] (height, width) has at most `max_pixels` pixels; it raises
    InvalidArgumentError naming the size and the limit."""
    size = tf.cast(size, tf.int64)
    message = tf.strings.format("image of {} x {} pixels is above the limit of {} pixels of this SavedModel "
                                "(max_pixels, chosen at export)", (size[0], size[1], max_pixels))
    return tf.debugging.Assert(size[0] * size[1] <= max_pixels, [message])


def pose_output_specs(slots: int, num_keypoints: int) -> Dict[str, Tuple[list, tf.DType]]:
    """{key: (shape, dtype)} of the per-image pose outputs padded to `slots` detections of `num_keypoints`
    keypoints (both tasks)."""
    return {
        keys.Detection.KEYPOINTS: ([slots, num_keypoints, 2], tf.float32),
        keys.Detection.KEYPOINT_SCORES: ([slots, num_keypoints], tf.float32),
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

    def __init__(self, detector: Detector, metadata: dict, max_pixels: int = DEFAULT_MAX_PIXELS,
                 name: str = "personlab_serving"):
        """`detector`: a task's detector (`Detector`); `metadata`: the JSON-able task record, to which
        MAX_PIXELS is added; `max_pixels`: the largest image accepted (module docstring)."""
        super().__init__(name=name)
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {max_pixels}")
        self._detector = detector  # a plain Python object: not tracked
        self.max_pixels = max_pixels
        self.model_variables = [variable.value for variable in detector.model.variables]
        record = json.dumps({**metadata, MAX_PIXELS: max_pixels}, sort_keys=True)
        self.metadata = tf.function(lambda: tf.constant(record), input_signature=[], autograph=False)

    def _detect_batch(self, count, image_at):
        """Runs the detector on images image_at(0 .. count - 1) and stacks the results; the per-image maps
        (the detector's `image_map_specs`, on each image's lattice) go to the image pixels, padded to the
        largest image, in one gather after the loop."""
        specs = dict(self._detector.output_specs())
        specs[keys.Detection.IMAGE_SIZE] = ([2], tf.int32)
        specs[keys.Detection.LATTICE_SCALE] = ([], tf.float32)
        map_specs = self._detector.image_map_specs()
        arrays = {key: tf.TensorArray(dtype, size=count, element_shape=shape) for key, (shape, dtype) in specs.items()}
        arrays.update({key: tf.TensorArray(dtype, size=count, element_shape=leading + [None, None], infer_shape=False)
                       for key, (leading, dtype) in map_specs.items()})

        def detect_one(index, arrays):
            image = image_at(index)
            with tf.control_dependencies([check_pixels(tf.shape(image)[:2], self.max_pixels)]):
                result = self._detector.detect(tf.identity(image))
            result[keys.Detection.IMAGE_SIZE] = tf.shape(image)[:2]
            return index + 1, {key: array.write(index, result[key]) for key, array in arrays.items()}

        _, arrays = tf.while_loop(lambda index, _: index < count, detect_one, (tf.constant(0), arrays),
                                  parallel_iterations=1)
        outputs = {key: arrays[key].stack() for key in specs}
        sizes, lattices = outputs[keys.Detection.IMAGE_SIZE], outputs.pop(keys.Detection.LATTICE_SCALE)
        for key, (leading, dtype) in map_specs.items():
            outputs[key] = tf.cond(
                count > 0, lambda array=arrays[key], leading=leading: _maps_at_pixels(array, lattices, sizes, count,
                                                                                      leading),
                lambda leading=leading, dtype=dtype: tf.zeros([0] + leading + [0, 0], dtype))
        return outputs

    def serve_encoded(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """Detections of a batch of encoded images (JPEG / PNG / GIF / BMP, any size, grey / RGB / RGBA)."""
        def image_at(index):
            data = images[index]
            with tf.control_dependencies([check_pixels(encoded_image_size(data), self.max_pixels)]):
                image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
            return tf.ensure_shape(image, [None, None, 3])

        return self._detect_batch(tf.shape(images)[0], image_at)

    def serve_image(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """Detections of a batch of uint8 RGB images [B, H, W, 3]."""
        return self._detect_batch(tf.shape(images)[0], lambda index: images[index])


def _maps_at_pixels(maps, lattices, sizes, count, leading):
    """Per-image maps on their lattices [*leading, rows_b, columns_b] -> [B, *leading, Hmax, Wmax] at the
    image pixels (maps.to_image), zero / False at the bottom and right of the smaller images.

    The lattice maps are padded with zeros to one more than the largest lattice, and pixels outside an
    image read that zero row or column; the output is made by one gather of columns and one of rows."""
    rank = len(leading)
    extents = tf.TensorArray(tf.int32, size=count, element_shape=[2])
    _, extents = tf.while_loop(lambda index, _: index < count,
                               lambda index, out: (index + 1, out.write(index, tf.shape(maps.read(index))[rank:])),
                               (tf.constant(0), extents))
    extents = extents.stack()                                              # [B, 2] lattice rows, columns
    padding = tf.reduce_max(extents, axis=0)                               # index of the zero row, column
    padded = tf.TensorArray(maps.dtype, size=count, element_shape=leading + [None, None], infer_shape=False)

    def pad_one(index, out):
        values = maps.read(index)
        extra = padding + 1 - tf.shape(values)[rank:]
        return index + 1, out.write(index, tf.pad(values, [[0, 0]] * rank + [[0, extra[0]], [0, extra[1]]]))

    _, padded = tf.while_loop(lambda index, _: index < count, pad_one, (tf.constant(0), padded))
    largest = tf.reduce_max(sizes, axis=0)

    def index(axis):
        pixels = tf.range(largest[axis])[tf.newaxis]                               # [1, N]
        nearest = maps_lib.nearest_lattice_index(pixels, lattices[:, tf.newaxis], extents[:, axis:axis + 1])
        return tf.where(pixels < sizes[:, axis:axis + 1], nearest, padding[axis])  # [B, N]

    # Columns first, on the small lattice maps; then whole rows, contiguous copies (maps.to_image).
    columns = tf.gather(padded.stack(), index(1), axis=rank + 2, batch_dims=1)
    return tf.gather(columns, index(0), axis=rank + 1, batch_dims=1)


def signature_functions(module: ServingModule) -> Dict[str, tf.types.experimental.ConcreteFunction]:
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


def export(detector: Detector, export_dir: str, metadata: dict, max_pixels: int = DEFAULT_MAX_PIXELS) -> ServingModule:
    """Saves `detector` as a SavedModel with both signatures, the task record `metadata` and the pixel limit.

    The signature functions are not attributes of the module, so saving does not trace them again.

    Returns:
      the ServingModule that was saved.
    """
    module = ServingModule(detector, metadata, max_pixels)
    tf.saved_model.save(module, export_dir, signatures=signature_functions(module))
    return module


def read_metadata(loaded: Any) -> dict:
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
