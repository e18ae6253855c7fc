"""Part-parsing targets on hand-made cases (personlab_tf/tasks/parts/targets.py), the part sets and the skeletons'
limbs."""

import math

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys, skeleton
from personlab_tf.tasks.parts import part_sets, targets

from sample_factory import decoded_sample, identity_crop, keypoint_array

SIZE = 65                      # crop side: 2 cells at stride 32, 17 at stride 4
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW = 0, 5, 6, 7
LIMBS = skeleton.COCO17.limbs


def part_sample(keypoints, masks, labels, has_parts=None, is_crowd=None, flip=False, imputed=None):
    """An identity-crop sample with a part map; `flip` marks the crop as mirrored (ax < 0)."""
    sample = identity_crop(decoded_sample(keypoints, masks, is_crowd=is_crowd, imputed=imputed))
    sample[keys.Sample.PART_LABELS] = tf.constant(labels, tf.uint8)
    sample[keys.Sample.HAS_PARTS] = tf.constant(np.ones(len(masks), bool) if has_parts is None else has_parts)
    if flip:  # crop pixel u is image pixel SIZE - 1 - u
        sample[keys.Sample.CROP_TO_IMAGE] = tf.constant([-1.0, 0.0, SIZE - 1.0, 0.0, 1.0, 0.0])
    return sample


def test_flip_permutations_swap_left_and_right():
    densepose = part_sets.DENSEPOSE
    flip = densepose.flip_permutation
    assert densepose.classes[flip[densepose.classes.index("left_hand")]] == "right_hand"
    assert flip[densepose.classes.index("torso")] == densepose.classes.index("torso")
    assert sorted(flip) == list(range(densepose.num_classes))
    assert part_sets.SYNTHETIC.flip_permutation == tuple(range(9))
    mhp = part_sets.MHP_V2
    assert mhp.classes[mhp.flip_permutation[mhp.classes.index("left_shoe")]] == "right_shoe"
    with pytest.raises(ValueError, match="unknown part set"):
        part_sets.part_set("lip")


def test_coco_limbs_are_the_part_parsers_18_from_head_to_feet():
    assert LIMBS == ((0, 1), (0, 2), (1, 3), (2, 4), (0, 5), (0, 6), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
                     (5, 11), (6, 12), (11, 12), (11, 13), (12, 14), (13, 15), (14, 16))
    assert set(skeleton.COCO17.tree) <= set(LIMBS)


@pytest.mark.parametrize("name", sorted(skeleton.BUILTIN))
def test_limbs_cover_the_tree_from_the_first_limb_outwards(name):
    """The assembly grows persons limb by limb: every limb starts at a keypoint reached by an earlier one,
    and the limbs join every keypoint and every tree edge."""
    built_in = skeleton.BUILTIN[name]
    undirected = {frozenset(limb) for limb in built_in.limbs}
    assert {frozenset(edge) for edge in built_in.tree} <= undirected
    reached = {built_in.limbs[0][0]}
    for parent, child in built_in.limbs:
        assert parent in reached, (name, parent, child)
        reached.add(child)
    assert reached == set(range(built_in.num_keypoints))


def test_projection_field_points_to_the_nearest_labelled_keypoint():
    # One person covering columns 8..40 of rows 8..24, keypoints at (8, 16) and (40, 16).
    kp = keypoint_array(1, {(0, NOSE): (8, 16), (0, LEFT_SHOULDER): (40, 16)})
    masks = np.zeros([1, SIZE, SIZE], bool)
    masks[0, 8:25, 8:41] = True
    labels = np.zeros([SIZE, SIZE], np.uint8)
    t = targets.make_part_targets(part_sample(kp, masks, labels), SIZE, part_sets.SYNTHETIC, LIMBS, radius=8.0)
    field, weights = t[keys.Map.projection(4)].numpy(), t[keys.Map.projection_weights(4)].numpy()
    # Cells (i, j) at pixel (4 j, 4 i): rows 2..6, columns 2..10 are in the mask.
    assert {tuple(c) for c in np.argwhere(weights)} == {(i, j) for i in range(2, 7) for j in range(2, 11)}
    np.testing.assert_allclose(field[2, 3], [(8 - 12) / 4, (16 - 8) / 4])      # nearer the nose
    np.testing.assert_allclose(field[6, 9], [(40 - 36) / 4, (16 - 24) / 4])    # nearer the shoulder
    # Stride 8: cell (2, 3) is pixel (24, 16), equidistant -> the first (nose); offsets in cells of 8 px.
    np.testing.assert_allclose(t[keys.Map.projection(8)].numpy()[2, 3], [(8 - 24) / 8, 0])


def test_projection_field_is_undefined_on_overlaps_crowd_and_persons_without_keypoints():
    kp = keypoint_array(3, {(0, NOSE): (16, 16), (1, NOSE): (40, 16)})
    masks = np.zeros([3, SIZE, SIZE], bool)
    masks[0, 8:25, 8:33] = True     # person 0
    masks[1, 8:25, 24:49] = True    # person 1 overlaps it on columns 24..32
    masks[2, 40:57, 8:25] = True    # person 2 has no keypoint
    labels = np.zeros([SIZE, SIZE], np.uint8)
    t = targets.make_part_targets(part_sample(kp, masks, labels), SIZE, part_sets.SYNTHETIC, LIMBS, radius=8.0)
    weights = t[keys.Map.projection_weights(4)].numpy()
    assert weights[4, 4] == 1 and weights[4, 10] == 1
    assert weights[4, 6:9].sum() == 0        # pixels 24..32 are in both masks
    assert weights[10:15, 2:7].sum() == 0    # person 2
    np.testing.assert_allclose(t[keys.Map.projection(4)].numpy()[4, 10], [0, 0])   # its own nose


def test_limb_gaussian_values():
    start, end, sigma = tf.constant([0.0, 0.0]), tf.constant([20.0, 0.0]), 4.0
    points = tf.constant([[10.0, 0.0], [0.0, 0.0], [10.0, 4.0], [30.0, 0.0]])
    values = targets.limb_gaussian(points, start, end, sigma).numpy()
    spread = sigma + 10.0
    np.testing.assert_allclose(values, [1.0, math.exp(-100 / (2 * spread ** 2)), math.exp(-0.5),
                                        math.exp(-400 / (2 * spread ** 2))], rtol=1e-5)


def test_limb_heatmaps_need_both_keypoints_and_take_the_maximum_over_persons():
    kp = keypoint_array(2, {(0, LEFT_SHOULDER): (16, 16), (0, LEFT_ELBOW): (16, 48), (1, LEFT_SHOULDER): (48, 16)})
    masks = np.zeros([2, SIZE, SIZE], bool)
    t = targets.make_part_targets(part_sample(kp, masks, np.zeros([SIZE, SIZE], np.uint8)), SIZE,
                                  part_sets.SYNTHETIC, LIMBS, radius=8.0)
    limbs = t[keys.Map.LIMB_HEATMAPS].numpy()
    arm = LIMBS.index((LEFT_SHOULDER, LEFT_ELBOW))
    np.testing.assert_allclose(limbs[8, 4, arm], 1.0)     # midpoint (16, 32)
    assert limbs[..., arm][:, 12].max() < 1e-3             # person 1 has no elbow: no limb near x = 48
    others = [index for index in range(len(LIMBS)) if index != arm]
    assert limbs[..., others].max() == 0
    assert np.all(t[keys.Map.LIMB_WEIGHTS].numpy() == 1)


def test_limbs_of_keypoints_an_imputation_left_unlabelled_are_unknown():
    """Imputed person 1 (columns 40-64) has only its left shoulder: every limb has an unknown end over its
    mask (weight 0 there, cells 10-16 at stride 4), even person 0's arm, whose Gaussian there (28 px or more
    across it, sigma 8) is below LIMB_SUPPORT; labelled person 0 (columns 0-24) keeps every negative."""
    kp = keypoint_array(2, {(0, LEFT_SHOULDER): (12, 16), (0, LEFT_ELBOW): (12, 48), (1, LEFT_SHOULDER): (52, 16)})
    masks = np.zeros([2, SIZE, SIZE], bool)
    masks[0, :, :25], masks[1, :, 40:] = True, True
    labels = np.zeros([SIZE, SIZE], np.uint8)
    weights = {imputed: targets.make_part_targets(part_sample(kp, masks, labels, imputed=[False, imputed]), SIZE,
                                                  part_sets.SYNTHETIC, LIMBS, radius=8.0)[keys.Map.LIMB_WEIGHTS].numpy()
               for imputed in (False, True)}
    assert np.all(weights[True][:, 10:] == 0) and np.all(weights[True][:, :10] == 1)
    assert np.all(weights[False] == 1)                     # not imputed: absent keypoints are absent


def test_part_labels_are_swapped_in_a_flipped_crop_and_ignored_where_unknown():
    labels = np.zeros([SIZE, SIZE], np.uint8)
    labels[:, :32] = part_sets.DENSEPOSE.classes.index("left_hand")
    masks = np.zeros([3, SIZE, SIZE], bool)
    masks[1, 40:, 40:] = True          # a person without part labels
    masks[2, :8, 40:] = True           # a crowd region
    kp = keypoint_array(3, {})
    sample = part_sample(kp, masks, labels, has_parts=[True, False, False], is_crowd=[False, False, True], flip=True)
    t = targets.make_part_targets(sample, SIZE, part_sets.DENSEPOSE, LIMBS, radius=8.0)
    grid = t[keys.Map.PART_CLASSES].numpy()
    right_hand = part_sets.DENSEPOSE.classes.index("right_hand")
    # Crop column u is image column 64 - u: crop pixels 33..64 show image columns 0..31.
    assert np.all(grid[:, 9:] == right_hand) and np.all(grid[:, :9] == 0)
    weights = t[keys.Map.PART_WEIGHTS].numpy()
    # The no-parts person covers image columns 40.. -> crop columns ..24, rows 40..; the crowd rows 0..7.
    assert weights[10:, :7].sum() == 0 and weights[:2, :7].sum() == 0
    assert weights[5, 12] == 1 and weights.sum() == 17 * 17 - 7 * 7 - 2 * 7


def test_part_targets_at_stride_2_keep_a_part_two_pixels_wide():
    labels = np.zeros([SIZE, SIZE], np.uint8)
    labels[10:50, 30:32] = part_sets.SYNTHETIC.classes.index("lower_arm")    # columns 30-31: between stride-4 cells
    masks = np.zeros([1, SIZE, SIZE], bool)
    masks[0, 10:50, 20:40] = True
    sample = part_sample(keypoint_array(1, {}), masks, labels)
    coarse = targets.make_part_targets(sample, SIZE, part_sets.SYNTHETIC, LIMBS, radius=8.0)
    fine = targets.make_part_targets(sample, SIZE, part_sets.SYNTHETIC, LIMBS, radius=8.0, part_stride=2)
    assert coarse[keys.Map.PART_CLASSES].shape == (17, 17) and not coarse[keys.Map.PART_CLASSES].numpy().any()
    grid = fine[keys.Map.PART_CLASSES].numpy()
    assert grid.shape == (33, 33) and fine[keys.Map.PART_WEIGHTS].shape == (33, 33)
    assert np.all(grid[5:25, 15] == part_sets.SYNTHETIC.classes.index("lower_arm")) and grid.sum() == 20 * 4
    # The pose targets keep their stride.
    assert fine[keys.Map.HEATMAPS].shape[:2] == (17, 17)
    with pytest.raises(ValueError, match="part stride 8"):
        targets.PartsData(part_stride=8)
    with pytest.raises(ValueError, match="max_persons 0 must be at least 1"):
        targets.PartsData(max_persons=0)


def test_matching_persons_are_padded_and_keep_keypoints_inside_the_crop():
    kp = keypoint_array(2, {(0, NOSE): (10, 10), (1, NOSE): (70, 10), (1, LEFT_SHOULDER): (20, 30)})
    points, labelled = targets.matching_persons(tf.constant(kp[..., :2]), tf.constant(kp[..., 2] > 0), SIZE, 4)
    assert points.shape == (4, 17, 2) and labelled.shape == (4, 17)
    np.testing.assert_array_equal(np.argwhere(labelled.numpy()), [[0, NOSE], [1, LEFT_SHOULDER]])
    np.testing.assert_allclose(points.numpy()[1, LEFT_SHOULDER], [20, 30])


def test_matching_persons_cut_drops_persons_without_usable_keypoints_first():
    # Person 0 has only a keypoint outside the crop, person 1 none, persons 2 and 3 one each inside.
    kp = keypoint_array(4, {(0, NOSE): (SIZE + 5, 10), (2, NOSE): (12, 14), (3, LEFT_SHOULDER): (30, 40)})
    points, labelled = targets.matching_persons(tf.constant(kp[..., :2]), tf.constant(kp[..., 2] > 0), SIZE, 2)
    np.testing.assert_array_equal(np.argwhere(labelled.numpy()), [[0, NOSE], [1, LEFT_SHOULDER]])
    np.testing.assert_allclose(points.numpy()[0, NOSE], [12, 14])
    np.testing.assert_allclose(points.numpy()[1, LEFT_SHOULDER], [30, 40])


def test_targets_of_another_skeleton_have_its_keypoints_and_limbs():
    """MHP v2's 16 joints: K heatmap and offset channels, one limb heatmap per limb of its 18 (the head-top ->
    upper-neck limb lit between them), the matching supervision [P, 16]."""
    mhp = skeleton.MHP_V2
    head_top, upper_neck = mhp.keypoints.index("head_top"), mhp.keypoints.index("upper_neck")
    kp = np.zeros([1, mhp.num_keypoints, 3], np.float32)
    kp[0, head_top], kp[0, upper_neck] = (16, 16, 2), (16, 48, 2)
    masks = np.zeros([1, SIZE, SIZE], bool)
    masks[0, 8:56, 8:24] = True
    t = targets.make_part_targets(part_sample(kp, masks, np.zeros([SIZE, SIZE], np.uint8)), SIZE,
                                  part_sets.MHP_V2, mhp.limbs, radius=8.0, max_persons=3)
    assert t[keys.Map.HEATMAPS].shape == (17, 17, 16) and t[keys.Map.SHORT_OFFSETS].shape == (17, 17, 16, 2)
    limbs = t[keys.Map.LIMB_HEATMAPS].numpy()
    assert len(mhp.limbs) == 18 and limbs.shape == (17, 17, 18) and t[keys.Map.LIMB_WEIGHTS].shape == (17, 17, 18)
    neck = mhp.limbs.index((head_top, upper_neck))
    np.testing.assert_allclose(limbs[8, 4, neck], 1.0)    # midpoint (16, 32)
    assert limbs[..., [index for index in range(18) if index != neck]].max() == 0
    assert t[keys.Map.HEATMAPS].numpy()[4, 4, head_top] == 1 and t[keys.Map.HEATMAPS].numpy()[12, 4, upper_neck] == 1
    assert t[keys.Map.MATCH_POINTS].shape == (3, 16, 2) and t[keys.Map.MATCH_LABELLED].shape == (3, 16)
    np.testing.assert_array_equal(np.argwhere(t[keys.Map.MATCH_LABELLED].numpy()), [[0, upper_neck], [0, head_top]])
