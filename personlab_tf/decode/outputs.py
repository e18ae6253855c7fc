"""Keys of the decoder's result dictionary (one image; the batched form adds a leading B).

D is the number of detection slots (20 by default); slots at and beyond NUM_DETECTIONS are zero / False.
Positions are (x, y) in input pixels of the decoded maps, pixel centres at integer coordinates.
"""

DETECTION_KEYPOINTS = "keypoints"      # [D, K, 2] float32
KEYPOINT_SCORES = "keypoint_scores"    # [D, K] float32, s_{j,k} (Eq. 3 or h_k(y)), before NMS
INSTANCE_SCORES = "instance_scores"    # [D] float32, after NMS, descending; also the masks' scores
NUM_DETECTIONS = "num_detections"      # [] int32
INSTANCE_MASKS = "masks"               # [D, h, w] bool at the maps' resolution (only with masks)
