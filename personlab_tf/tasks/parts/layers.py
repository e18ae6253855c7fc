"""The learnable feature warping of the part-parsing network (second paper Eqs. 5-6).

Grids are corner aligned (ops.bilinear): a map of stride s has cell (i, j) at input pixel (s j, s i),
and a level twice as fine has cell p where the coarse level has cell p / 2.
"""

from typing import Optional, Tuple

import keras
import tensorflow as tf

from personlab_tf.ops.bilinear import bilinear_sample


def warp_to_finer(coarse: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """W(X, Delta) of the second paper's Eqs. 5-6: the coarse map read at the fine level's cells moved by
    the flow, with bilinear interpolation over the four neighbours of each source point.

    Fine cell p (in fine cells, (x, y) = (column, row)) reads the coarse map at p + Delta(p) in fine
    cells, i.e. at (p + Delta(p)) / 2 in coarse cells. A zero flow is plain corner-aligned upsampling.
    Differentiable with respect to the map and the flow (Jaderberg et al.'s sampler, ops.bilinear).

    Args:
      coarse: [B, h, w, C] map of the coarser level.
      flow: [B, h', w', 2] feature flow Delta on the finer level, (x, y) in fine cells.

    Returns:
      [B, h', w', C].
    """
    height, width = tf.shape(flow)[1], tf.shape(flow)[2]
    rows, columns = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    cells = tf.cast(tf.stack([columns, rows], axis=-1), flow.dtype)[tf.newaxis]
    return bilinear_sample(coarse, cells + flow, output_stride=2)


@keras.saving.register_keras_serializable(package="personlab_tf")
class FlowWarp(keras.layers.Layer):
    """Keras wrapper of `warp_to_finer`: call(coarse [B, h, w, C], flow [B, h', w', 2])."""

    def call(self, coarse: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
        return warp_to_finer(coarse, flow)

    def compute_output_shape(self, coarse_shape: Tuple[Optional[int], ...],
                             flow_shape: Tuple[Optional[int], ...]) -> Tuple[Optional[int], ...]:
        return (flow_shape[0], flow_shape[1], flow_shape[2], coarse_shape[3])


@keras.saving.register_keras_serializable(package="personlab_tf")
class ZeroField(keras.layers.Layer):
    """call(like [B, h, w, C]) -> zeros [B, h, w, 2]: the projection field of a network without one (the
    `PartsNetwork.projection_field = 'none'` ablation), with which every pixel projects onto itself."""

    def call(self, like: tf.Tensor) -> tf.Tensor:
        return tf.zeros(tf.concat([tf.shape(like)[:3], [2]], axis=0), self.compute_dtype)

    def compute_output_shape(self, like_shape: Tuple[Optional[int], ...]) -> Tuple[Optional[int], ...]:
        return (like_shape[0], like_shape[1], like_shape[2], 2)
