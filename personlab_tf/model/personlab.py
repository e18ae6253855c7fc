"""The PersonLab network (§4.1): atrous ResNet, 1x1 heads, recurrent offset refinement, training step.

Inputs: images [B, H, W, 3], RGB in [0, 255] (uint8 or float). Outputs (dict, personlab_tf.keys), at
output stride os, cell (i, j) at input pixel (os j, os i):
  HEATMAP_LOGITS [B, h, w, K], SEGMENTATION_LOGITS [B, h, w, 1],
  SHORT_OFFSETS [B, h, w, K, 2], MID_OFFSETS [B, h, w, E, 2] (refined, Eq. 2),
  LONG_OFFSETS [B, h, w, K, 2] (refined, Eq. 5); offsets (x, y) in input pixels.
With auxiliary heads, the same five under AUXILIARY_PREFIX + key, predicted from the middle conv4 block
(stride min(16, os)) without refinement; they serve the training loss only and `inference_model()` drops
them.
"""

import gin
import keras
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import NUM_EDGES, NUM_KEYPOINTS
from personlab_tf.losses import DEFAULT_LOSS_WEIGHTS, LOSS_KEYS, personlab_losses
from personlab_tf.model.refine import LongRangeRefinement, MidRangeRefinement
from personlab_tf.model.resnet import build_resnet, load_backbone_weights
from personlab_tf.model.training import LossModel

PREDICTION_KEYS = (keys.HEATMAP_LOGITS, keys.SEGMENTATION_LOGITS, keys.SHORT_OFFSETS, keys.MID_OFFSETS,
                   keys.LONG_OFFSETS)


@keras.saving.register_keras_serializable(package="personlab_tf")
class SplitXY(keras.layers.Layer):
    """[B, h, w, 2N] -> [B, h, w, N, 2]: channel 2n is the x, channel 2n + 1 the y of vector n."""

    def call(self, x):
        shape = tf.shape(x)
        return tf.reshape(x, tf.concat([shape[:3], [x.shape[-1] // 2, 2]], axis=0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:3]) + (input_shape[-1] // 2, 2)


def _heads(features, prefix):
    """1x1 conv heads: heatmap and segmentation logits, short/mid/long offsets as [B, h, w, N, 2]."""
    def conv(channels, key):
        return keras.layers.Conv2D(channels, 1, name=f"{prefix}{key}_head".replace("/", "_"))(features)

    return {
        keys.HEATMAP_LOGITS: conv(NUM_KEYPOINTS, keys.HEATMAP_LOGITS),
        keys.SEGMENTATION_LOGITS: conv(1, keys.SEGMENTATION_LOGITS),
        keys.SHORT_OFFSETS: SplitXY()(conv(2 * NUM_KEYPOINTS, keys.SHORT_OFFSETS)),
        keys.MID_OFFSETS: SplitXY()(conv(2 * NUM_EDGES, keys.MID_OFFSETS)),
        keys.LONG_OFFSETS: SplitXY()(conv(2 * NUM_KEYPOINTS, keys.LONG_OFFSETS)),
    }


@keras.saving.register_keras_serializable(package="personlab_tf")
class PersonLabModel(LossModel):
    """PersonLab as a functional Keras model whose `fit`/`evaluate` steps compute the PersonLab losses.

    Training data: `(images, targets)` pairs or single dicts holding keys.IMAGE and the target keys;
    targets batched on the target grid (stride s dividing os). Each loss term is reported as a metric
    (global value over replicas). Compile with `build_optimizer()` (SGD momentum 0.9, EMA weights).

    Args:
      backbone: a key of resnet.BACKBONES; output_stride: 8, 16 or 32.
      refine_mid_steps: Eq. 2 steps; refine_long_steps: (self steps, short steps) of Eq. 5; 0 disables.
      auxiliary_heads: add the training-only heads on the middle conv4 block.
      loss_weights, auxiliary_loss_weight: see losses.personlab_losses.
      freeze_batch_norm: see resnet.build_resnet (False only for backbones trained from scratch).
    """

    prediction_keys = PREDICTION_KEYS

    def __init__(self, backbone="resnet101", output_stride=16, refine_mid_steps=2, refine_long_steps=(2, 2),
                 auxiliary_heads=True, loss_weights=DEFAULT_LOSS_WEIGHTS, auxiliary_loss_weight=1.0,
                 freeze_batch_norm=True, name="personlab", **kwargs):
        resnet = build_resnet(backbone, output_stride, freeze_batch_norm)
        images = keras.Input((None, None, 3), name=keys.IMAGE)
        features, middle = resnet(images)
        outputs = _heads(features, "")
        outputs[keys.MID_OFFSETS] = MidRangeRefinement(output_stride, refine_mid_steps, name="mid_refinement")(
            outputs[keys.MID_OFFSETS], outputs[keys.SHORT_OFFSETS])
        outputs[keys.LONG_OFFSETS] = LongRangeRefinement(output_stride, *refine_long_steps, name="long_refinement")(
            outputs[keys.LONG_OFFSETS], outputs[keys.SHORT_OFFSETS])
        if auxiliary_heads:
            outputs.update({keys.AUXILIARY_PREFIX + k: v for k, v in _heads(middle, keys.AUXILIARY_PREFIX).items()})
        super().__init__(images, outputs, name=name, **kwargs)
        self.backbone = resnet
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.refine_mid_steps = refine_mid_steps
        self.refine_long_steps = tuple(refine_long_steps)
        self.auxiliary_heads = auxiliary_heads
        self.loss_weights = tuple(loss_weights)
        self.auxiliary_loss_weight = auxiliary_loss_weight
        self.freeze_batch_norm = freeze_batch_norm
        tracked = LOSS_KEYS + (tuple(keys.AUXILIARY_PREFIX + k for k in LOSS_KEYS) if auxiliary_heads else ())
        # Metric names cannot hold "/": the logs keep the keys, the Mean objects get "_" instead.
        self.loss_trackers = {k: keras.metrics.Mean(name=k.replace("/", "_")) for k in tracked + (keys.TOTAL_LOSS,)}

    def get_config(self):
        return {"backbone": self.backbone_name, "output_stride": self.output_stride,
                "refine_mid_steps": self.refine_mid_steps, "refine_long_steps": self.refine_long_steps,
                "auxiliary_heads": self.auxiliary_heads, "loss_weights": self.loss_weights,
                "auxiliary_loss_weight": self.auxiliary_loss_weight, "freeze_batch_norm": self.freeze_batch_norm,
                "name": self.name}

    def summary_maps(self, outputs):
        """(keypoint probability [B, h, w, 1], person probability [B, h, w, 1]) for TensorBoard images."""
        keypoints = tf.reduce_max(tf.sigmoid(outputs[keys.HEATMAP_LOGITS]), axis=-1, keepdims=True)
        return keypoints, tf.sigmoid(outputs[keys.SEGMENTATION_LOGITS])

    def compute_losses(self, predictions, targets):
        """personlab_losses with this model's weights: dict of loss terms and TOTAL_LOSS (replica shares)."""
        return personlab_losses(predictions, targets, self.loss_weights, self.auxiliary_loss_weight)

@gin.configurable
def build_model(backbone="resnet101", output_stride=16, weights_path=None, refine_mid_steps=2,
                refine_long_steps=(2, 2), auxiliary_heads=True, loss_weights=DEFAULT_LOSS_WEIGHTS,
                auxiliary_loss_weight=1.0, freeze_batch_norm=True):
    """Builds a PersonLabModel; `weights_path`: optional local Keras-applications ImageNet `.h5` of the backbone.

    Backbones: resnet50, resnet101, resnet152, resnet_tiny (tests). Output stride 8, 16 or 32 (the paper
    trains at 16 and evaluates at 8; a model rebuilt at another stride takes the same weights). Steps 0
    disable refinement (Appendix A.3 ablation). `freeze_batch_norm=False` lets batch norm train, for a
    backbone trained from scratch (the demo); the paper freezes it with ImageNet statistics.
    """
    model = PersonLabModel(backbone, output_stride, refine_mid_steps, refine_long_steps, auxiliary_heads,
                           loss_weights, auxiliary_loss_weight, freeze_batch_norm)
    if weights_path:
        load_backbone_weights(model.backbone, weights_path)
    return model


@gin.configurable
def build_optimizer(learning_rate=1e-3, momentum=0.9, ema_momentum=0.9999, name="sgd", schedule="constant",
                    num_steps=None, weight_decay=None):
    """The optimizer, with Polyak averaging of the weights (EMA).

    name "sgd" is the paper's (§4.1: momentum 0.9, constant learning rate 1e-3); "adam" (momentum unused)
    trains a small network from scratch in far fewer steps, for the demo. schedule "constant" is the
    paper's; "cosine" decays `learning_rate` to 0 over `num_steps` (the trainer passes its total), which
    a run of a few thousand steps needs to settle. `num_steps` None is for restoring weights only (export,
    evaluation): the optimizer has the same variables, so a checkpoint restores, but its rate is not meant
    for training. `fit` ends by writing the averaged weights into the model (`finalize_variable_values`);
    a custom loop must do it (or swap with keras.callbacks.SwapEMAWeights) before evaluation or export.
    `weight_decay`: Keras' decoupled decay per step (None: none, as PersonLab; the part parser's 1e-5).
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown learning rate schedule {schedule!r}; expected 'constant' or 'cosine'")
    if schedule == "cosine" and not isinstance(learning_rate, (int, float)):
        raise ValueError("schedule 'cosine' decays a constant learning_rate; got a schedule already")
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, num_steps or 1)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=weight_decay, use_ema=True,
                                    ema_momentum=ema_momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay, use_ema=True, ema_momentum=ema_momentum)
    raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adam'")
