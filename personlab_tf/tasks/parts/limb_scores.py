"""Limb scoring (second paper §3.3): how strongly the limb heatmap supports a connection between two
keypoint candidates, the score matrices s of the matching (parts.matching).

Positions (x, y) in input pixels, pixel centres at integer coordinates; a map of stride s has cell
(i, j) at (s j, s i).
"""

import tensorflow as tf

from personlab_tf.ops.bilinear import bilinear_sample_per_field

SAMPLES = 10   # points sampled along a candidate segment


def connection_scores(limb_maps: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, stride: int,
                      samples: int = SAMPLES) -> tf.Tensor:
    """s[b, l, i, j] = mean over t of the limb heatmap l at (1 - t) start_i + t end_j, t = 0 .. 1.

    The mean response of the limb's heatmap sampled (bilinearly, differentiably) at `samples` evenly
    spaced points of the segment between candidate i of the limb's first keypoint and candidate j of its
    second.

    Args:
      limb_maps: [B, h, w, L] limb heatmap probabilities at stride `stride`.
      starts: [B, L, M, 2] candidates of each limb's first keypoint; ends: [B, L, N, 2] of its second.
      stride: s of the maps.
      samples: points per segment (>= 2).

    Returns:
      [B, L, M, N] float32 scores.
    """
    t = tf.linspace(0.0, 1.0, samples)[:, tf.newaxis]                                   # [T, 1]
    points = (starts[:, :, :, tf.newaxis, tf.newaxis, :] * (1.0 - t)
              + ends[:, :, tf.newaxis, :, tf.newaxis, :] * t)                            # [B, L, M, N, T, 2]
    points = tf.transpose(points, [0, 2, 3, 4, 1, 5])                                  # [B, M, N, T, L, 2]
    values = bilinear_sample_per_field(limb_maps[..., tf.newaxis], points, stride)[..., 0]   # [B, M, N, T, L]
    return tf.transpose(tf.reduce_mean(values, axis=3), [0, 3, 1, 2])
