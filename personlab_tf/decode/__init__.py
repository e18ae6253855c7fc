"""PersonLab decoding (paper §3.1–3.2) as TF graph ops: Hough voting (Eq. 1), seeds, parallel greedy
grouping, Expected-OKS scoring (Eq. 3), soft-NMS (Eq. 4) or hard OKS-NMS, instance masks (Eq. 6).

Entry points: `decode` (one image) and `decode_batch`; result keys in `personlab_tf.keys` (detections). See docs/decoding.md.
"""

from personlab_tf.decode.decoder import decode, decode_batch

__all__ = ["decode", "decode_batch"]
