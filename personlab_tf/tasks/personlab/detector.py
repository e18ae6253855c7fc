"""Single-scale and multi-scale PersonLab inference: image -> detections in original-image pixels.

```
image [H, W, 3] --geometry.resize_image--> frame (larger side max_side, padded to n os + 1)
  --model--> logits and refined offsets at stride os --sigmoid--> probability maps
  [multi-scale: every pyramid frame's maps resampled onto one common grid, offsets rescaled, averaged]
  [maps upsampled to the decoding stride]
  --decode (Hough voting, seeds, greedy poses, scores, NMS)--> poses in frame pixels --/ f--> original pixels
  --masks (Eq. 6) on the decoding grid, resampled to the image's lattice, or on the lattice's pixels--> masks
  [at the original pixels: the nearest lattice pixel's value (inference/maps.py), once per batch in serving]
```

Coordinates: pixel centres at integer coordinates, x right, y down, (x, y) order. Frame pixel u is
original pixel u / f (inference/geometry.py). Everything is TF graph ops (no py_function): `Detector.detect`
runs eagerly, in a tf.function and in a SavedModel (inference/serving.py). See docs/inference.md.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import gin
import keras
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.inference import geometry, serving
from personlab_tf.inference import maps as maps_lib
from personlab_tf.inference.detections import pad_to
from personlab_tf.ops.bilinear import upsample_to_stride
from personlab_tf.ops.sampling import sample_each
from personlab_tf.tasks.personlab.decode import MASK_KEYS, PersonLabDecoding, decode, person_masks
from personlab_tf.skeleton import Edge, Skeleton

PYRAMID = (601, 1201, 1801, 2401)    # multi-scale (paper §4.1)
MASKS_ON_GRID = "grid"               # Eq. 6 on the decoding grid, masks resampled to the original image
MASKS_ON_IMAGE = "image"             # maps resampled to the original pixels, Eq. 6 on every pixel
MASKS_HYBRID = "hybrid"              # who: Eq. 6 on the grid, resampled; whether a person pixel: p_S at each pixel
MASK_RESOLUTIONS = (MASKS_ON_GRID, MASKS_ON_IMAGE, MASKS_HYBRID)
# The defaults of PersonLabInference, chosen by measurement on the realistic oracle and the demo's network
# (docs/decoding.md, "The decoding defaults, measured").
DECODE_STRIDE = 4
PROBABILITY_KEYS = (keys.Map.HEATMAPS, keys.Map.SEGMENTATION)
OFFSET_KEYS = (keys.Map.SHORT_OFFSETS, keys.Map.MID_OFFSETS, keys.Map.LONG_OFFSETS)
# The model's refined offsets and the decoder maps they become.
_OFFSET_PREDICTIONS = {keys.Prediction.SHORT_OFFSETS: keys.Map.SHORT_OFFSETS,
                       keys.Prediction.MID_OFFSETS: keys.Map.MID_OFFSETS,
                       keys.Prediction.LONG_OFFSETS: keys.Map.LONG_OFFSETS}


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PersonLabInference:
    """How the exported model sees an image (docs/inference.md; export flags override the fields).

    Attributes:
      output_stride: os the network is rebuilt at (8 for evaluation, as the paper).
      max_side: larger side of the single-scale frame (1401); also the common frame of multi-scale.
      multi_scale: run the frames of `pyramid` and merge the maps before decoding.
      pyramid: the larger sides of the multi-scale frames (PYRAMID = 601 ... 2401, the paper's).
      decode_stride: s of the decoding grid in frame pixels (Hough voting, poses, and the masks on the
        grid); None = os, never coarser than os. Single scale: s must divide os (the maps are upsampled,
        corner aligned). Default 4 (DECODE_STRIDE).
      mask_resolution: MASKS_ON_GRID, MASKS_ON_IMAGE or MASKS_HYBRID (the default; `detections_from_maps`).
      weighted_merge: multi-scale offsets averaged with confidence weights (`average_maps`), else plain means.
    """

    output_stride: int = 8
    max_side: int = geometry.MAX_SIDE
    multi_scale: bool = False
    pyramid: Tuple[int, ...] = PYRAMID
    decode_stride: Optional[int] = DECODE_STRIDE
    mask_resolution: str = MASKS_HYBRID
    weighted_merge: bool = True

    def __post_init__(self):
        if self.mask_resolution not in MASK_RESOLUTIONS:
            raise ValueError(f"mask_resolution must be one of {MASK_RESOLUTIONS}, got {self.mask_resolution!r}")
        stride = self.grid_stride
        if not self.multi_scale and self.output_stride % stride:
            raise ValueError(f"decode stride {stride} must divide the output stride {self.output_stride}")

    @property
    def grid_stride(self) -> int:
        """The stride decoding runs at: decode_stride, at most the output stride."""
        return min(self.decode_stride or self.output_stride, self.output_stride)

    @property
    def scales(self) -> Optional[Sequence[int]]:
        """The larger sides of the pyramid frames, or None for single scale."""
        return self.pyramid if self.multi_scale else None


def probabilities(outputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Model outputs (model.PREDICTION_KEYS, logits) -> decoder maps (keys.Map, probabilities), batch kept.

    Returns:
      dict: HEATMAPS [B, h, w, K] = sigmoid(HEATMAP_LOGITS), SEGMENTATION [B, h, w, 1] =
      sigmoid(SEGMENTATION_LOGITS), and the refined SHORT/MID/LONG_OFFSETS unchanged (float32).
    """
    maps = {target: tf.cast(outputs[source], tf.float32) for source, target in _OFFSET_PREDICTIONS.items()}
    maps[keys.Map.HEATMAPS] = tf.sigmoid(tf.cast(outputs[keys.Prediction.HEATMAP_LOGITS], tf.float32))
    maps[keys.Map.SEGMENTATION] = tf.sigmoid(tf.cast(outputs[keys.Prediction.SEGMENTATION_LOGITS], tf.float32))
    return maps


def offset_weights(maps: Dict[str, tf.Tensor], directed_edges: Sequence[Tuple[int, int]]) -> Dict[str, tf.Tensor]:
    """Per-offset confidence of one scale: p_k for S_k, p_k of the source keypoint for M_{k,l}, p_S for L_k
    (the mid-range edges (k, l) are `directed_edges`, Skeleton.directed_edges).

    Returns:
      dict over OFFSET_KEYS of weights broadcastable to the offsets ([1, h, w, K or E, 1]).
    """
    heatmaps = maps[keys.Map.HEATMAPS][..., tf.newaxis]
    sources = [source for source, _ in directed_edges]
    return {keys.Map.SHORT_OFFSETS: heatmaps, keys.Map.MID_OFFSETS: tf.gather(heatmaps, sources, axis=3),
            keys.Map.LONG_OFFSETS: maps[keys.Map.SEGMENTATION][..., tf.newaxis]}


def average_maps(all_maps: Sequence[Dict[str, tf.Tensor]], directed_edges: Sequence[Edge],
                 weighted: bool = True) -> Dict[str, tf.Tensor]:
    """Merges the maps of several scales, already on one grid and in the same frame's pixels.

    Probabilities (heatmaps, segmentation) are averaged. Offsets are averaged with each scale's own
    confidence in them as weights (`offset_weights`, `weighted=True`, default): a scale votes its offsets
    where it sees the keypoint disk (or the person), not with the values it predicts elsewhere (on
    perfect maps a plain mean shortens offsets where some scale's disk ends: keypoints 5 px off instead
    of 0.2, tests/test_personlab_detector.py); where no scale is confident (all weights ~0) the plain mean
    is used. `weighted=False`: plain means everywhere.

    Args:
      all_maps: list of map dicts with the same keys and shapes [1, h, w, ...].
      directed_edges: the skeleton's mid-range edges (`offset_weights`).
      weighted: confidence-weighted offsets (see above).

    Returns:
      dict of merged maps.
    """
    count = float(len(all_maps))
    merged = {key: tf.add_n([maps[key] for maps in all_maps]) / count for key in all_maps[0]}
    if not weighted:
        return merged
    weights = [offset_weights(maps, directed_edges) for maps in all_maps]
    for key in OFFSET_KEYS:
        if key in merged:
            total = tf.add_n([weight[key] for weight in weights])
            weighted_sum = tf.add_n([weight[key] * maps[key] for weight, maps in zip(weights, all_maps)])
            merged[key] = tf.where(total > 1e-6, weighted_sum / tf.maximum(total, 1e-6), merged[key])
    return merged


def detections_from_maps(maps: Dict[str, tf.Tensor], scale: tf.Tensor, stride: int, image_size: tf.Tensor,
                         radius: float, skeleton: Skeleton, options: PersonLabDecoding, with_masks: bool,
                         mask_resolution: str) -> Dict[str, tf.Tensor]:
    """Decodes maps on the stride-s grid of a frame and maps the result to the original image.

    Args:
      maps: dict of one image's [h, w, ...] maps (keys.Map, probabilities, offsets in frame pixels); cell
        (i, j) is frame pixel (s j, s i).
      scale: f of the frame (geometry.resize_scale); stride: s of the grid.
      image_size: [2] int32 (height, width) of the original image.
      radius: the training targets' disk radius R; skeleton: the maps' keypoint set; options: PersonLabDecoding.
      with_masks: compute instance masks.
      mask_resolution: MASKS_ON_GRID (Eq. 6 on the grid, each mask interpolated bilinearly at the
        original pixels and thresholded at 0.5), MASKS_ON_IMAGE (p_S and L_k interpolated at the
        original pixels, Eq. 6 there) or MASKS_HYBRID (`hybrid_masks`); the default is PersonLabInference's,
        which every caller passes.

    Returns:
      dict of keys.Detection: KEYPOINTS [D, K, 2] in original-image pixels (x, y), KEYPOINT_SCORES [D, K],
      INSTANCE_SCORES [D], NUM_DETECTIONS [] and, with masks, MASKS [D, rows, columns] bool on the image's
      lattice with its LATTICE_SCALE g (inference/maps.py; `maps.to_image` gives them at the original
      resolution).
    """
    on_grid = with_masks and mask_resolution == MASKS_ON_GRID
    result = decode(maps, stride, radius, skeleton, options, with_masks=on_grid)
    frame_keypoints = result[keys.Detection.KEYPOINTS]
    result[keys.Detection.KEYPOINTS] = geometry.to_original(frame_keypoints, scale)
    if not with_masks:
        return result
    lattice = maps_lib.lattice_scale(scale)
    size = maps_lib.lattice_size(image_size, lattice)
    found = frame_keypoints[:result[keys.Detection.NUM_DETECTIONS]]
    if on_grid:
        result[keys.Detection.MASKS] = maps_lib.masks_to_original(result[keys.Detection.MASKS], scale / lattice,
                                                                  stride, size)
    elif mask_resolution == MASKS_HYBRID:
        result[keys.Detection.MASKS] = hybrid_masks(maps, found, scale, stride, lattice, size, options)
    else:
        weights = sample_each(maps[keys.Map.HEATMAPS], found, stride)
        pixels = maps_lib.resample_maps({key: maps[key][tf.newaxis] for key in MASK_KEYS}, scale, stride, lattice, 1,
                                        size, OFFSET_KEYS)
        points = geometry.to_original(found, scale / lattice)                          # lattice pixels
        masks = person_masks(pixels[keys.Map.SEGMENTATION][0], pixels[keys.Map.LONG_OFFSETS][0], points, weights,
                             1, options)
        result[keys.Detection.MASKS] = pad_to(masks, options.max_detections)
    result[keys.Detection.LATTICE_SCALE] = lattice
    return result


def hybrid_masks(maps: Dict[str, tf.Tensor], keypoints: tf.Tensor, scale: tf.Tensor, stride: int, lattice: tf.Tensor,
                 size: tf.Tensor, options: PersonLabDecoding) -> tf.Tensor:
    """Instance masks whose person pixels are decided at the image's pixels and their persons on the grid.

    A pixel x belongs to person j when p_S(x) >= 0.5, p_S interpolated bilinearly at x (the boundary of a
    person falls between the cells, where the network's probability crosses 0.5), and the Eq. 6 membership
    of person j, computed on the decoding grid and interpolated bilinearly at x, is >= 0.5 (which person:
    the long-range embedding varies slowly inside a person). The grid membership is computed on every cell
    within one cell of a person cell, so every pixel whose interpolated p_S reaches 0.5 has it at all four
    of its cells. Costs about what MASKS_ON_GRID does; docs/decoding.md has the measured choice.

    Args:
      maps: the decoding grid's maps (keys.Map), [h, w, ...]; keypoints: [D, K, 2] frame pixels (x, y) of
        the decoded persons (no padding slots); scale: f of the frame; stride: s of the grid; lattice: g of the image's lattice (inference/maps.py); size: [2] its rows and columns;
        options: PersonLabDecoding (thresholds).

    Returns:
      [max_detections, rows, columns] bool masks on the lattice (False past the D persons).
    """
    segmentation = maps[keys.Map.SEGMENTATION]
    near_persons = tf.nn.max_pool2d(segmentation[tf.newaxis], 3, 1, "SAME")[0]
    weights = sample_each(maps[keys.Map.HEATMAPS], keypoints, stride)
    member = person_masks(near_persons, maps[keys.Map.LONG_OFFSETS], keypoints, weights, stride, options)
    member = maps_lib.masks_to_original(pad_to(member, options.max_detections), scale / lattice, stride, size)
    pixels = maps_lib.resample_maps({keys.Map.SEGMENTATION: segmentation[tf.newaxis]}, scale, stride, lattice, 1, size)
    person = pixels[keys.Map.SEGMENTATION][0, ..., 0] >= options.segmentation_threshold
    return member & person[tf.newaxis]


def upsample_maps(maps: Dict[str, tf.Tensor], output_stride: int, decode_stride: int) -> Dict[str, tf.Tensor]:
    """Maps [B, h, w, ...] at stride os -> the decoding grid of stride s (s divides os), corner aligned."""
    if decode_stride == output_stride:
        return maps
    return {key: upsample_to_stride(value, output_stride, decode_stride) for key, value in maps.items()}


class Detector:
    """PersonLab inference for one image with a Keras model (`PersonLabModel.inference_model()`).

    Args:
      model: Keras model mapping images [1, H, W, 3] (RGB, 0..255) to the model.PREDICTION_KEYS outputs
        (logits, refined offsets) at stride `inference.output_stride`.
      radius: the training targets' disk radius R.
      skeleton: the model's keypoint set.
      inference: PersonLabInference; decoding: PersonLabDecoding.
    """

    def __init__(self, model: keras.Model, radius: float, skeleton: Skeleton,
                 inference: PersonLabInference = PersonLabInference(), decoding: PersonLabDecoding = PersonLabDecoding()):
        self.model = model
        self.radius = radius
        self.skeleton = skeleton
        self.inference = inference
        self.decoding = decoding

    def output_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (shape, dtype)} of the fixed-size outputs of `detect` (serving.ServingModule)."""
        return serving.pose_output_specs(self.decoding.max_detections, self.skeleton.num_keypoints)

    def image_map_specs(self) -> Dict[str, Tuple[list, tf.DType]]:
        """{key: (leading shape, dtype)} of the outputs of `detect` shaped [*leading, H, W] like the image."""
        return {keys.Detection.MASKS: ([self.decoding.max_detections], tf.bool)}

    def frame_maps(self, image: tf.Tensor, max_side: int) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
        """The model's probability maps [1, h, w, ...] at stride os over the frame of `image`, and f."""
        output_stride = self.inference.output_stride
        scale = geometry.resize_scale(tf.shape(image)[:2], max_side)
        frame = geometry.resize_image(image, scale, geometry.frame_size(tf.shape(image)[:2], scale, output_stride))
        return probabilities(self.model(frame[tf.newaxis], training=False)), scale

    def decoding_maps(self, image: tf.Tensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
        """Maps [1, h, w, ...] on the decoding grid and the scale f of its frame."""
        options = self.inference
        if options.scales is None:
            maps, scale = self.frame_maps(image, options.max_side)
            return upsample_maps(maps, options.output_stride, options.grid_stride), scale
        image_size = tf.shape(image)[:2]
        common = geometry.resize_scale(image_size, options.max_side)
        cells = geometry.grid_size(geometry.frame_size(image_size, common, options.output_stride),
                                   options.grid_stride)
        pyramid = []
        for side in options.scales:
            maps, scale = self.frame_maps(image, side)
            pyramid.append(maps_lib.resample_maps(maps, scale, options.output_stride, common, options.grid_stride,
                                                  cells, OFFSET_KEYS))
        return average_maps(pyramid, self.skeleton.directed_edges, options.weighted_merge), common

    def detect(self, image: tf.Tensor, with_masks: bool = True) -> Dict[str, tf.Tensor]:
        """Detections of one image.

        Args:
          image: [H, W, 3] RGB image, uint8 or float in 0..255.
          with_masks: compute the instance masks.

        Returns:
          dict of keys.Detection, padded to D = decoding.max_detections slots: KEYPOINTS [D, K, 2] (x, y)
          in original-image pixels, KEYPOINT_SCORES [D, K], INSTANCE_SCORES [D], NUM_DETECTIONS [] int32
          and MASKS [D, rows, columns] bool on the image's lattice with its LATTICE_SCALE
          (`serving.detect_image` gives them at the image's pixels).
        """
        maps, scale = self.decoding_maps(image)
        return self.detect_grid_maps(maps, scale, tf.shape(image)[:2], with_masks)

    def detect_grid_maps(self, maps: Dict[str, tf.Tensor], scale: tf.Tensor, image_size: tf.Tensor,
                         with_masks: bool = True) -> Dict[str, tf.Tensor]:
        """The detections of `detect` from maps [1, h, w, ...] on the decoding grid of a frame of scale f
        (`decoding_maps`) and the image's [2] size (tasks/personlab/benchmark.py times decoding this way)."""
        return detections_from_maps({key: value[0] for key, value in maps.items()}, scale, self.inference.grid_stride,
                                    image_size, self.radius, self.skeleton, self.decoding, with_masks,
                                    self.inference.mask_resolution)
