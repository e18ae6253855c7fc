"""Single- and multi-scale inference on a stand-in network that predicts perfect maps of known persons:
keypoints and masks come back in original-image pixels."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf.skeleton import COCO17
from personlab_tf import keys
from personlab_tf.inference import maps as maps_lib
from personlab_tf.tasks.personlab import detector, synthetic_maps
from personlab_tf.tasks.personlab.decode import PersonLabDecoding
from personlab_tf.tasks.personlab.masks import instance_masks

HEIGHT, WIDTH = 90, 120
LOGIT = 20.0
RADIUS = 32.0


def two_persons():
    """Two persons (original pixels) well inside a 120 x 90 image."""
    return synthetic_maps.scene_keypoints(2, HEIGHT, WIDTH, seed=3)


class PerfectNetwork:
    """Stands in for `PersonLabModel.inference_model()`: for a frame of the image, the maps an ideal network
    predicts (synthetic_maps.perfect_maps of the persons moved to the frame), heatmap and segmentation as
    logits of +-20. The frame's scale is read from its larger side (max_side = n os + 1 needs no padding)."""

    def __init__(self, keypoints, output_stride):
        self.keypoints = keypoints
        self.output_stride = output_stride
        self.frames = []

    def __call__(self, frames, training=False):
        height, width = frames.shape[1:3]
        self.frames.append((height, width))
        scale = (max(height, width) - 1) / (max(HEIGHT, WIDTH) - 1)
        perfect = synthetic_maps.perfect_maps(self.keypoints * scale, height, width, self.output_stride)
        logits = {keys.Prediction.HEATMAP_LOGITS: perfect[keys.Map.HEATMAPS], keys.Prediction.SEGMENTATION_LOGITS: perfect[keys.Map.SEGMENTATION]}
        outputs = {key: tf.constant((2 * value - 1) * LOGIT)[tf.newaxis] for key, value in logits.items()}
        for output, key in ((keys.Prediction.SHORT_OFFSETS, keys.Map.SHORT_OFFSETS),
                            (keys.Prediction.MID_OFFSETS, keys.Map.MID_OFFSETS),
                            (keys.Prediction.LONG_OFFSETS, keys.Map.LONG_OFFSETS)):
            outputs[output] = tf.constant(perfect[key])[tf.newaxis]
        return outputs


def matched_errors(result, persons):
    """Largest keypoint error (original pixels) of each person against its nearest detection."""
    count = int(result[keys.Detection.NUM_DETECTIONS])
    found = result[keys.Detection.KEYPOINTS].numpy()[:count]
    distances = np.linalg.norm(found[:, np.newaxis] - persons[np.newaxis], axis=-1).max(axis=-1)   # [D, N]
    return distances.min(axis=0), distances.argmin(axis=0)


def top_two_errors(result, persons):
    """matched_errors of the two best detections only."""
    return matched_errors({keys.Detection.NUM_DETECTIONS: 2, keys.Detection.KEYPOINTS: result[keys.Detection.KEYPOINTS]},
                          persons)


def mask_iou(result, persons, which):
    """IoU of each person's mask with the body (synthetic_maps.body_owners at original resolution)."""
    owners = synthetic_maps.body_owners(persons, HEIGHT, WIDTH, 1)
    masks = result[keys.Detection.MASKS].numpy()
    return [np.sum(masks[slot] & (owners == n)) / np.sum(masks[slot] | (owners == n)) for n, slot in enumerate(which)]


@pytest.mark.parametrize("decode_stride, mask_resolution", [
    (8, detector.MASKS_ON_GRID), (4, detector.MASKS_ON_GRID), (4, detector.MASKS_ON_IMAGE), (8, detector.MASKS_HYBRID)])
def test_single_scale(decode_stride, mask_resolution):
    persons = two_persons()
    network = PerfectNetwork(persons, 8)
    inference = detector.PersonLabInference(8, max_side=241, decode_stride=decode_stride,
                                            mask_resolution=mask_resolution)
    found = detector.Detector(network, RADIUS, COCO17, inference).detect(tf.zeros([HEIGHT, WIDTH, 3], tf.uint8))
    assert network.frames == [(185, 241)]  # 89 * 240 / 119 = 179.5 -> 180 pixels, padded to 185
    assert int(found[keys.Detection.NUM_DETECTIONS]) == 2
    errors, which = matched_errors(found, persons)
    assert sorted(which) == [0, 1] and errors.max() < 1.0   # frame pixels / f = 2.02
    assert found[keys.Detection.MASKS].shape == (20, HEIGHT, WIDTH)
    assert min(mask_iou(found, persons, which)) > 0.8


def detect(persons, **options):
    """The detections of the perfect network of `persons` through PersonLabInference(8, decode_stride=4,
    **options) (max_side 241 unless given), and the larger sides of the frames the network saw."""
    network = PerfectNetwork(persons, 8)
    inference = detector.PersonLabInference(8, decode_stride=4, **{"max_side": 241, **options})
    found = detector.Detector(network, RADIUS, COCO17, inference).detect(tf.zeros([HEIGHT, WIDTH, 3], tf.uint8))
    return found, [max(frame) for frame in network.frames]


# The multi-scale pyramid of the tests: persons ~70, ~120 and ~180 px tall in frames of 137, 241 and 361 px,
# each of which alone decodes to exactly the two persons (a frame of 121 px no longer does: its 32 px disks
# overlap enough for weak spurious detections).
PYRAMID = (137, 241, 361)


def test_multi_scale_merges_maps_before_decoding():
    """Every scale alone detects exactly the two persons; merged (confidence-weighted offsets, the default),
    so do the three: exactly two detections, every keypoint of each within 0.5 px of the truth (original
    pixels; a pixel of the common 241 px frame is 0.5 of them), instance scores above 0.8 (perfect maps: the
    single scales' range from 0.75 at 137 px to 0.91 at 361 px) and masks of IoU above 0.8 with the bodies."""
    persons = two_persons()
    for side in PYRAMID:
        alone, _ = detect(persons, max_side=side)
        assert int(alone[keys.Detection.NUM_DETECTIONS]) == 2, side
    found, frames = detect(persons, multi_scale=True, pyramid=PYRAMID)
    assert frames == list(PYRAMID)
    assert int(found[keys.Detection.NUM_DETECTIONS]) == 2, found[keys.Detection.INSTANCE_SCORES].numpy()[:5]
    errors, which = matched_errors(found, persons)
    assert sorted(which) == [0, 1], which
    assert errors.max() < 0.5, errors
    scores = found[keys.Detection.INSTANCE_SCORES].numpy()[:2]
    assert 0.8 < scores.min() and scores.max() <= 1.0, scores        # expected OKS: at most 1
    assert min(mask_iou(found, persons, which)) > 0.8


def test_plain_means_of_the_offsets_shorten_them_where_one_scale_s_disk_ends():
    """The merge without confidence weights (`weighted_merge=False`), same pyramid: a scale whose disk has
    ended votes 0 for its offsets (in original pixels the 32 px disks are 28 px in the 137 px frame, 11 px in
    the 361 px one), which pulls a keypoint 5 px off and leaves weak extra detections (each below 0.05; the
    persons' above 0.5): why the weighted merge is the default."""
    persons = two_persons()
    found, _ = detect(persons, multi_scale=True, pyramid=PYRAMID, weighted_merge=False)
    count = int(found[keys.Detection.NUM_DETECTIONS])
    scores = found[keys.Detection.INSTANCE_SCORES].numpy()[:count]
    assert scores[:2].min() > 0.5 and scores[2:].max() < 0.05, scores
    errors, which = top_two_errors(found, persons)
    assert sorted(which) == [0, 1] and 4.0 < errors.max() < 6.0 and errors.min() < 0.5, errors


@pytest.mark.parametrize("multi_scale", [False, True])
def test_poses_without_masks_are_the_poses_with_masks(multi_scale):
    """What the poses-only path decodes is the full path's poses, single-scale and multi-scale."""
    persons = two_persons()
    inference = detector.PersonLabInference(8, max_side=241, multi_scale=multi_scale, pyramid=(121, 241),
                                            decode_stride=4)
    found = {with_masks: detector.Detector(PerfectNetwork(persons, 8), RADIUS, COCO17, inference).detect(
        tf.zeros([HEIGHT, WIDTH, 3], tf.uint8), with_masks=with_masks) for with_masks in (False, True)}
    assert keys.Detection.MASKS not in found[False]
    assert int(found[False][keys.Detection.NUM_DETECTIONS]) == int(found[True][keys.Detection.NUM_DETECTIONS])
    for key in (keys.Detection.KEYPOINTS, keys.Detection.INSTANCE_SCORES):  # equal up to float32 rounding
        np.testing.assert_allclose(found[False][key].numpy(), found[True][key].numpy(), rtol=1e-5, atol=1e-6)
    errors, which = top_two_errors(found[False], persons)
    assert sorted(which) == [0, 1] and errors.max() < 1.5


def test_decode_stride_must_divide_the_output_stride():
    with pytest.raises(ValueError, match="must divide the output stride 16"):
        detector.PersonLabInference(16, decode_stride=3)
    assert detector.PersonLabInference(8, decode_stride=16).grid_stride == 8  # never coarser than os
    with pytest.raises(ValueError, match="mask_resolution"):
        detector.PersonLabInference(mask_resolution="pixels")


def test_hybrid_masks_put_the_boundary_where_the_interpolated_segmentation_crosses_one_half():
    """One person whose embedding reaches its keypoints from every cell (D = 0), on an 8 x 8 grid of stride 4
    (frame = image, 29 x 29 pixels). p_S is 0 in columns 0-2, 0.4 in column 3 and 0.9 from column 4 on:
    interpolated, it reaches 0.5 at x = 4 (3 + 0.1 / 0.5) = 12.8, so the hybrid mask starts at pixel column
    13; the grid mask (only cells 4-7 are person cells) starts halfway between cells 3 and 4, at 14."""
    cells, stride, keypoint = 8, 4, 14.0
    columns = np.array([0, 0, 0, 0.4, 0.9, 0.9, 0.9, 0.9], np.float32)
    segmentation = np.tile(columns[np.newaxis, :, np.newaxis], (cells, 1, 1))
    ys, xs = np.mgrid[:cells, :cells].astype(np.float32) * stride
    to_keypoint = np.stack([keypoint - xs, keypoint - ys], axis=-1)[:, :, np.newaxis, :]
    maps = {keys.Map.SEGMENTATION: tf.constant(segmentation),
            keys.Map.HEATMAPS: tf.ones([cells, cells, 17]),
            keys.Map.LONG_OFFSETS: tf.constant(np.tile(to_keypoint, (1, 1, 17, 1)))}
    persons = tf.fill([1, 17, 2], keypoint)
    size = tf.constant([29, 29])
    options = PersonLabDecoding()
    hybrid = detector.hybrid_masks(maps, persons, tf.constant(1.0), stride, tf.constant(1.0), size, options).numpy()
    assert hybrid.shape == (options.max_detections, 29, 29) and not hybrid[1:].any()
    assert hybrid[0].all(axis=0).tolist() == [False] * 13 + [True] * 16
    assert (hybrid[0] == hybrid[0, :1]).all()                     # every row the same
    grid = instance_masks(maps[keys.Map.SEGMENTATION], maps[keys.Map.LONG_OFFSETS], persons,
                                   tf.ones([1, 17]), tf.ones([1]), stride)
    on_grid = maps_lib.masks_to_original(grid, tf.constant(1.0), stride, size).numpy()
    assert on_grid[0].all(axis=0).tolist() == [False] * 14 + [True] * 15


@pytest.mark.parametrize("mask_resolution", detector.MASK_RESOLUTIONS)
def test_an_image_without_persons_gives_no_detection_and_empty_masks(mask_resolution):
    network = PerfectNetwork(np.zeros((0, 17, 2), np.float32), 8)
    inference = detector.PersonLabInference(8, max_side=241, mask_resolution=mask_resolution)
    found = detector.Detector(network, RADIUS, COCO17, inference).detect(tf.zeros([HEIGHT, WIDTH, 3], tf.uint8))
    assert int(found[keys.Detection.NUM_DETECTIONS]) == 0
    assert found[keys.Detection.MASKS].shape == (20, HEIGHT, WIDTH) and not found[keys.Detection.MASKS].numpy().any()
