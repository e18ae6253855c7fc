"""The PersonLab network (§4.1): atrous ResNet, 1x1 heads, recurrent offset refinement, the loss table.

Inputs: images [B, H, W, 3], RGB in [0, 255] (uint8 or float). Outputs (dict, keys.Prediction), at
output stride os, cell (i, j) at input pixel (os j, os i):
  HEATMAP_LOGITS [B, h, w, K], SEGMENTATION_LOGITS [B, h, w, 1],
  SHORT_OFFSETS [B, h, w, K, 2], MID_OFFSETS [B, h, w, E, 2] (refined, Eq. 2),
  LONG_OFFSETS [B, h, w, K, 2] (refined, Eq. 5); offsets (x, y) in input pixels.
With auxiliary heads, the same five under AUXILIARY_PREFIX + key, predicted from the middle conv4 block
(stride min(16, os)) without refinement; they serve the training loss only and `inference_model()` drops
them.
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple, Union

import gin
import keras
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS
from personlab_tf.skeleton import Skeleton
from personlab_tf.losses import AVERAGE_IMAGES
from personlab_tf.model.layers import OUTPUT_DTYPE, SplitXY
from personlab_tf.model.resnet import build_resnet, check_initialisation, initial_weights, load_backbone_weights
from personlab_tf.model.training import LossModel
from personlab_tf.task import dataclass_from_config
from personlab_tf.tasks.personlab.losses import LOSS_KEYS, PersonLabLossWeights, loss_weights_of, personlab_losses
from personlab_tf.tasks.personlab.refine import LongRangeRefinement, MidRangeRefinement

PREDICTION_KEYS = (keys.Prediction.HEATMAP_LOGITS, keys.Prediction.SEGMENTATION_LOGITS,
                   keys.Prediction.SHORT_OFFSETS, keys.Prediction.MID_OFFSETS, keys.Prediction.LONG_OFFSETS)
# Head layer names (kept from the first layout, so checkpoints keep restoring).
_HEAD_NAMES = {keys.Prediction.HEATMAP_LOGITS: "heatmap_logits", keys.Prediction.SEGMENTATION_LOGITS:
               "segmentation_logits", keys.Prediction.SHORT_OFFSETS: "short_offsets",
               keys.Prediction.MID_OFFSETS: "mid_offsets", keys.Prediction.LONG_OFFSETS: "long_offsets"}


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PersonLabNetwork:
    """The network and its losses (gin: `PersonLabNetwork.backbone = 'resnet101'`, ...).

    Attributes:
      backbone: a key of model/resnet.py BACKBONES (resnet50/101/152, resnet_tiny for tests and the demo).
      output_stride: 8, 16 or 32 in training (the paper trains at 16 and evaluates at 8; a model rebuilt at
        another stride takes the same weights).
      weights_path: the backbone's ImageNet weights: "imagenet" (Keras applications, downloaded to the Keras
        cache where the network allows, model/resnet.py), a local Keras-applications `.h5`, or None.
      allow_random_init: start from random weights although batch norm is frozen (refused otherwise:
        `check_initialisation`).
      refine_mid_steps: Eq. 2 steps; refine_long_steps: (self steps, short steps) of Eq. 5; 0 disables
        (Appendix A.3 ablation); refine_long_gate: None (the paper's self steps) or the gate of
        refine.gated_step (docs/decoding.md).
      jit_refinement: in training, run the Eq. 2 / Eq. 5 refinement compiled by XLA (tasks/personlab/refine.py;
        the same arithmetic, its small ops fused: the demo's step 0.75-0.87x the time, docs/training.md).
        Inference always runs the plain ops.
      auxiliary_heads: the training-only heads on the middle conv4 block.
      loss_weights: the weight of each term keyed by its loss key, §4.1 (losses.PersonLabLossWeights, configured
        as gin `PersonLabLossWeights.mid_offset_loss = 0.5`); auxiliary_loss_weight: the factor of the
        auxiliary heads' terms.
      loss_averaging: "image" (per-image means averaged over the images: every image weighs the same, as with
        the paper's one image per GPU) or "pooled" (one mean over the batch's positions); losses.py.
      freeze_batch_norm: True (the paper, pretrained backbone); False lets batch norm train, for a backbone
        trained from scratch (the demo).
    """

    backbone: str = "resnet101"
    output_stride: int = 16
    weights_path: Optional[str] = None
    refine_mid_steps: int = 2
    refine_long_steps: Tuple[int, int] = (2, 2)
    refine_long_gate: Optional[float] = None
    jit_refinement: bool = False
    auxiliary_heads: bool = True
    loss_weights: PersonLabLossWeights = dataclasses.field(default_factory=PersonLabLossWeights)
    auxiliary_loss_weight: float = 1.0
    loss_averaging: str = AVERAGE_IMAGES
    freeze_batch_norm: bool = True
    allow_random_init: bool = False

    def __post_init__(self):
        object.__setattr__(self, "loss_weights", loss_weights_of(self.loss_weights))

    def check_initialisation(self) -> None:
        """Refuses a frozen-batch-norm network from random weights (model/resnet.check_initialisation)."""
        check_initialisation(self.weights_path, self.freeze_batch_norm, self.allow_random_init, "PersonLabNetwork")


def _heads(features, prefix, skeleton):
    """1x1 conv heads (float32): heatmap and segmentation logits, short/mid/long offsets as [B, h, w, N, 2]
    (K heatmaps, E mid-range edges of `skeleton`)."""
    def conv(channels, key):
        return keras.layers.Conv2D(channels, 1, name=f"{prefix}{_HEAD_NAMES[key]}_head".replace("/", "_"),
                                   dtype=OUTPUT_DTYPE)(features)

    def offsets(channels, key):
        return SplitXY(dtype=OUTPUT_DTYPE)(conv(channels, key))

    return {
        keys.Prediction.HEATMAP_LOGITS: conv(skeleton.num_keypoints, keys.Prediction.HEATMAP_LOGITS),
        keys.Prediction.SEGMENTATION_LOGITS: conv(1, keys.Prediction.SEGMENTATION_LOGITS),
        keys.Prediction.SHORT_OFFSETS: offsets(2 * skeleton.num_keypoints, keys.Prediction.SHORT_OFFSETS),
        keys.Prediction.MID_OFFSETS: offsets(2 * skeleton.num_edges, keys.Prediction.MID_OFFSETS),
        keys.Prediction.LONG_OFFSETS: offsets(2 * skeleton.num_keypoints, keys.Prediction.LONG_OFFSETS),
    }


@keras.saving.register_keras_serializable(package="personlab_tf")
class PersonLabModel(LossModel):
    """PersonLab as a functional Keras model whose `fit`/`evaluate` steps compute the PersonLab losses.

    Training data: `(images, targets)` pairs or single dicts holding keys.Sample.IMAGE and the target keys;
    targets batched on the target grid (stride s dividing os). Each loss term is reported as a metric
    (global value over replicas). Compile with train/optimizer.py `build_optimizer()`.

    Args:
      skeleton: the keypoint set (or its `Skeleton.to_config()` dict, as `get_config` stores it).
      network: its options (or their `dataclasses.asdict` dict); `weights_path` and `allow_random_init` concern
        the initial weights (`build_model`), not the graph.
      disk_radius: R of the targets it trains on, which divides the offset losses (PersonLabData.disk_radius).
    """

    prediction_keys = PREDICTION_KEYS

    def __init__(self, skeleton: Union[Skeleton, Dict[str, Any]], network: Union[PersonLabNetwork, Dict[str, Any]],
                 disk_radius: float = DISK_RADIUS, name: str = "personlab", **kwargs: Any):
        skeleton = skeleton if isinstance(skeleton, Skeleton) else Skeleton.from_config(skeleton)
        network = network if isinstance(network, PersonLabNetwork) else dataclass_from_config(PersonLabNetwork, network)
        resnet = build_resnet(network.backbone, network.output_stride, network.freeze_batch_norm)
        images = keras.Input((None, None, 3), name=keys.Sample.IMAGE)
        features, middle = resnet(images)
        outputs = _heads(features, "", skeleton)
        edge_targets = [target for _, target in skeleton.directed_edges]
        outputs[keys.Prediction.MID_OFFSETS] = MidRangeRefinement(
            network.output_stride, edge_targets, network.refine_mid_steps, network.jit_refinement,
            name="mid_refinement", dtype=OUTPUT_DTYPE)(outputs[keys.Prediction.MID_OFFSETS],
                                                       outputs[keys.Prediction.SHORT_OFFSETS])
        outputs[keys.Prediction.LONG_OFFSETS] = LongRangeRefinement(
            network.output_stride, *network.refine_long_steps, network.refine_long_gate, network.jit_refinement,
            name="long_refinement", dtype=OUTPUT_DTYPE)(outputs[keys.Prediction.LONG_OFFSETS],
                                                        outputs[keys.Prediction.SHORT_OFFSETS])
        if network.auxiliary_heads:
            prefix = keys.Prediction.AUXILIARY_PREFIX
            outputs.update({prefix + k: v for k, v in _heads(middle, prefix, skeleton).items()})
        super().__init__(images, outputs, name=name, **kwargs)
        self.skeleton = skeleton
        self.network = network
        self.backbone = resnet
        self.disk_radius = float(disk_radius)
        auxiliary = tuple(keys.Prediction.AUXILIARY_PREFIX + k for k in LOSS_KEYS) if network.auxiliary_heads else ()
        self.track_losses(LOSS_KEYS + auxiliary + (keys.Loss.TOTAL,))

    def get_config(self) -> Dict[str, Any]:
        return {"skeleton": self.skeleton.to_config(), "network": dataclasses.asdict(self.network),
                "disk_radius": self.disk_radius, "name": self.name}

    def person_probability(self, outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """sigmoid of the segmentation logit, [B, h, w, 1]."""
        return tf.sigmoid(tf.cast(outputs[keys.Prediction.SEGMENTATION_LOGITS], tf.float32))

    def compute_losses(self, predictions: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """personlab_losses with this model's weights and its targets' disk radius (the offsets' R): dict of loss
        terms and keys.Loss.TOTAL (replica shares)."""
        network = self.network
        return personlab_losses(predictions, targets, network.loss_weights, network.auxiliary_loss_weight,
                                network.loss_averaging, self.disk_radius)


def build_model(skeleton: Skeleton, network: PersonLabNetwork = PersonLabNetwork(), disk_radius: float = DISK_RADIUS,
                initial: bool = True) -> PersonLabModel:
    """A PersonLabModel of `network` for `skeleton`'s keypoints, at the network's output stride, with the
    ImageNet weights of `network.weights_path` loaded into the backbone when it is given and `initial` (a model
    whose weights a checkpoint will replace skips them); its offset losses are divided by `disk_radius`, the R
    of the targets it trains on (PersonLabData.disk_radius)."""
    model = PersonLabModel(skeleton, network, disk_radius)
    weights = initial_weights(network.weights_path, network.backbone) if initial else None
    if weights:
        load_backbone_weights(model.backbone, weights)
    return model
