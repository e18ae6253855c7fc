"""Per-image predictions -> COCO results lists (the JSON format of the COCO evaluation server).

Predictions of one image (numpy arrays or eager tensors), as `serving_default` returns them per image
(docs/inference.md), with M detection slots:

| key | shape, dtype | meaning |
| --- | --- | --- |
| `keypoints` | [M, 17, 2] float | (x, y) in original-image pixels, pixel centres at integer coordinates |
| `keypoint_scores` | [M, 17] float | per-keypoint scores (not used by COCO) |
| `instance_scores` | [M] float | the person's score, also its mask's score |
| `num_detections` | [] int, optional | only the first `num_detections` slots are used (padding after) |
| `masks` | [M, H, W] bool, optional | instance masks at the original image resolution |

COCO keypoints are in the same convention as ours (pixel centres at integer coordinates), so points
are written unchanged. The visibility of a result keypoint is not used by COCOeval (OKS reads only
x, y); COCO's results format recommends v = 1, which we write. Coordinates are not rounded.
"""

from typing import Any, Dict, List

import numpy as np
from pycocotools import mask as mask_utils

from personlab_tf import keys
from personlab_tf.skeleton import Skeleton


def detection_count(predictions: Dict[str, Any]) -> int:
    """The number of used detection slots: `num_detections` when given, else every slot."""
    slots = int(np.shape(predictions[keys.Detection.INSTANCE_SCORES])[0])
    if keys.Detection.NUM_DETECTIONS in predictions:
        return min(slots, int(np.asarray(predictions[keys.Detection.NUM_DETECTIONS]).reshape(())))
    return slots


def has_masks(predictions: Dict[str, Any]) -> bool:
    """True if the predictions carry instance masks."""
    return predictions.get(keys.Detection.MASKS) is not None


def keypoint_results(image_id: Any, predictions: Dict[str, Any], skeleton: Skeleton) -> List[Dict[str, Any]]:
    """COCO keypoint results of one image.

    Args:
      image_id: COCO image id.
      predictions: dict described in the module docstring (`masks` not needed).
      skeleton: the keypoint set of the predictions (K and the category id).

    Returns:
      list of {"image_id", "category_id": skeleton.category_id, "keypoints": [x1, y1, 1, ..., xK, yK, 1],
      "score"}, one per detection, in slot order.

    Raises:
      ValueError: the keypoints are not [M, K, 2].
    """
    count = detection_count(predictions)
    points = np.asarray(predictions[keys.Detection.KEYPOINTS], np.float64)[:count]
    scores = np.asarray(predictions[keys.Detection.INSTANCE_SCORES], np.float64)[:count]
    if points.shape != (count, skeleton.num_keypoints, 2):
        raise ValueError(f"keypoints must be [M, {skeleton.num_keypoints}, 2] (skeleton {skeleton.name}), "
                         f"got {points.shape}")
    triples = np.concatenate([points, np.ones((count, skeleton.num_keypoints, 1))], axis=-1)
    return [{"image_id": int(image_id), "category_id": skeleton.category_id,
             "keypoints": triples[m].reshape(-1).tolist(), "score": float(scores[m])}
            for m in range(count)]


def encode_masks(masks: np.ndarray) -> List[Dict[str, Any]]:
    """[M, H, W] bool masks -> M compressed COCO RLEs {"size": [H, W], "counts": str} (JSON-ready)."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [M, H, W], got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(np.transpose(masks, (1, 2, 0)).astype(np.uint8)))
    return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in rles]


def segmentation_results(image_id: Any, predictions: Dict[str, Any], category_id: int) -> List[Dict[str, Any]]:
    """COCO segmentation results of one image.

    Args:
      image_id: COCO image id.
      predictions: dict described in the module docstring, with `masks` [M, H, W] at the original
        image resolution.

    Returns:
      list of {"image_id", "category_id", "segmentation": compressed RLE with str counts, "score"},
      one per detection. No "bbox" key: COCO's loadRes would then take the box for the area.
    """
    count = detection_count(predictions)
    scores = np.asarray(predictions[keys.Detection.INSTANCE_SCORES], np.float64)[:count]
    rles = encode_masks(np.asarray(predictions[keys.Detection.MASKS])[:count])
    return [{"image_id": int(image_id), "category_id": int(category_id),
             "segmentation": rle, "score": float(score)} for rle, score in zip(rles, scores)]
