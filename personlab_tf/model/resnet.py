"""Atrous ResNet v1 backbones (bottleneck blocks) with frozen batch norm.

Layer names and topology follow `keras.applications.resnet` (v1: the stride sits on the first 1x1 conv
of a stage, convolutions have biases, batch norm epsilon 1.001e-5), so the ImageNet weights of the Keras
ResNet-50/101/152 `.h5` files load by layer name from a local path (`load_backbone_weights`).

Atrous convolution (DeepLab): for an output stride of 16 or 8, the stride 2 of the last one or two stages
is replaced by stride 1 and the 3x3 convolutions of those stages are dilated by 2 (then 4), which keeps
every weight shape and so the parameter count (ResNet-101 without top: 42,658,176).

Grid convention: feature cell (i, j) is the input pixel (x, y) = (os j, os i) for any input size S (the
padding of the stem and the 1x1 stride-2 convolutions keep the grids corner-aligned); the output has
floor((S - 1) / os) + 1 cells per side, i.e. (S - 1) / os + 1 when S = n os + 1.

Batch norm is frozen: the layers are non-trainable, which in Keras 3 also makes them run in inference
mode (moving statistics) under `training=True`. Setting `trainable = True` on an enclosing model
unfreezes them again; do not.
"""

import dataclasses
import math
import os
from typing import Optional, Union

import h5py
import keras
import tensorflow as tf

from personlab_tf.model.layers import FusedBatchNormalization

BN_EPSILON = 1.001e-5
IMAGENET = "imagenet"  # weights_path value: the Keras-applications ImageNet weights of the backbone
# The Keras-applications weight files without top: their address and MD5 (as keras.applications.resnet).
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_NOTOP_MD5 = {"resnet50": "4d473c1dd8becc155b73f8504c6f6626", "resnet101": "88cf7a10940856eca736dc7b7e228a21",
              "resnet152": "ee4c566cf9a93f14d82f913c2dc6dd0c"}
OUTPUT_STRIDES = (8, 16, 32)
# Caffe preprocessing of keras.applications.resnet: BGR channel order, ImageNet mean subtracted.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """Depth and width of a ResNet v1: blocks and bottleneck widths of stages conv2..conv5."""

    blocks: tuple
    filters: tuple = (64, 128, 256, 512)
    stem_filters: int = 64


BACKBONES = {
    "resnet50": ResNetSpec(blocks=(3, 4, 6, 3)),
    "resnet101": ResNetSpec(blocks=(3, 4, 23, 3)),
    "resnet152": ResNetSpec(blocks=(3, 8, 36, 3)),
    # Narrow and shallow, for tests and demos on CPU.
    "resnet_tiny": ResNetSpec(blocks=(1, 1, 2, 1), filters=(8, 16, 32, 64), stem_filters=16),
}


def backbone_spec(name: str) -> ResNetSpec:
    """The spec of the backbone called `name`; ValueError listing the known ones otherwise."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


@keras.saving.register_keras_serializable(package="personlab_tf")
class CaffePreprocessing(keras.layers.Layer):
    """RGB [0, 255] (uint8 or float) -> float32 BGR minus the ImageNet mean, as keras.applications.resnet."""

    def call(self, images: tf.Tensor) -> tf.Tensor:
        images = tf.cast(images, tf.float32)
        return tf.reverse(images, axis=[-1]) - tf.constant(IMAGENET_BGR_MEAN, tf.float32)


def _conv_bn(x, filters, kernel_size, name, strides=1, dilation_rate=1, padding="valid", relu=True,
             freeze_batch_norm=True):
    """Conv2D (with bias) -> BatchNorm [-> ReLU], named `{name}_conv`, `{name}_bn`, `{name}_relu`."""
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate,
                            name=f"{name}_conv")(x)
    x = FusedBatchNormalization(epsilon=BN_EPSILON, trainable=not freeze_batch_norm, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _bottleneck(x, filters, name, stride, dilation_rate, projection, freeze_batch_norm):
    """Bottleneck block v1: 1x1 (strided) -> 3x3 (dilated) -> 1x1 (4 filters), plus the shortcut."""
    shortcut = x
    if projection:
        shortcut = _conv_bn(x, 4 * filters, 1, f"{name}_0", strides=stride, relu=False,
                            freeze_batch_norm=freeze_batch_norm)
    x = _conv_bn(x, filters, 1, f"{name}_1", strides=stride, freeze_batch_norm=freeze_batch_norm)
    x = _conv_bn(x, filters, 3, f"{name}_2", dilation_rate=dilation_rate, padding="same",
                 freeze_batch_norm=freeze_batch_norm)
    x = _conv_bn(x, 4 * filters, 1, f"{name}_3", relu=False, freeze_batch_norm=freeze_batch_norm)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def middle_block(num_blocks: int) -> int:
    """1-based index of the conv4 block whose output feeds the auxiliary heads (the middle one)."""
    return math.ceil(num_blocks / 2)


def _stages(images, spec, output_stride, freeze_batch_norm):
    """The atrous ResNet v1 on `images`: (stage outputs [conv1, conv2, conv3, conv4, conv5], middle conv4
    block); conv1 is the stem at stride 2."""
    x = CaffePreprocessing(name="preprocessing")(images)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = _conv_bn(x, spec.stem_filters, 7, "conv1", strides=2, freeze_batch_norm=freeze_batch_norm)
    outputs = [x]
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    stride, dilation, middle = 4, 1, None
    for stage, (blocks, filters) in enumerate(zip(spec.blocks, spec.filters), start=2):
        block_stride = 1
        if stage > 2:
            if stride < output_stride:
                block_stride, stride = 2, stride * 2
            else:
                dilation *= 2
        for block in range(1, blocks + 1):
            x = _bottleneck(x, filters, f"conv{stage}_block{block}", stride=block_stride if block == 1 else 1,
                            dilation_rate=dilation, projection=block == 1, freeze_batch_norm=freeze_batch_norm)
            if stage == 4 and block == middle_block(blocks):
                middle = x
        outputs.append(x)
    return outputs, middle


def build_resnet(name: str = "resnet101", output_stride: int = 16, freeze_batch_norm: bool = True) -> keras.Model:
    """Builds an atrous ResNet v1 backbone without top, randomly initialised.

    Args:
      name: a key of BACKBONES.
      output_stride: 8, 16 or 32; input pixels per output cell.
      freeze_batch_norm: True (the paper, with a pretrained backbone): batch norm keeps its statistics
        and scale/offset; False: batch norm trains (batch statistics), for a network trained from scratch.

    Returns:
      A functional `keras.Model` named `name` mapping images [B, H, W, 3] (RGB in [0, 255], uint8 or
      float) to (features [B, h, w, 4 filters[-1]], middle [B, h', w', 4 filters[2]]): the conv5 output at
      stride `output_stride` and the output of the middle conv4 block at stride min(16, output_stride).
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    images = keras.Input((None, None, 3), name="image")
    stages, middle = _stages(images, backbone_spec(name), output_stride, freeze_batch_norm)
    return keras.Model(images, (stages[-1], middle), name=name)


def build_resnet_pyramid(name: str = "resnet101", freeze_batch_norm: bool = True,
                         with_stem: bool = False) -> keras.Model:
    """The same ResNet v1 without atrous convolution, returning its four stages for a feature pyramid.

    Args:
      with_stem: also return the stem's output C1 (conv1, stride 2) in front of the list.

    Returns:
      A functional `keras.Model` named `name` mapping images [B, H, W, 3] (RGB in [0, 255]) to the list
      [C2, C3, C4, C5] of the conv2..conv5 outputs at strides 4, 8, 16, 32 ([C1, C2, ..., C5] with
      `with_stem`; corner-aligned grids: cell (i, j) of stride s is input pixel (s j, s i)). Layer names and
      weights are those of `build_resnet`, so the same ImageNet `.h5` loads (`load_backbone_weights`).
    """
    images = keras.Input((None, None, 3), name="image")
    stages, _ = _stages(images, backbone_spec(name), 32, freeze_batch_norm)
    return keras.Model(images, stages if with_stem else stages[1:], name=name)


def keras_cache_dir() -> str:
    """Keras' cache directory: $KERAS_HOME, else ~/.keras (where keras.applications keeps its weights)."""
    return os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))


def imagenet_weights_file(name: str) -> str:
    """File name of the Keras-applications ImageNet weights without top of backbone `name`."""
    return f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5"


def imagenet_weights(name: str) -> str:
    """Path of the ImageNet weights of backbone `name` in the Keras cache (`<cache>/models/<file>`).

    A file already there is used as it is (so it can be placed by hand on a machine without network);
    otherwise it is downloaded from the Keras-applications address and checked against its MD5.

    Raises:
      ValueError: the backbone has no ImageNet weights (resnet_tiny).
      FileNotFoundError: the download failed; the message names the file and where to place it.
    """
    if name not in _NOTOP_MD5:
        raise ValueError(f"backbone {name!r} has no ImageNet weights; those of {', '.join(sorted(_NOTOP_MD5))} do")
    file_name = imagenet_weights_file(name)
    cached = os.path.join(keras_cache_dir(), "models", file_name)
    if os.path.exists(cached):
        return cached
    try:
        return keras.utils.get_file(file_name, _WEIGHTS_URL + file_name, cache_subdir="models",
                                    file_hash=_NOTOP_MD5[name], cache_dir=keras_cache_dir())
    except Exception as error:  # urllib and hashing raise many types; the message says what to do
        raise FileNotFoundError(f"cannot download the ImageNet weights {file_name} ({type(error).__name__}); place "
                                f"the file at {cached} or give a local .h5 as weights_path") from None


def initial_weights(weights_path: Optional[str], name: str) -> Optional[str]:
    """The local .h5 to load into backbone `name`: `weights_path` itself, or `imagenet_weights(name)` for
    weights_path == IMAGENET, or None (random initialisation)."""
    return imagenet_weights(name) if weights_path == IMAGENET else weights_path


def check_initialisation(weights_path: Optional[str], freeze_batch_norm: bool, allow_random_init: bool,
                         options: str) -> None:
    """Refuses the silent waste of a run: a backbone with frozen batch norm (no normalisation statistics of
    its own) started from random weights, unless `allow_random_init` says so explicitly.

    Args:
      options: the gin name of the options holding the three settings, for the message (e.g.
        "PersonLabNetwork").

    Raises:
      ValueError: one line naming the bindings to set.
    """
    if weights_path is None and freeze_batch_norm and not allow_random_init:
        raise ValueError(f"{options}.weights_path is not set: a backbone with frozen batch norm does not train from "
                         f"random weights; bind {options}.weights_path = 'imagenet' (or a local Keras .h5), or "
                         f"{options}.freeze_batch_norm = False, or {options}.allow_random_init = True")


def load_backbone_weights(backbone: keras.Model, path: Union[str, os.PathLike]) -> None:
    """Loads Keras-applications ResNet ImageNet weights (legacy `.h5`, with or without top) by layer name.

    Every backbone layer with weights must be in the file (catches a wrong file, which loading by name
    would otherwise skip silently); layers of the file absent from the backbone (the top) are ignored.
    """
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        stored = set(group.keys())
    missing = [layer.name for layer in backbone.layers if layer.weights and layer.name not in stored]
    if missing:
        raise ValueError(f"{path} lacks weights for {len(missing)} backbone layers, e.g. {missing[:3]}")
    backbone.load_weights(path, by_name=True)
