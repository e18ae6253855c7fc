"""Single-scale and multi-scale PersonLab inference: image -> detections in original-image pixels.

```
image [H, W, 3] --geometry.resize_image--> frame (larger side max_side, padded to n os + 1)
  --model--> logits and refined offsets at stride os --sigmoid--> probability maps
  [multi-scale: every pyramid frame's maps resampled onto one common grid, offsets rescaled, averaged]
  [maps upsampled to the decoding stride]
  --decode (Hough voting, seeds, greedy poses, scores, NMS)--> poses in frame pixels --/ f--> original pixels
  --masks (Eq. 6) on the decoding grid, resampled to the original image, or on the original pixels--> masks
```

Coordinates: pixel centres at integer coordinates, x right, y down, (x, y) order. Frame pixel u is
original pixel u / f (geometry.py). Everything is TF graph ops (no py_function): `Detector.detect` runs
eagerly, in a tf.function and in a SavedModel (serving.py). See docs/inference.md.
"""

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.decode import decode
from personlab_tf.decode.grid import sample_each
from personlab_tf.decode.masks import instance_masks
from personlab_tf.decode.scoring import person_areas
from personlab_tf.inference import geometry, maps as maps_lib, serving
from personlab_tf.ops.bilinear import upsample_to_stride

MAX_SIDE = 1401                      # single scale (paper §4.1)
PYRAMID = (601, 1201, 1801, 2401)    # multi-scale (paper §4.1)
MASKS_ON_GRID = "grid"               # Eq. 6 on the decoding grid, masks resampled to the original image
MASKS_ON_IMAGE = "image"             # maps resampled to the original pixels, Eq. 6 on every pixel
MASK_RESOLUTIONS = (MASKS_ON_GRID, MASKS_ON_IMAGE)
DECODE_STRIDE = None                 # None: the output stride (docs/inference.md, resolution table)
MASK_RESOLUTION = MASKS_ON_GRID


def _pad(values, size):
    """Pads the first dimension with zeros (False) up to `size`."""
    padding = [[0, size - tf.shape(values)[0]]] + [[0, 0]] * (values.shape.rank - 1)
    return tf.pad(values, padding)


def detections_from_maps(maps, scale, stride, image_size, with_masks=True, mask_resolution=MASK_RESOLUTION,
                         **decode_options):
    """Decodes maps on the stride-s grid of a frame and maps the result to the original image.

    Args:
      maps: dict of one image's [h, w, ...] maps (personlab_tf.keys, probabilities, offsets in frame
        pixels); cell (i, j) is frame pixel (s j, s i).
      scale: f of the frame (geometry.resize_scale); stride: s of the grid.
      image_size: [2] int32 (height, width) of the original image.
      with_masks: compute instance masks.
      mask_resolution: MASKS_ON_GRID (Eq. 6 on the grid, each mask interpolated bilinearly at the
        original pixels and thresholded at 0.5) or MASKS_ON_IMAGE (p_S and L_k interpolated at the
        original pixels, Eq. 6 there).
      **decode_options: keyword arguments of personlab_tf.decode.decode.

    Returns:
      dict of detection keys: DETECTION_KEYPOINTS [D, K, 2] in original-image pixels (x, y),
      KEYPOINT_SCORES [D, K], INSTANCE_SCORES [D], NUM_DETECTIONS [] and, with masks,
      INSTANCE_MASKS [D, H, W] bool at the original resolution.
    """
    if mask_resolution not in MASK_RESOLUTIONS:
        raise ValueError(f"mask_resolution must be one of {MASK_RESOLUTIONS}, got {mask_resolution!r}")
    on_grid = with_masks and mask_resolution == MASKS_ON_GRID
    result = decode(maps, stride, with_masks=on_grid, **decode_options)
    frame_keypoints = result[keys.DETECTION_KEYPOINTS]
    result[keys.DETECTION_KEYPOINTS] = geometry.to_original(frame_keypoints, scale)
    if on_grid:
        result[keys.INSTANCE_MASKS] = maps_lib.masks_to_original(result[keys.INSTANCE_MASKS], scale, stride,
                                                                 image_size)
    elif with_masks:
        slots = frame_keypoints.shape[0]
        found = frame_keypoints[:result[keys.NUM_DETECTIONS]]
        weights = sample_each(maps[keys.HEATMAPS], found, stride)
        pixels = maps_lib.resample_maps({key: maps[key][tf.newaxis] for key in maps_lib.MASK_KEYS},
                                        scale, stride, 1.0, 1, tf.cast(image_size, tf.int32))
        points = geometry.to_original(found, scale)
        masks = instance_masks(pixels[keys.SEGMENTATION][0], pixels[keys.LONG_OFFSETS][0], points, weights,
                               person_areas(points), 1,
                               decode_options.get("segmentation_threshold", 0.5),
                               decode_options.get("mask_threshold", 0.25))
        result[keys.INSTANCE_MASKS] = tf.ensure_shape(_pad(masks, slots), [slots, None, None])
    return result


def upsample_maps(maps, output_stride, decode_stride):
    """Maps [B, h, w, ...] at stride os -> the decoding grid of stride s (s divides os), corner aligned."""
    if decode_stride == output_stride:
        return maps
    return {key: upsample_to_stride(value, output_stride, decode_stride) for key, value in maps.items()}


class Detector:
    """PersonLab inference for one image with a Keras model (`PersonLabModel.inference_model()`).

    Args:
      model: Keras model mapping images [1, H, W, 3] (RGB, 0..255) to the personlab.PREDICTION_KEYS
        outputs (logits, refined offsets) at stride `output_stride`.
      output_stride: os of the model.
      max_side: larger side of the single-scale frame (1401); also the common frame of multi-scale.
      scales: None for single scale, else the larger sides of the pyramid (PYRAMID = 601 ... 2401).
      decode_stride: s of the decoding grid in frame pixels (Hough voting, poses, and the masks on the
        grid); None = os. Single scale: s must divide os (the maps are upsampled, corner aligned).
      mask_resolution: MASKS_ON_GRID or MASKS_ON_IMAGE (detections_from_maps).
      weighted_merge: multi-scale offsets averaged with confidence weights (default, maps.average_maps),
        else plain means of every map.
      **decode_options: keyword arguments of personlab_tf.decode.decode (thresholds, scoring, NMS, ...).
    """

    def __init__(self, model, output_stride, max_side=MAX_SIDE, scales=None, decode_stride=DECODE_STRIDE,
                 mask_resolution=MASK_RESOLUTION, weighted_merge=True, **decode_options):
        decode_stride = min(decode_stride or output_stride, output_stride)
        if scales is None and output_stride % decode_stride:
            raise ValueError(f"decode stride {decode_stride} must divide the output stride {output_stride}")
        if mask_resolution not in MASK_RESOLUTIONS:
            raise ValueError(f"mask_resolution must be one of {MASK_RESOLUTIONS}, got {mask_resolution!r}")
        self.model = model
        self.output_stride = output_stride
        self.max_side = max_side
        self.scales = tuple(scales) if scales else None
        self.decode_stride = decode_stride
        self.mask_resolution = mask_resolution
        self.weighted_merge = weighted_merge
        self.decode_options = decode_options
        self.max_detections = decode_options.get("max_detections", 20)

    def output_specs(self):
        """{key: (shape, dtype)} of the fixed-size outputs of `detect` (serving.ServingModule)."""
        return serving.pose_output_specs(self.max_detections)

    def image_map_specs(self):
        """{key: (leading shape, dtype)} of the outputs of `detect` shaped [*leading, H, W] like the image."""
        return {keys.INSTANCE_MASKS: ([self.max_detections], tf.bool)}

    def frame_maps(self, image, max_side):
        """The model's probability maps [1, h, w, ...] at stride os over the frame of `image`, and f."""
        scale = geometry.resize_scale(tf.shape(image)[:2], max_side)
        frame = geometry.resize_image(image, scale, geometry.frame_size(tf.shape(image)[:2], scale,
                                                                       self.output_stride))
        return maps_lib.probabilities(self.model(frame[tf.newaxis], training=False)), scale

    def decoding_maps(self, image):
        """Maps [1, h, w, ...] on the decoding grid and the scale f of its frame."""
        if self.scales is None:
            maps, scale = self.frame_maps(image, self.max_side)
            return upsample_maps(maps, self.output_stride, self.decode_stride), scale
        image_size = tf.shape(image)[:2]
        common = geometry.resize_scale(image_size, self.max_side)
        cells = geometry.grid_size(geometry.frame_size(image_size, common, self.output_stride), self.decode_stride)
        pyramid = []
        for side in self.scales:
            maps, scale = self.frame_maps(image, side)
            pyramid.append(maps_lib.resample_maps(maps, scale, self.output_stride, common, self.decode_stride, cells))
        return maps_lib.average_maps(pyramid, self.weighted_merge), common

    def detect(self, image, with_masks=True):
        """Detections of one image.

        Args:
          image: [H, W, 3] RGB image, uint8 or float in 0..255.
          with_masks: compute the instance masks.

        Returns:
          dict of detection keys (personlab_tf.keys), padded to D = max_detections slots:
          DETECTION_KEYPOINTS [D, K, 2] (x, y) in original-image pixels, KEYPOINT_SCORES [D, K],
          INSTANCE_SCORES [D], NUM_DETECTIONS [] int32 and INSTANCE_MASKS [D, H, W] bool.
        """
        maps, scale = self.decoding_maps(image)
        return detections_from_maps({key: value[0] for key, value in maps.items()}, scale, self.decode_stride,
                                    tf.shape(image)[:2], with_masks, self.mask_resolution, **self.decode_options)
