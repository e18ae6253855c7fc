"""The instance-aware part parsing network (second paper §3, docs/parts.md) on the PersonLab backbone.

```
image --ResNet v1 (no atrous)--> C2..C5 (strides 4..32) --FPN--> P2..P5 (`width` channels)
  P2..P5 --part branch (the paper's part decoder, Eq. 1)--> part logits [B, h4, w4, C]
           (part_stride 2: one more stage over the stem C1 --> [B, h2, w2, C])
  P2..P5 --pose branch (its pose decoder, Eq. 7)--> keypoint heatmap logits [.., K], short offsets [.., K, 2],
           limb logits [.., L]            (K keypoints and L limbs of the skeleton, personlab_tf/skeleton.py)
  P5 --> f_5; for l = 4, 3, 2: flow D_l = conv([up(P_{l+1}), P_l])                         (Eq. 4)
                              X~ = W(P_{l+1}, D_l), f~ = 2 W(f_{l+1}, D_l)                     (Eqs. 5-6)
                              f_l = f~ + r_l([P_l, X~, f~])                                    (Eq. 3)
```
(`PartsNetwork.projection_field`, the rows of the paper's Table 4: "warped", above, the paper's model;
"residual" without the feature flow, D_l = 0; "coarse_to_fine" a complete field at every level,
f_l = g_l([P_l, up(P_{l+1}), 2 up(f_{l+1})]); "direct" one field at stride 4 regressed from
[P2, up(P3), up(P4), up(P5)]; "none" no field: every pixel projects onto itself.)

Outputs (dict, keys.Prediction), grids corner aligned (cell (i, j) of stride s at input pixel
(s j, s i)), inputs of S = 32 n + 1 pixels: PART_LOGITS at the part stride (4, or 2), HEATMAP_LOGITS,
SHORT_OFFSETS (input pixels), LIMB_LOGITS at stride 4; projection(s) for s = 4, 8, 16, 32, the field f_l in
cells of its level; PROJECTION_FIELD = 4 f_2, the finest field in input pixels (what decoding uses).
The branches upsample stage by stage with one depthwise-separable 3x3 convolution per stage (§3.4).
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import gin
import keras
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.losses import AVERAGE_IMAGES
from personlab_tf.model.layers import OUTPUT_DTYPE, Scale, SplitXY, UpsampleLike
from personlab_tf.model.resnet import build_resnet_pyramid, check_initialisation, initial_weights, load_backbone_weights
from personlab_tf.model.training import LossModel
from personlab_tf.skeleton import Skeleton
from personlab_tf.task import dataclass_from_config
from personlab_tf.tasks.parts import losses as parts_losses
from personlab_tf.tasks.parts.layers import FlowWarp, ZeroField
from personlab_tf.tasks.parts.targets import PART_STRIDES, PYRAMID_STRIDES

# The DSPF variants of the paper's Table 4, from its baseline to its model, and "none" (no field).
PROJECTION_FIELDS = ("none", "direct", "coarse_to_fine", "residual", "warped")
DEFAULT_PROJECTION_FIELD = "warped"
# The variants with a field at every pyramid level (the others: "direct" at stride 4 only, "none" none).
PYRAMID_FIELDS = ("coarse_to_fine", "residual", "warped")
# The outputs of every variant; those with a field add its level(s), keys.Prediction.projection(s).
BASE_PREDICTION_KEYS = (keys.Prediction.PART_LOGITS, keys.Prediction.HEATMAP_LOGITS, keys.Prediction.SHORT_OFFSETS,
                        keys.Prediction.LIMB_LOGITS, keys.Prediction.PROJECTION_FIELD)
PREDICTION_KEYS = BASE_PREDICTION_KEYS + tuple(keys.Prediction.projection(s) for s in PYRAMID_STRIDES)


def check_projection_field(name: str) -> str:
    """`name` if it is one of PROJECTION_FIELDS, else ValueError naming the choices."""
    if name not in PROJECTION_FIELDS:
        raise ValueError(f"PartsNetwork.projection_field {name!r} must be one of {', '.join(PROJECTION_FIELDS)}")
    return name


def prediction_keys(projection_field: str) -> Tuple[str, ...]:
    """The outputs of a network whose DSPF is the `projection_field` variant (PREDICTION_KEYS for those
    with a field per level)."""
    if check_projection_field(projection_field) in PYRAMID_FIELDS:
        return PREDICTION_KEYS
    levels = (keys.Prediction.projection(PYRAMID_STRIDES[0]),) if projection_field == "direct" else ()
    return BASE_PREDICTION_KEYS + levels


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PartsNetwork:
    """The part-parsing network and its losses (gin: `PartsNetwork.backbone = 'resnet101'`, ...).

    Attributes:
      backbone: a key of model/resnet.py BACKBONES.
      width: channels of the pyramid and the branches (256 in the paper's FPN).
      weights_path: the backbone's ImageNet weights: "imagenet", a local Keras-applications `.h5`, or None
        (as PersonLabNetwork).
      freeze_batch_norm: see model/resnet.build_resnet.
      matching_loss: add the differentiable matching loss (the second training stage).
      loss_averaging: "image" (per-image means) or "pooled" (personlab_tf/losses.py).
      allow_random_init: start from random weights although batch norm is frozen (refused otherwise).
      part_balance: class-balance exponent of the part loss (losses.class_balanced_weights): 0, the paper's
        plain cross-entropy; 1, every part class present in an image weighs the same.
      projection_field: the DSPF, a row of the paper's Table 4 (PROJECTION_FIELDS; module docstring):
        "warped" (the paper's model, default), "residual", "coarse_to_fine", "direct" or "none".
    """

    backbone: str = "resnet101"
    width: int = 256
    weights_path: Optional[str] = None
    freeze_batch_norm: bool = True
    matching_loss: bool = False
    loss_averaging: str = AVERAGE_IMAGES
    allow_random_init: bool = False
    part_balance: float = 0.0
    projection_field: str = DEFAULT_PROJECTION_FIELD

    def __post_init__(self):
        check_projection_field(self.projection_field)

    def check_initialisation(self) -> None:
        """Refuses a frozen-batch-norm network from random weights (model/resnet.check_initialisation)."""
        check_initialisation(self.weights_path, self.freeze_batch_norm, self.allow_random_init, "PartsNetwork")


def _conv(x, filters, kernel, name, activation=None, dtype=None):
    return keras.layers.Conv2D(filters, kernel, padding="same", activation=activation, name=name, dtype=dtype)(x)


def feature_pyramid(stages: Sequence[tf.Tensor], width: int) -> List[tf.Tensor]:
    """FPN (Lin et al.) over [C2, C3, C4, C5]: P_l = conv3x3(lateral(C_l) + up(P_{l+1})); returns [P2..P5]."""
    pyramid = [None] * len(stages)
    top = None
    for index in reversed(range(len(stages))):
        level = index + 2
        lateral = _conv(stages[index], width, 1, f"fpn_lateral{level}")
        if top is not None:
            lateral = keras.layers.Add(name=f"fpn_add{level}")([lateral, UpsampleLike(name=f"fpn_up{level}")(top, lateral)])
        top = lateral
        pyramid[index] = _conv(lateral, width, 3, f"fpn_output{level}")
    return pyramid


def branch(pyramid: Sequence[tf.Tensor], width: int, name: str) -> tf.Tensor:
    """Coarse-to-fine branch (the paper's decoders, DeepLabv3+-like, Eqs. 1 and 7):
    y <- SepConv3x3([up(y), P_l]) from P5 to P2."""
    y = pyramid[-1]
    for index in reversed(range(len(pyramid) - 1)):
        level = index + 2
        up = UpsampleLike(name=f"{name}_up{level}")(y, pyramid[index])
        y = keras.layers.Concatenate(name=f"{name}_concat{level}")([up, pyramid[index]])
        y = keras.layers.SeparableConv2D(width, 3, padding="same", activation="relu", name=f"{name}_sepconv{level}")(y)
    return y


def part_decoder(pyramid: Sequence[tf.Tensor], width: int, stem: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The part branch: `branch` to stride 4 (Eq. 1); with the backbone's stem features `stem` (C1, stride
    2), one more stage y <- SepConv3x3([up(y), C1]) to stride 2."""
    y = branch(pyramid, width, "part_decoder")
    if stem is None:
        return y
    up = UpsampleLike(name="part_decoder_up1")(y, stem)
    y = keras.layers.Concatenate(name="part_decoder_concat1")([up, stem])
    return keras.layers.SeparableConv2D(width, 3, padding="same", activation="relu", name="part_decoder_sepconv1")(y)


def projection_fields(pyramid: List[tf.Tensor], width: int, variant: str = DEFAULT_PROJECTION_FIELD
                      ) -> Dict[int, tf.Tensor]:
    """The DSPF (Eqs. 2-6) of one of the paper's Table 4 rows (PROJECTION_FIELDS, module docstring).

    "warped": coarse to fine with residual refinement and learnable feature warping (Eqs. 3-6), the
    paper's model; "residual": the same with plain upsampling (D_l = 0); "coarse_to_fine": a complete field
    at every level from [P_l, up(P_{l+1}), 2 up(f_{l+1})]; "direct": one field at stride 4 from the
    concatenated pyramid. ("none" has no field: see PartParsingModel.)

    Returns:
      {stride: f_l [B, h, w, 2] in cells of the level}: the strides 4..32, or only 4 for "direct".
    """
    if variant == "direct":
        finest = pyramid[0]
        stacked = keras.layers.Concatenate(name="dspf_direct_input")(
            [finest] + [UpsampleLike(name=f"dspf_direct_up{index + 2}")(level, finest)
                        for index, level in enumerate(pyramid) if index])
        hidden = _conv(stacked, width, 3, "dspf_direct_hidden", "relu")
        return {PYRAMID_STRIDES[0]: _conv(hidden, 2, 1, "dspf_direct_field", dtype=OUTPUT_DTYPE)}
    coarsest = pyramid[-1]
    hidden = _conv(coarsest, width, 3, "dspf_head5", "relu")
    field = _conv(hidden, 2, 1, "dspf_field5", dtype=OUTPUT_DTYPE)
    fields = {PYRAMID_STRIDES[-1]: field}
    features = coarsest
    for index in reversed(range(len(pyramid) - 1)):
        level, fine = index + 2, pyramid[index]
        up = UpsampleLike(name=f"dspf_up{level}")(features, fine)
        if variant == "warped":
            flow = keras.layers.Conv2D(2, 3, padding="same", kernel_initializer="zeros", name=f"dspf_flow{level}",
                                       dtype=OUTPUT_DTYPE)(
                keras.layers.Concatenate(name=f"dspf_flow_input{level}")([up, fine]))
            warped = FlowWarp(name=f"dspf_warp_features{level}", dtype=OUTPUT_DTYPE)(features, flow)
            coarse_field = Scale(2.0, name=f"dspf_double{level}", dtype=OUTPUT_DTYPE)(
                FlowWarp(name=f"dspf_warp_field{level}", dtype=OUTPUT_DTYPE)(field, flow))
        else:
            warped = up
            coarse_field = Scale(2.0, name=f"dspf_double{level}", dtype=OUTPUT_DTYPE)(
                UpsampleLike(name=f"dspf_up_field{level}", dtype=OUTPUT_DTYPE)(field, fine))
        residual_input = keras.layers.Concatenate(name=f"dspf_residual_input{level}")([fine, warped, coarse_field])
        residual = _conv(_conv(residual_input, width, 3, f"dspf_residual_hidden{level}", "relu"), 2, 1,
                         f"dspf_residual{level}", dtype=OUTPUT_DTYPE)
        if variant == "coarse_to_fine":
            field = residual
        else:
            field = keras.layers.Add(name=f"dspf_field{level}", dtype=OUTPUT_DTYPE)([coarse_field, residual])
        fields[PYRAMID_STRIDES[index]] = field
        features = fine
    return fields


@keras.saving.register_keras_serializable(package="personlab_tf")
class PartParsingModel(LossModel):
    """The part-parsing network as a functional Keras model whose `fit` minimises parts.losses.

    Args:
      network: its options (or their `dataclasses.asdict` dict); `weights_path` and `allow_random_init` concern
        the initial weights (`build_model`), not the graph.
      skeleton: the keypoint set (or its `Skeleton.to_config()` dict): K heatmap and short-offset channels, the
        limb logits' channels and the matching loss's limbs (Skeleton.limbs).
      num_parts: C, part classes including the background.
      radius: disk radius R dividing the short-range offset loss (PartsData.disk_radius).
      part_stride: stride of the part logits, targets.PART_STRIDES (4: the paper's part decoder; 2: one
        more stage over the backbone's stem).
    """

    def __init__(self, network: Union[PartsNetwork, Dict[str, Any]], skeleton: Union[Skeleton, Dict[str, Any]],
                 num_parts: int, radius: float = 32.0, part_stride: int = PART_STRIDES[0], name: str = "part_parsing",
                 **kwargs: Any):
        network = network if isinstance(network, PartsNetwork) else dataclass_from_config(PartsNetwork, network)
        skeleton = skeleton if isinstance(skeleton, Skeleton) else Skeleton.from_config(skeleton)
        if not skeleton.limbs:
            raise ValueError(f"the part parser needs limbs: skeleton {skeleton.name} has none")
        if part_stride not in PART_STRIDES:
            raise ValueError(f"part stride {part_stride} must be one of {PART_STRIDES}")
        width, with_stem = network.width, part_stride < PYRAMID_STRIDES[0]
        resnet = build_resnet_pyramid(network.backbone, network.freeze_batch_norm, with_stem)
        images = keras.Input((None, None, 3), name=keys.Sample.IMAGE)
        stages = resnet(images)
        pyramid = feature_pyramid(stages[1:] if with_stem else stages, width)
        parts = part_decoder(pyramid, width, stages[0] if with_stem else None)
        pose = branch(pyramid, width, "pose_decoder")
        outputs = {
            keys.Prediction.PART_LOGITS: _conv(parts, num_parts, 1, "part_head", dtype=OUTPUT_DTYPE),
            keys.Prediction.HEATMAP_LOGITS: _conv(pose, skeleton.num_keypoints, 1, "heatmap_head", dtype=OUTPUT_DTYPE),
            keys.Prediction.SHORT_OFFSETS: SplitXY(dtype=OUTPUT_DTYPE)(
                _conv(pose, 2 * skeleton.num_keypoints, 1, "short_offset_head", dtype=OUTPUT_DTYPE)),
            keys.Prediction.LIMB_LOGITS: _conv(pose, len(skeleton.limbs), 1, "limb_head", dtype=OUTPUT_DTYPE),
        }
        if network.projection_field == "none":
            outputs[keys.Prediction.PROJECTION_FIELD] = ZeroField(name="dspf_none", dtype=OUTPUT_DTYPE)(pose)
        else:
            fields = projection_fields(pyramid, width, network.projection_field)
            outputs.update({keys.Prediction.projection(stride): field for stride, field in fields.items()})
            outputs[keys.Prediction.PROJECTION_FIELD] = Scale(float(PYRAMID_STRIDES[0]), name="dspf_pixels",
                                                              dtype=OUTPUT_DTYPE)(fields[PYRAMID_STRIDES[0]])
        super().__init__(images, outputs, name=name, **kwargs)
        self.prediction_keys = prediction_keys(network.projection_field)
        self.network = network
        self.skeleton = skeleton
        self.backbone = resnet
        self.num_parts = num_parts
        self.radius = radius
        self.part_stride = part_stride
        self.uncertainty = parts_losses.UncertaintyWeights(name="uncertainty", dtype=OUTPUT_DTYPE)
        self.track_losses(parts_losses.loss_keys(network.matching_loss, network.projection_field != "none")
                          + (keys.Loss.TOTAL,))

    def get_config(self) -> Dict[str, Any]:
        return {"network": dataclasses.asdict(self.network), "skeleton": self.skeleton.to_config(),
                "num_parts": self.num_parts, "radius": self.radius, "part_stride": self.part_stride, "name": self.name}

    def person_probability(self, outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """1 - P(background) of the part logits, [B, h, w, 1]."""
        return 1.0 - tf.nn.softmax(tf.cast(outputs[keys.Prediction.PART_LOGITS], tf.float32))[..., :1]

    def learned_values(self) -> Dict[str, float]:
        """{"log_variance/<term>": s_i} of the terms this model trains (losses.UncertaintyWeights)."""
        return {f"log_variance/{key.removesuffix('_loss')}": value
                for key, value in self.uncertainty.values().items() if key in self.loss_trackers}

    def compute_losses(self, predictions: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """losses.py terms and their uncertainty-weighted total (replica shares)."""
        network = self.network
        terms = parts_losses.part_parsing_losses(predictions, targets, self.radius, self.skeleton.limbs,
                                                 network.matching_loss, network.loss_averaging, network.part_balance)
        terms[keys.Loss.TOTAL] = self.uncertainty(terms)
        return terms


def build_model(network: PartsNetwork, num_parts: int, skeleton: Skeleton, radius: float, initial: bool = True,
                part_stride: int = PART_STRIDES[0]) -> PartParsingModel:
    """A PartParsingModel of `network` for `num_parts` classes (background included) and the keypoints and
    limbs of `skeleton`, whose short-range offset loss divides by the targets' disk radius `radius` and whose
    part logits have the targets' `part_stride`; the ImageNet weights of `network.weights_path` are loaded
    into the backbone when it is given and `initial` (a model whose weights a checkpoint will replace skips
    them)."""
    model = PartParsingModel(network, skeleton, num_parts, radius, part_stride)
    weights = initial_weights(network.weights_path, network.backbone) if initial else None
    if weights:
        load_backbone_weights(model.backbone, weights)
    return model
