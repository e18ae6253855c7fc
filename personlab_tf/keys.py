"""Every dictionary key passed between modules, grouped by role; no two keys share a value.

Shapes use H, W for image size, h, w for a grid, N for persons, K for keypoints and E = 2 (K - 1) for directed
edges (the skeleton's: 17 and 32 for coco17, skeleton.py), L for limbs, C for part classes, D for detection
slots (constants.MAX_DETECTIONS). Points and
offsets are (x, y) in input pixels unless said otherwise (docs/conventions.md).

| role | what | made by | read by |
| --- | --- | --- | --- |
| `Sample` | one decoded record, then its augmented crop | `data.decoder`, `data.augment` | the tasks' targets, oracles |
| `Map` | dense maps on a grid: training targets and their weights, and the probability / offset maps decoding reads | tasks' `targets`, detectors | losses, tasks' `decode` |
| `Prediction` | the network's outputs (logits, refined offsets) | tasks' `model` | losses, detectors |
| `Loss` | loss terms | `losses`, tasks' `losses` | training logs |
| `Detection` | per-image results; also the SavedModel's output names (docs/inference.md) | tasks' `decode` and `detector` | serving, evaluation, overlays |

Targets and decoding maps share the `Map` keys on purpose: a target is what a perfect network's map
would be, so the oracles decode targets directly.
"""


class Sample:
    """A decoded record (data/decoder.py) and, after data/augment.py, its crop."""

    IMAGE = "image"                    # [H, W, 3] uint8; after augmentation the [S, S, 3] crop
    IMAGE_ID = "image_id"              # [] int64
    ORIGINAL_SIZE = "original_size"    # [2] int32 (height, width) of the original image
    KEYPOINTS = "person_keypoints"     # [N, K, 3] float32 (x, y, v), v > 0 labelled; crop pixels after augment
    IS_CROWD = "is_crowd"              # [N] bool
    ANNOTATED = "annotated"            # [N] bool, labelled or imputed keypoints
    IMPUTED = "imputed"                # [N] bool, the keypoints are imputed (PersonLab §3.3)
    PACKED_MASKS = "packed_masks"      # [H, W, max(1, ceil(N/8))] uint8, bit n % 8 of byte n // 8 is person n
    NUM_PERSONS = "num_persons"        # [] int32
    CROP_TO_IMAGE = "crop_to_image"    # [6] float32 (a, b, c, d, e, f): image x = a u + b v + c, y = d u + e v + f
    PART_LABELS = "image_part_labels"  # [H, W] uint8 part class per pixel (0 background)
    HAS_PARTS = "has_parts"            # [N] bool, the person's pixels carry part labels


class Map:
    """Maps on a grid of stride s (cell (i, j) at pixel (s j, s i)); one image [h, w, ...] or a batch."""

    HEATMAPS = "heatmaps"                          # [h, w, K] keypoint disks / probabilities p_k
    HEATMAP_WEIGHTS = "heatmap_weights"            # [h, w, K]
    SHORT_OFFSETS = "short_offsets"                # [h, w, K, 2]
    SHORT_WEIGHTS = "short_weights"                # [h, w, K]
    MID_OFFSETS = "mid_offsets"                    # [h, w, E, 2]
    MID_WEIGHTS = "mid_weights"                    # [h, w, E]
    SEGMENTATION = "segmentation"                  # [h, w, 1] person mask / probability p_S
    SEGMENTATION_WEIGHTS = "segmentation_weights"  # [h, w, 1]
    LONG_OFFSETS = "long_offsets"                  # [h, w, K, 2]
    LONG_WEIGHTS = "long_weights"                  # [h, w, K]
    # Instance-aware part parsing (second paper).
    PART_CLASSES = "part_classes"                  # [h, w] int32 part class of each cell (targets)
    PART_WEIGHTS = "part_weights"                  # [h, w]
    PART_PROBABILITIES = "part_probabilities"      # [h, w, C] softmax of the part logits (decoding)
    LIMB_HEATMAPS = "limb_heatmaps"                # [h, w, L] in [0, 1]
    LIMB_WEIGHTS = "limb_weights"                  # [h, w, L]
    PROJECTION_FIELD = "projection_field"          # [h, w, 2] the finest projection field in pixels (decoding)
    MATCH_POINTS = "match_points"                  # [P, K, 2] keypoints of up to P persons, crop pixels
    MATCH_LABELLED = "match_labelled"              # [P, K] bool

    @staticmethod
    def projection(stride: int) -> str:
        """Target projection field f_l of the pyramid level of `stride`: [h, w, 2] in cells of the level."""
        return f"projection_field_{stride}"

    @staticmethod
    def projection_weights(stride: int) -> str:
        """Weights [h, w] of `Map.projection(stride)`."""
        return f"projection_weights_{stride}"


class Prediction:
    """The network's outputs [B, h, w, ...] at its output stride; logits are pre-sigmoid / pre-softmax."""

    HEATMAP_LOGITS = "heatmap_logits"              # [B, h, w, K]
    SEGMENTATION_LOGITS = "segmentation_logits"    # [B, h, w, 1]
    SHORT_OFFSETS = "predicted_short_offsets"      # [B, h, w, K, 2]
    MID_OFFSETS = "predicted_mid_offsets"          # [B, h, w, E, 2], refined (PersonLab Eq. 2)
    LONG_OFFSETS = "predicted_long_offsets"        # [B, h, w, K, 2], refined (PersonLab Eq. 5)
    PART_LOGITS = "part_logits"                    # [B, h, w, C]
    LIMB_LOGITS = "limb_logits"                    # [B, h, w, L]
    PROJECTION_FIELD = "predicted_projection_field"  # [B, h, w, 2] the finest field in input pixels
    AUXILIARY_PREFIX = "auxiliary/"                # prefix of the training-only auxiliary heads' outputs

    @staticmethod
    def projection(stride: int) -> str:
        """Predicted projection field f_l of the level of `stride`: [B, h, w, 2] in cells of the level."""
        return f"predicted_projection_field_{stride}"


class Loss:
    """Loss terms: scalars, this replica's share of the global value (losses.py)."""

    HEATMAP = "heatmap_loss"
    SEGMENTATION = "segmentation_loss"
    SHORT = "short_offset_loss"
    MID = "mid_offset_loss"
    LONG = "long_offset_loss"
    PART = "part_loss"
    PROJECTION = "projection_loss"
    LIMB = "limb_loss"
    MATCHING = "matching_loss"
    TOTAL = "loss"


class Detection:
    """Per-image results padded to D slots; slots at and beyond NUM_DETECTIONS are zero / False.

    These are the output names of the SavedModel signatures (docs/inference.md), positions in
    original-image pixels there (in the maps' pixels inside decoding).
    """

    KEYPOINTS = "keypoints"                        # [D, K, 2] float32
    KEYPOINT_SCORES = "keypoint_scores"            # [D, K] float32
    INSTANCE_SCORES = "instance_scores"            # [D] float32, descending
    NUM_DETECTIONS = "num_detections"              # [] int32
    MASKS = "masks"                                # [D, H, W] bool
    IMAGE_SIZE = "image_size"                      # [2] int32 (height, width) of the original image
    PART_MAP = "part_map"                          # [H, W] uint8 category-level parsing
    INSTANCE_PART_MAPS = "instance_part_maps"      # [D, H, W] uint8 parts of each person (0 elsewhere)
    KEYPOINT_PRESENT = "keypoint_present"          # [D, K] bool, part parsing: the keypoint was assembled
    LATTICE_SCALE = "lattice_scale"                # [] float32 g: a detector's image maps are on the image's
    #                                                lattice (inference/maps.py), not yet at its pixels
