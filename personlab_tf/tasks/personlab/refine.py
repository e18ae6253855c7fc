"""Recurrent offset refinement (PersonLab §3.1 Eq. 2 and §3.2 Eq. 5), at output resolution.

Offsets are fields [B, h, w, N, 2] of (x, y) displacements in input pixels on the output grid of stride
os: cell (i, j) is the input pixel x = (os j, os i). A refinement step moves every offset by the value of
another field at the point it reaches, x + offset, sampled bilinearly (`ops.bilinear`), so gradients flow
into both the refined field and the sampled one. The whole field is updated at each step: the next step
samples the refined values. Zero steps leave the offsets unchanged (the paper's ablation, Appendix A.3).

The layers can run the refinement compiled by XLA in training (`jit_compile`, PersonLabNetwork.jit_refinement):
its many small element-wise ops and gathers fuse into a few loops, the same arithmetic (docs/training.md,
"Compiled refinement"). Inference keeps the plain ops, so a SavedModel needs no XLA where it is served.
"""

from typing import Any, Dict, Optional, Sequence

import keras
import tensorflow as tf

from personlab_tf.ops.bilinear import bilinear_sample_per_field


def cell_positions(field: tf.Tensor, output_stride: int) -> tf.Tensor:
    """Input-pixel position (x, y) = (os j, os i) of every cell of `field` [B, h, w, ...], as [h, w, 1, 2]."""
    height, width = tf.shape(field)[1], tf.shape(field)[2]
    rows, cols = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    positions = tf.cast(tf.stack([cols, rows], axis=-1) * output_stride, field.dtype)
    return positions[:, :, tf.newaxis, :]


def _follow(offsets, field, output_stride, gate=None):
    """One step offsets(x) <- offsets(x) + field(x + offsets(x)), field n sampled for offset n.

    With a `gate` g, a step is taken only where |field(x + offsets(x))| <= g |offsets(x)| (`gated_step`).
    """
    points = cell_positions(offsets, output_stride) + offsets
    step = bilinear_sample_per_field(field, points, output_stride)
    return offsets + (step if gate is None else gated_step(step, offsets, gate))


def gated_step(step: tf.Tensor, offsets: tf.Tensor, gate: float) -> tf.Tensor:
    """The self-refinement steps that land near the keypoint: `step` where |step| <= gate |offsets|, else 0.

    A long-range offset L(x) lands at x' = x + L(x) near its keypoint y, where L(x') = y - x' is short: the
    step corrects the remaining error. A landing point on another person (an occluded keypoint inside that
    person's mask, docs/decoding.md) reads that person's offset, which points elsewhere: there |L(x')| is not
    small against |L(x)| and the step is skipped.

    Args:
      step, offsets: [..., 2] the sampled field and the current offsets; gate: the largest ratio of lengths.
    """
    accept = tf.norm(step, axis=-1) <= gate * tf.norm(offsets, axis=-1)
    return tf.where(accept[..., tf.newaxis], step, tf.zeros_like(step))


def refine_mid_offsets(mid: tf.Tensor, short: tf.Tensor, edge_targets: Sequence[int], output_stride: int,
                       steps: int = 2) -> tf.Tensor:
    """Mid-range refinement by the short-range offsets of the target keypoint, Eq. 2.

    M_{k,l}(x) <- M_{k,l}(x) + S_l(x + M_{k,l}(x)) for every directed edge (k, l), `steps` times
    (the paper writes it with absolute positions: M <- x' + S_l(x'), x' = M(x); twice in the paper).

    Args:
      mid: [B, h, w, E, 2] mid-range offsets, edge e = Skeleton.directed_edges[e], (x, y) in input pixels.
      short: [B, h, w, K, 2] short-range offsets.
      edge_targets: E ints, the target keypoint l of each directed edge (k, l).
      output_stride: os of both fields.
      steps: number of refinement steps.

    Returns:
      [B, h, w, E, 2] refined mid-range offsets.
    """
    short_of_target = tf.gather(short, list(edge_targets), axis=3)
    for _ in range(steps):
        mid = _follow(mid, short_of_target, output_stride)
    return mid


def refine_long_offsets(long: tf.Tensor, short: tf.Tensor, output_stride: int, self_steps: int = 2,
                        short_steps: int = 2, self_gate: Optional[float] = None) -> tf.Tensor:
    """Long-range refinement, first by the long-range field itself, then by the short-range one, Eq. 5.

    L_k(x) <- L_k(x) + L_k(x + L_k(x)) `self_steps` times (the field sampled is the current, refined one),
    then L_k(x) <- L_k(x) + S_k(x + L_k(x)) `short_steps` times (twice each in the paper).

    Args:
      long: [B, h, w, K, 2] long-range offsets, (x, y) in input pixels.
      short: [B, h, w, K, 2] short-range offsets.
      output_stride: os of both fields.
      self_steps, short_steps: number of steps of each kind.
      self_gate: None (the paper's steps) or g: a self step is taken only where it lands near the keypoint,
        |L_k(x + L_k(x))| <= g |L_k(x)| (`gated_step`; docs/decoding.md).

    Returns:
      [B, h, w, K, 2] refined long-range offsets.
    """
    for _ in range(self_steps):
        long = _follow(long, long, output_stride, self_gate)
    for _ in range(short_steps):
        long = _follow(long, short, output_stride)
    return long


_COMPILED = {refine_mid_offsets: tf.function(refine_mid_offsets, jit_compile=True),
             refine_long_offsets: tf.function(refine_long_offsets, jit_compile=True)}


def _refinement(function, jit_compile, training):
    """`function` or its XLA-compiled twin: compiled only when `jit_compile` and in training."""
    return _COMPILED[function] if jit_compile and training else function


@keras.saving.register_keras_serializable(package="personlab_tf")
class MidRangeRefinement(keras.layers.Layer):
    """Keras wrapper of `refine_mid_offsets` (Eq. 2): call(mid [B,h,w,E,2], short [B,h,w,K,2]).

    `edge_targets`: the target keypoint of each directed edge; `jit_compile`: run it compiled by XLA when
    training (module docstring).
    """

    def __init__(self, output_stride: int, edge_targets: Sequence[int], steps: int = 2, jit_compile: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.output_stride = output_stride
        self.edge_targets = tuple(int(l) for l in edge_targets)
        self.steps = steps
        self.jit_compile = jit_compile

    def call(self, mid: tf.Tensor, short: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
        refine = _refinement(refine_mid_offsets, self.jit_compile, training)
        return refine(mid, short, self.edge_targets, self.output_stride, self.steps)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "output_stride": self.output_stride, "edge_targets": self.edge_targets,
                "steps": self.steps,
                "jit_compile": self.jit_compile}


@keras.saving.register_keras_serializable(package="personlab_tf")
class LongRangeRefinement(keras.layers.Layer):
    """Keras wrapper of `refine_long_offsets` (Eq. 5): call(long [B,h,w,K,2], short [B,h,w,K,2]).

    `jit_compile`: run it compiled by XLA when training (module docstring).
    """

    def __init__(self, output_stride: int, self_steps: int = 2, short_steps: int = 2, self_gate: Optional[float] = None,
                 jit_compile: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.output_stride = output_stride
        self.self_steps = self_steps
        self.short_steps = short_steps
        self.self_gate = self_gate
        self.jit_compile = jit_compile

    def call(self, long: tf.Tensor, short: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
        refine = _refinement(refine_long_offsets, self.jit_compile, training)
        return refine(long, short, self.output_stride, self.self_steps, self.short_steps, self.self_gate)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "output_stride": self.output_stride, "self_steps": self.self_steps,
                "short_steps": self.short_steps, "self_gate": self.self_gate, "jit_compile": self.jit_compile}
