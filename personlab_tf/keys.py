"""Every dictionary key used between modules: records, samples, targets, predictions, losses.

Shapes use H, W for image size, h, w for the target grid, N for persons, K for keypoints (17),
E for directed edges (32). Points and offsets are (x, y), in input pixels.
"""

# Decoded sample (personlab_tf.data.decoder).
IMAGE = "image"                      # [H, W, 3] uint8
IMAGE_ID = "image_id"                # [] int64
IMAGE_SIZE = "image_size"            # [2] int32, (height, width) of the original image
KEYPOINTS = "keypoints"              # [N, K, 3] float32, (x, y, v); v > 0 means labelled
IS_CROWD = "is_crowd"                # [N] bool
ANNOTATED = "annotated"              # [N] bool, person has labelled or imputed keypoints
IMPUTED = "imputed"                  # [N] bool, the keypoints are imputed (paper §3.3)
PACKED_MASKS = "packed_masks"        # [H, W, max(1, ceil(N/8))] uint8, bit n % 8 of byte n // 8 is person n
NUM_PERSONS = "num_persons"          # [] int32

# Augmented sample (personlab_tf.data.augment): IMAGE becomes the [S, S, 3] crop, KEYPOINTS are in
# crop pixels, and the crop-to-image map is kept so that predictions can be taken back.
CROP_TO_IMAGE = "crop_to_image"      # [4] float32 (ax, bx, ay, by): image x = ax u + bx, y = ay v + by

# Targets (personlab_tf.data.targets), on the target grid of stride s: grid cell (i, j) is the crop
# pixel (x, y) = (s j, s i).
HEATMAPS = "heatmaps"                          # [h, w, K] float32 in {0, 1}
HEATMAP_WEIGHTS = "heatmap_weights"            # [h, w, K] float32 in {0, 1}
SHORT_OFFSETS = "short_offsets"                # [h, w, K, 2] float32
SHORT_WEIGHTS = "short_weights"                # [h, w, K]
MID_OFFSETS = "mid_offsets"                    # [h, w, E, 2]
MID_WEIGHTS = "mid_weights"                    # [h, w, E]
SEGMENTATION = "segmentation"                  # [h, w, 1] float32 in {0, 1}
SEGMENTATION_WEIGHTS = "segmentation_weights"  # [h, w, 1]
LONG_OFFSETS = "long_offsets"                  # [h, w, K, 2]
LONG_WEIGHTS = "long_weights"                  # [h, w, K]

TARGET_KEYS = (
    HEATMAPS, HEATMAP_WEIGHTS, SHORT_OFFSETS, SHORT_WEIGHTS, MID_OFFSETS, MID_WEIGHTS,
    SEGMENTATION, SEGMENTATION_WEIGHTS, LONG_OFFSETS, LONG_WEIGHTS,
)

# Model predictions (personlab_tf.model), at output stride os: feature cell (i, j) is the input pixel
# (x, y) = (os j, os i). Offsets are in input pixels; logits are pre-sigmoid.
HEATMAP_LOGITS = "heatmap_logits"              # [B, h, w, K]
SEGMENTATION_LOGITS = "segmentation_logits"    # [B, h, w, 1]
# SHORT_OFFSETS, MID_OFFSETS and LONG_OFFSETS above name the predicted (refined) offsets too,
# shaped [B, h, w, K or E, 2].
AUXILIARY_PREFIX = "auxiliary/"                # prefix of the auxiliary heads' predictions (training only)

# Loss terms (personlab_tf.losses).
HEATMAP_LOSS = "heatmap_loss"
SEGMENTATION_LOSS = "segmentation_loss"
SHORT_LOSS = "short_offset_loss"
MID_LOSS = "mid_offset_loss"
LONG_LOSS = "long_offset_loss"
TOTAL_LOSS = "loss"

# Detections (personlab_tf.decode and the SavedModel outputs), per image, padded to D slots (20 by
# default); slots at and beyond NUM_DETECTIONS are zero / False. Positions (x, y) in pixels of the image
# the maps were computed for (the original image for the SavedModel).
DETECTION_KEYPOINTS = "keypoints"      # [D, K, 2] float32
KEYPOINT_SCORES = "keypoint_scores"    # [D, K] float32, s_{j,k} (Eq. 3 or h_k(y)), before NMS
INSTANCE_SCORES = "instance_scores"    # [D] float32, after NMS, descending; also the masks' scores
NUM_DETECTIONS = "num_detections"      # [] int32
INSTANCE_MASKS = "masks"               # [D, H, W] bool

# Instance-aware part parsing (personlab_tf.parts; second paper). Samples: the image's part label map
# and which persons have part labels.
PART_LABELS = "part_labels"          # sample: [H, W] uint8 class per pixel (0 background); target: [h, w] int32
HAS_PARTS = "has_parts"              # [N] bool, the person's pixels carry part labels
# Targets on the pose grid (stride 4 by default) and, for the projection field, on every pyramid level.
PART_WEIGHTS = "part_weights"        # [h, w] float32
LIMB_HEATMAPS = "limb_heatmaps"      # [h, w, L] float32 in [0, 1]
LIMB_WEIGHTS = "limb_weights"        # [h, w, L]
MATCH_POINTS = "match_points"        # [P, K, 2] float32 keypoints of up to P persons, crop pixels
MATCH_LABELLED = "match_labelled"    # [P, K] bool
# Predictions: PART_LOGITS [B, h, w, C], LIMB_LOGITS [B, h, w, L], HEATMAP_LOGITS and SHORT_OFFSETS as in
# PersonLab, and the projection field of each level in that level's cells (projection_key(stride)).
PART_LOGITS = "part_logits"
LIMB_LOGITS = "limb_logits"
PROJECTION_FIELD = "projection_field"  # [B, h, w, 2] the finest level's field in input pixels (decoding)


def projection_key(stride):
    """Key of the projection field f_l of the pyramid level of `stride`: [h, w, 2] in cells of that level."""
    return f"projection_field_{stride}"


def projection_weights_key(stride):
    """Key of the weights [h, w] of projection_key(stride)."""
    return f"projection_weights_{stride}"


# Part-parsing loss terms (personlab_tf.parts.losses); TOTAL_LOSS as above.
PART_LOSS = "part_loss"
PROJECTION_LOSS = "projection_loss"
LIMB_LOSS = "limb_loss"
MATCHING_LOSS = "matching_loss"
# Part-parsing detections: the keypoint keys above, and
PART_MAP = "part_map"                          # [H, W] uint8 category-level parsing
INSTANCE_PART_MAPS = "instance_part_maps"      # [D, H, W] uint8 parts of each detected person (0 elsewhere)
