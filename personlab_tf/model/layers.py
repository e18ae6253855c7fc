"""Small Keras layers shared by the tasks' networks: channel splitting, corner-aligned upsampling, scaling.

Grids are corner aligned (ops/bilinear.py): a map of stride s has cell (i, j) at input pixel (s j, s i).

Mixed precision (docs/training.md): under a `mixed_bfloat16` / `mixed_float16` policy the backbone computes
in 16 bits, but the layers that make the networks' outputs (logits, offsets, projection fields) and every
layer that samples or refines them take `dtype=OUTPUT_DTYPE`, so outputs, refinement and losses stay float32.
"""

from typing import Any, Dict, Optional, Tuple

import keras
import tensorflow as tf

from personlab_tf.ops.bilinear import resize_aligned

OUTPUT_DTYPE = "float32"


@keras.saving.register_keras_serializable(package="personlab_tf")
class SplitXY(keras.layers.Layer):
    """[B, h, w, 2N] -> [B, h, w, N, 2]: channel 2n is the x, channel 2n + 1 the y of vector n."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(x)
        return tf.reshape(x, tf.concat([shape[:3], [x.shape[-1] // 2, 2]], axis=0))

    def compute_output_shape(self, input_shape: Tuple[Optional[int], ...]) -> Tuple[Optional[int], ...]:
        return tuple(input_shape[:3]) + (input_shape[-1] // 2, 2)


@keras.saving.register_keras_serializable(package="personlab_tf")
class UpsampleLike(keras.layers.Layer):
    """call(coarse [B, h, w, C], fine [B, h', w', ...]) -> coarse resized bilinearly, corner aligned, to
    the spatial size of `fine`."""

    def call(self, coarse: tf.Tensor, fine: tf.Tensor) -> tf.Tensor:
        return resize_aligned(coarse, tf.shape(fine)[1:3])

    def compute_output_shape(self, coarse_shape: Tuple[Optional[int], ...],
                             fine_shape: Tuple[Optional[int], ...]) -> Tuple[Optional[int], ...]:
        return (coarse_shape[0], fine_shape[1], fine_shape[2], coarse_shape[3])


@keras.saving.register_keras_serializable(package="personlab_tf")
class Scale(keras.layers.Layer):
    """Multiplies its input by a constant `factor` (e.g. a field's stride, to turn cells into pixels)."""

    def __init__(self, factor: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x * self.factor

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="personlab_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training pass runs TensorFlow's fused batch-norm kernel.

    Keras 3 normalises with separate moment, subtraction and scaling ops (plus a float32 upcast of 16-bit
    inputs); Keras 2 used the fused kernel (`fused=True`). In training (`training=True`, trainable layer,
    [B, h, w, C] inputs, channels last, no mask, renorm or synchronisation) this layer calls
    `tf.compat.v1.nn.fused_batch_norm`, which computes the batch moments, the normalisation and their
    gradients in single passes and takes bfloat16 / float16 inputs directly (statistics in float32). The
    result is the parent layer's: same output, same gradients, same variables, and the moving averages
    updated with the same momentum from the same biased batch variance (the kernel returns the unbiased
    one, n / (n - 1) larger; it is scaled back). Inference and every other case are the parent's code.
    Measured: docs/training.md, "Batch normalisation".
    """

    def _fused(self, inputs, training):
        return (bool(training) and self.trainable and self.scale and self.center and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4 and self.axis in (-1, 3))

    def call(self, inputs: tf.Tensor, training: Optional[bool] = None,
             mask: Optional[tf.Tensor] = None) -> tf.Tensor:
        if mask is not None or not self._fused(inputs, training):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32), epsilon=self.epsilon,
            is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)
