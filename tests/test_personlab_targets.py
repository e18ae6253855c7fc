"""PersonLab targets on hand-made cases whose answers can be checked by hand (paper §3.1–3.2)."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.data import augment, grids
from personlab_tf.tasks.personlab import targets

from sample_factory import decoded_sample, identity_crop, keypoint_array

NOSE, LEFT_EYE, RIGHT_EYE = 0, 1, 2
SIZE = 97          # image and crop side: 13 grid cells at stride 8
STRIDE = 8
RADIUS = 16.0      # 2 cells


def make(keypoints, masks, **kwargs):
    sample = identity_crop(decoded_sample(keypoints, masks, **kwargs))
    return {k: v.numpy() for k, v in targets.make_targets(sample, SIZE, COCO17.directed_edges, STRIDE, RADIUS).items()}


def edge_index(source, target):
    return COCO17.directed_edges.index((source, target))


def cells_within(x, y, radius=RADIUS):
    """Set of grid cells (i, j) whose pixel (8j, 8i) is within `radius` of (x, y): the disk D_R(y)."""
    return {(i, j) for i in range(13) for j in range(13)
            if (STRIDE * j - x) ** 2 + (STRIDE * i - y) ** 2 <= radius ** 2}


def on_cells(array):
    return {tuple(c) for c in np.argwhere(array > 0)}


def rect_mask(num, rects, size=SIZE):
    masks = np.zeros([num, size, size], bool)
    for n, (y0, y1, x0, x1) in enumerate(rects):
        masks[n, y0:y1, x0:x1] = True
    return masks


def test_one_person_heatmap_short_mid_long():
    kp = keypoint_array(1, {(0, NOSE): (40, 40), (0, LEFT_EYE): (56, 40)})
    t = make(kp, rect_mask(1, [(16, 81, 24, 73)]))
    # Heatmap: exactly the 13 cells within 2 cells of (5, 5); nothing for unlabelled keypoints.
    assert on_cells(t[keys.Map.HEATMAPS][..., NOSE]) == cells_within(40, 40)
    assert len(cells_within(40, 40)) == 13
    assert t[keys.Map.HEATMAPS][..., RIGHT_EYE].sum() == 0
    assert np.all(t[keys.Map.HEATMAP_WEIGHTS] == 1)
    np.testing.assert_array_equal(t[keys.Map.SHORT_WEIGHTS], t[keys.Map.HEATMAPS])
    # Short range S_k(x) = y_k - x: from cell (i=4, j=6), pixel (48, 32), to (40, 40).
    np.testing.assert_allclose(t[keys.Map.SHORT_OFFSETS][4, 6, NOSE], [-8, 8])
    np.testing.assert_allclose(t[keys.Map.SHORT_OFFSETS][5, 5, LEFT_EYE], [56 - 40, 0])
    assert t[keys.Map.SHORT_OFFSETS][0, 0].sum() == 0
    # Mid range nose -> left eye on the nose disk, left eye -> nose on the eye disk, nothing else.
    forward, backward = edge_index(NOSE, LEFT_EYE), edge_index(LEFT_EYE, NOSE)
    assert on_cells(t[keys.Map.MID_WEIGHTS][..., forward]) == cells_within(40, 40)
    assert on_cells(t[keys.Map.MID_WEIGHTS][..., backward]) == cells_within(56, 40)
    assert t[keys.Map.MID_WEIGHTS].sum() == 26
    np.testing.assert_allclose(t[keys.Map.MID_OFFSETS][4, 6, forward], [56 - 48, 40 - 32])
    np.testing.assert_allclose(t[keys.Map.MID_OFFSETS][5, 8, backward], [40 - 64, 0])
    # Segmentation on the mask cells (pixels 16..80 x 24..72 -> rows 2..10, cols 3..9).
    expected_seg = {(i, j) for i in range(2, 11) for j in range(3, 10)}
    assert on_cells(t[keys.Map.SEGMENTATION][..., 0]) == expected_seg
    assert np.all(t[keys.Map.SEGMENTATION_WEIGHTS] == 1)
    # Long range on every mask cell for the two labelled keypoints only.
    assert on_cells(t[keys.Map.LONG_WEIGHTS][..., NOSE]) == expected_seg
    assert on_cells(t[keys.Map.LONG_WEIGHTS][..., LEFT_EYE]) == expected_seg
    assert t[keys.Map.LONG_WEIGHTS][..., RIGHT_EYE].sum() == 0
    np.testing.assert_allclose(t[keys.Map.LONG_OFFSETS][10, 9, NOSE], [40 - 72, 40 - 80])


def test_overlapping_disks_take_the_nearest_person():
    kp = keypoint_array(2, {(0, NOSE): (40, 40), (1, NOSE): (64, 40)})
    t = make(kp, rect_mask(2, [(0, 1, 0, 1), (0, 1, 2, 3)]))
    assert on_cells(t[keys.Map.HEATMAPS][..., NOSE]) == cells_within(40, 40) | cells_within(64, 40)
    # Cell (5, 6) is pixel (48, 40): 8 px from person 0, 16 px from person 1.
    np.testing.assert_allclose(t[keys.Map.SHORT_OFFSETS][5, 6, NOSE], [-8, 0])
    # Cell (5, 7) is pixel (56, 40): 16 px from person 0, 8 px from person 1.
    np.testing.assert_allclose(t[keys.Map.SHORT_OFFSETS][5, 7, NOSE], [8, 0])


def test_overlapping_masks_have_no_long_range_target():
    kp = keypoint_array(2, {(0, NOSE): (10, 10), (1, NOSE): (80, 80)})
    # Person 0: rows 0..59, person 1: rows 40..96, all columns; overlap rows 40..59 = grid rows 5..7.
    t = make(kp, rect_mask(2, [(0, 60, 0, SIZE), (40, SIZE, 0, SIZE)]))
    assert np.all(t[keys.Map.SEGMENTATION] == 1)
    long_rows = t[keys.Map.LONG_WEIGHTS][:, :, NOSE].all(axis=1)
    np.testing.assert_array_equal(long_rows, [i not in (5, 6, 7) for i in range(13)])
    np.testing.assert_allclose(t[keys.Map.LONG_OFFSETS][4, 0, NOSE], [10, 10 - 32])
    np.testing.assert_allclose(t[keys.Map.LONG_OFFSETS][8, 2, NOSE], [80 - 16, 80 - 64])
    assert np.all(t[keys.Map.LONG_OFFSETS][5:8] == 0)


def test_crowd_region_is_ignored():
    # Person 0 on the left half with a nose; a crowd region on the right half with (ignored) keypoints.
    kp = keypoint_array(2, {(0, NOSE): (24, 48), (1, NOSE): (72, 48)})
    masks = rect_mask(2, [(0, SIZE, 0, 41), (0, SIZE, 41, SIZE)])
    t = make(kp, masks, is_crowd=[False, True], annotated=[True, False])
    assert on_cells(t[keys.Map.HEATMAPS][..., NOSE]) == cells_within(24, 48)
    crowd_cols = slice(6, 13)                      # pixels 48..96
    assert np.all(t[keys.Map.HEATMAP_WEIGHTS][:, crowd_cols] == 0)
    assert np.all(t[keys.Map.HEATMAP_WEIGHTS][:, :6] == 1)
    assert np.all(t[keys.Map.SEGMENTATION][:, crowd_cols] == 0)
    assert np.all(t[keys.Map.SEGMENTATION_WEIGHTS][:, crowd_cols] == 0)
    assert np.all(t[keys.Map.SEGMENTATION_WEIGHTS][:, :6] == 1)
    assert np.all(t[keys.Map.LONG_WEIGHTS][:, crowd_cols] == 0)
    assert np.all(t[keys.Map.LONG_WEIGHTS][:, :6, NOSE] == 1)
    assert t[keys.Map.MID_WEIGHTS].sum() == 0


def test_positive_disk_inside_an_ignored_region_is_kept():
    kp = keypoint_array(2, {(0, NOSE): (48, 48)})
    masks = rect_mask(2, [(40, 57, 40, 57), (0, SIZE, 0, SIZE)])
    t = make(kp, masks, is_crowd=[False, True], annotated=[True, False])
    weights = t[keys.Map.HEATMAP_WEIGHTS][..., NOSE]
    assert on_cells(weights) == cells_within(48, 48)
    assert on_cells(t[keys.Map.SEGMENTATION_WEIGHTS][..., 0]) == on_cells(t[keys.Map.SEGMENTATION][..., 0])


def test_keypoints_an_imputation_left_unlabelled_are_unknown_not_negatives():
    """Imputed person 1 (right half) has only its nose: over its mask every other keypoint is unknown (weight
    0), the nose is trained (its disk positive, the rest negative); labelled person 0 keeps every negative."""
    kp = keypoint_array(2, {(0, NOSE): (24, 48), (1, NOSE): (72, 48)})
    masks = rect_mask(2, [(0, SIZE, 0, 41), (0, SIZE, 56, SIZE)])        # person 1: columns 7..12
    t = make(kp, masks, imputed=[False, True])
    weights = t[keys.Map.HEATMAP_WEIGHTS]
    assert np.all(weights[:, 7:, LEFT_EYE] == 0) and np.all(weights[:, 7:, RIGHT_EYE] == 0)
    assert np.all(weights[:, 7:, NOSE] == 1) and on_cells(t[keys.Map.HEATMAPS][:, 7:, NOSE]) != set()
    assert np.all(weights[:, :6] == 1)                                  # person 0: all keypoints known
    plain = make(kp, masks)                                             # not imputed: absent means absent
    assert np.all(plain[keys.Map.HEATMAP_WEIGHTS] == 1)


def test_person_without_keypoints_is_segmented_but_not_a_heatmap_negative():
    kp = keypoint_array(2, {(0, NOSE): (16, 16)})
    masks = rect_mask(2, [(0, 33, 0, 33), (56, SIZE, 56, SIZE)])     # person 1: rows/cols 7..12
    t = make(kp, masks, annotated=[True, False])
    assert np.all(t[keys.Map.SEGMENTATION][7:, 7:] == 1)
    assert np.all(t[keys.Map.SEGMENTATION_WEIGHTS] == 1)
    assert np.all(t[keys.Map.HEATMAP_WEIGHTS][7:, 7:] == 0)
    assert np.all(t[keys.Map.HEATMAP_WEIGHTS][:7] == 1)
    assert np.all(t[keys.Map.LONG_WEIGHTS][7:, 7:] == 0)


def test_unlabelled_keypoint_has_no_disk_no_edge_and_no_long_range():
    kp = keypoint_array(1, {(0, NOSE): (40, 40), (0, LEFT_EYE): (56, 40), (0, RIGHT_EYE): (24, 40)})
    kp[0, LEFT_EYE, 2] = 0                                           # left eye not labelled
    t = make(kp, rect_mask(1, [(0, SIZE, 0, SIZE)]))
    assert t[keys.Map.HEATMAPS][..., LEFT_EYE].sum() == 0
    for edge, (k, l) in enumerate(COCO17.directed_edges):
        expect = {(NOSE, RIGHT_EYE): cells_within(40, 40), (RIGHT_EYE, NOSE): cells_within(24, 40)}
        assert on_cells(t[keys.Map.MID_WEIGHTS][..., edge]) == expect.get((k, l), set()), (k, l)
    assert t[keys.Map.LONG_WEIGHTS][..., LEFT_EYE].sum() == 0
    assert np.all(t[keys.Map.LONG_WEIGHTS][..., NOSE] == 1)


def test_keypoint_outside_the_crop_still_makes_its_disk():
    kp = keypoint_array(1, {(0, NOSE): (-8, 40)})
    t = make(kp, rect_mask(1, [(0, 1, 0, 1)]))
    assert on_cells(t[keys.Map.HEATMAPS][..., NOSE]) == cells_within(-8, 40)
    np.testing.assert_allclose(t[keys.Map.SHORT_OFFSETS][5, 0, NOSE], [-8, 0])


def test_no_persons_gives_empty_targets_and_full_weights():
    t = make(np.zeros([0, COCO17.num_keypoints, 3], np.float32), np.zeros([0, SIZE, SIZE], bool))
    for key in (keys.Map.HEATMAPS, keys.Map.SHORT_WEIGHTS, keys.Map.MID_WEIGHTS, keys.Map.LONG_WEIGHTS,
                keys.Map.SEGMENTATION, keys.Map.SHORT_OFFSETS, keys.Map.LONG_OFFSETS):
        assert t[key].sum() == 0, key
    assert np.all(t[keys.Map.HEATMAP_WEIGHTS] == 1) and np.all(t[keys.Map.SEGMENTATION_WEIGHTS] == 1)


def dense_reference(kp, labelled, radius, size=13):
    """The paper's definitions computed densely in numpy: for every cell and keypoint, the nearest
    labelled keypoint within R (ties to the lower person index)."""
    heat = np.zeros([size, size, kp.shape[1]])
    short = np.zeros([size, size, kp.shape[1], 2])
    for i in range(size):
        for j in range(size):
            x = np.array([STRIDE * j, STRIDE * i], float)
            for k in range(kp.shape[1]):
                d = np.where(labelled[:, k], np.linalg.norm(kp[:, k] - x, axis=-1), np.inf)
                if d.size and d.min() <= radius:
                    heat[i, j, k] = 1
                    short[i, j, k] = kp[np.argmin(d), k] - x
    return heat, short


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_windowed_disks_match_the_dense_definition(seed):
    rng = np.random.default_rng(seed)
    num = 12
    kp = np.concatenate([rng.uniform(-20, 117, [num, COCO17.num_keypoints, 2]),
                         rng.integers(0, 3, [num, COCO17.num_keypoints, 1])], -1).astype(np.float32)
    t = make(kp, np.zeros([num, SIZE, SIZE], bool))
    heat, short = dense_reference(kp[..., :2], kp[..., 2] > 0, RADIUS)
    np.testing.assert_array_equal(t[keys.Map.HEATMAPS], heat)
    np.testing.assert_allclose(t[keys.Map.SHORT_OFFSETS], short, atol=1e-4)


def test_flip_mirrors_every_target_with_left_right_swapped():
    kp = keypoint_array(2, {(0, NOSE): (40, 30), (0, LEFT_EYE): (50, 24), (0, RIGHT_EYE): (30, 26),
                            (0, 5): (60, 60), (1, NOSE): (70, 50), (1, 6): (64, 80)})
    masks = rect_mask(2, [(10, 80, 20, 70), (40, SIZE, 50, 90)])
    sample = decoded_sample(kp, masks)
    def targets_with_flip(probability):
        box = augment.BoxOptions(min_scale=1.0, max_scale=1.0, max_translation=0.0, flip_probability=probability)
        aug = augment.augment(sample, SIZE, COCO17.flip_permutation, seed=tf.constant([1, 2]), box=box)
        return {k: v.numpy() for k, v in targets.make_targets(aug, SIZE, COCO17.directed_edges, STRIDE, RADIUS).items()}

    plain, flipped = targets_with_flip(0.0), targets_with_flip(1.0)
    perm = list(COCO17.flip_permutation)
    edge_perm = [COCO17.directed_edges.index((perm[k], perm[l])) for k, l in COCO17.directed_edges]
    mirror_x = np.array([-1.0, 1.0])
    for key, channel_perm in ((keys.Map.HEATMAPS, perm), (keys.Map.LONG_WEIGHTS, perm), (keys.Map.MID_WEIGHTS, edge_perm),
                              (keys.Map.SEGMENTATION, [0])):
        np.testing.assert_array_equal(flipped[key], plain[key][:, ::-1][..., channel_perm], err_msg=key)
    for key, channel_perm in ((keys.Map.SHORT_OFFSETS, perm), (keys.Map.LONG_OFFSETS, perm), (keys.Map.MID_OFFSETS, edge_perm)):
        np.testing.assert_allclose(flipped[key], plain[key][:, ::-1][:, :, channel_perm] * mirror_x, atol=1e-4,
                                   err_msg=key)
    assert plain[keys.Map.HEATMAPS].sum() > 0 and plain[keys.Map.LONG_WEIGHTS].sum() > 0


def test_grid_size_rejects_a_crop_that_does_not_fit_the_stride():
    assert grids.grid_size(801, 8) == 101
    assert grids.grid_size(801, 16) == 51
    with pytest.raises(ValueError, match="multiple of the target stride"):
        grids.grid_size(800, 8)
