"""Part-parsing inference for one image: image -> persons with keypoints and per-instance part maps.

```
image [H, W, 3] --geometry.resize_image--> frame (larger side max_side, padded to 32 n + 1)
  --model--> part logits (stride 4 or 2), keypoint / limb logits, short offsets, DSPF at stride 4
  --decode.decode_poses--> persons (keypoints in frame pixels) --/ f--> original pixels
  part probabilities and DSPF resampled at the image's lattice pixels --argmax--> part map
  --Eq. 17 on its person pixels--> instance of each pixel --> instance part maps [D, rows, columns]
  [at the original pixels: the nearest lattice pixel's value (inference/maps.py), once per batch in serving]
```
Coordinates: pixel centres at integer coordinates, x right, y down, (x, y) order; frame pixel u is
original pixel u / f (inference/geometry.py). Graph ops only: `detect` runs eagerly, in a tf.function and in
the SavedModel (inference/serving.py).
"""

import dataclasses
from typing import Dict, Sequence, Tuple

import gin
import keras
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.inference import geometry, serving
from personlab_tf.inference import maps as maps_lib
from personlab_tf.skeleton import Edge, Skeleton
from personlab_tf.tasks.parts import decode
from personlab_tf.tasks.parts.targets import PYRAMID_STRIDES

STRIDE = PYRAMID_STRIDES[0]          # the branches' resolution
FRAME_MULTIPLE = PYRAMID_STRIDES[-1]  # frames are 32 n + 1 pixels
# Lattice pixels per frame pixel (inference/maps.py). With 1 the oracle of 6 synthetic 300-400 px images at
# max_side 193 loses 0.15 of AP^p_50 (thin parts), with 2 nothing (docs/operations.md).
LATTICE_FINENESS = 2


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PartsInference:
    """How the exported part parser sees an image (export flags override the fields).

    Attributes:
      max_side: larger side of the frame (single scale; 1401 as PersonLab's).
    """

    max_side: int = geometry.MAX_SIDE


def probability_maps(outputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Model outputs (logits) -> decoding maps (keys.Map) of one batch: softmax parts, sigmoid keypoints
    and limbs, the offsets and the finest projection field (float32)."""
    def value(key):
        return tf.cast(outputs[key], tf.float32)

    return {
        keys.Map.PART_PROBABILITIES: tf.nn.softmax(value(keys.Prediction.PART_LOGITS)),
        keys.Map.HEATMAPS: tf.sigmoid(value(keys.Prediction.HEATMAP_LOGITS)),
        keys.Map.SHORT_OFFSETS: value(keys.Prediction.SHORT_OFFSETS),
        keys.Map.LIMB_HEATMAPS: tf.sigmoid(value(keys.Prediction.LIMB_LOGITS)),
        keys.Map.PROJECTION_FIELD: value(keys.Prediction.PROJECTION_FIELD),
    }


def parse_image(maps: Dict[str, tf.Tensor], scale: tf.Tensor, image_size: tf.Tensor, radius: float,
                limbs: Sequence[Edge], options: decode.PartsDecoding = decode.PartsDecoding(),
                part_stride: int = STRIDE) -> Dict[str, tf.Tensor]:
    """Persons and part maps of one image from its maps over the frame of scale f (stride 4; the part
    probabilities at `part_stride`).

    Args:
      maps: dict of [h, w, ...] maps (`probability_maps` of one image), frame pixels.
      scale: f; image_size: [2] int32 (H, W) of the original image; radius: the targets' disk radius R;
      limbs: the skeleton's limbs (Skeleton.limbs, the limb maps' channels); options: decode.PartsDecoding;
      part_stride: stride of the part probabilities (targets.PART_STRIDES).

    Returns:
      dict of keys.Detection: KEYPOINTS [D, K, 2] original pixels, KEYPOINT_SCORES [D, K], INSTANCE_SCORES
      [D], NUM_DETECTIONS [], and on the image's lattice (inference/maps.py; `maps.to_image` gives them at the
      original pixels) PART_MAP [rows, columns] uint8, INSTANCE_PART_MAPS [D, rows, columns] uint8, with its
      LATTICE_SCALE g.
    """
    # The projection candidates read the part map on the DSPF's stride-4 grid: corner-aligned grids put cell i
    # of stride 4 at cell (4 / part_stride) i of the part stride.
    step = STRIDE // part_stride
    pose_maps = dict(maps, **{keys.Map.PART_PROBABILITIES: maps[keys.Map.PART_PROBABILITIES][::step, ::step]})
    detections = decode.decode_poses(pose_maps, STRIDE, radius, limbs, options)
    detections[keys.Detection.KEYPOINTS] = geometry.to_original(detections[keys.Detection.KEYPOINTS], scale)
    lattice = maps_lib.lattice_scale(scale, LATTICE_FINENESS)
    size = maps_lib.lattice_size(image_size, lattice)
    frame_pixels = scale / lattice                   # frame pixels per lattice pixel
    probabilities = maps_lib.resample(maps[keys.Map.PART_PROBABILITIES][tf.newaxis], frame_pixels / part_stride,
                                      size)[0]
    field = maps_lib.resample(maps[keys.Map.PROJECTION_FIELD][tf.newaxis], frame_pixels / STRIDE, size)[0]
    field = field / scale                                                 # original pixels
    part_map = tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)
    pixels = tf.where(part_map > 0)                                       # [N, 2] (row, column)
    points = tf.cast(tf.reverse(pixels, [1]), tf.float32) / lattice       # original pixels
    owner = decode.assign_pixels(points, tf.gather_nd(field, pixels), detections)
    owner_map = tf.tensor_scatter_nd_update(-tf.ones(size, tf.int32), pixels, owner)
    detections.pop(keys.Detection.KEYPOINT_PRESENT)
    detections[keys.Detection.PART_MAP] = part_map
    detections[keys.Detection.INSTANCE_PART_MAPS] = decode.instance_part_maps(part_map, owner_map,
                                                                              options.max_detections)
    detections[keys.Detection.LATTICE_SCALE] = lattice
    return detections


class PartsDetector:
    """Part-parsing inference with a Keras model (`PartParsingModel.inference_model()`), single scale.

    Args:
      model: Keras model mapping images [1, H, W, 3] (RGB, 0..255) to model.PREDICTION_KEYS.
      radius: the training targets' disk radius R.
      skeleton: the model's keypoints and limbs (personlab_tf/skeleton.py).
      inference: PartsInference; decoding: decode.PartsDecoding.
      part_stride: stride of the model's part logits (targets.PART_STRIDES).
    """

    def __init__(self, model: keras.Model, radius: float, skeleton: Skeleton,
                 inference: PartsInference = PartsInference(), decoding: decode.PartsDecoding = decode.PartsDecoding(),
                 part_stride: int = STRIDE):
        self.model = model
        self.radius = radius
        self.skeleton = skeleton
        self.inference = inference
        self.decoding = decoding
        self.part_stride = part_stride

    def output_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (shape, dtype)} of the fixed-size outputs of `detect` (serving.ServingModule)."""
        return serving.pose_output_specs(self.decoding.max_detections, self.skeleton.num_keypoints)

    def image_map_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (leading shape, dtype)} of the outputs of `detect` shaped [*leading, H, W] like the image."""
        return {keys.Detection.PART_MAP: ([], tf.uint8),
                keys.Detection.INSTANCE_PART_MAPS: ([self.decoding.max_detections], tf.uint8)}

    def frame_maps(self, image: tf.Tensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
        """The decoding maps [h, w, ...] of `image` [H, W, 3] over its frame (stride 4, the part
        probabilities at the part stride), and f."""
        size = tf.shape(image)[:2]
        scale = geometry.resize_scale(size, self.inference.max_side)
        frame = geometry.resize_image(image, scale, geometry.frame_size(size, scale, FRAME_MULTIPLE))
        outputs = self.model(frame[tf.newaxis], training=False)
        return {key: value[0] for key, value in probability_maps(outputs).items()}, scale

    def detect(self, image: tf.Tensor) -> Dict[str, tf.Tensor]:
        """`parse_image` of one [H, W, 3] RGB image (uint8 or float 0..255): image maps on its lattice
        (`serving.detect_image` gives them at the image's pixels)."""
        maps, scale = self.frame_maps(image)
        return parse_image(maps, scale, tf.shape(image)[:2], self.radius, self.skeleton.limbs, self.decoding,
                           self.part_stride)
