"""Part-parsing decoding on hand-made maps (personlab_tf/tasks/parts/decode.py, limb_scores.py)."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys, skeleton
from personlab_tf.data import grids
from personlab_tf.tasks.parts import decode, detector, matching, targets
from personlab_tf.tasks.parts.limb_scores import connection_scores

NOSE, LEFT_EYE, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 1, 5, 6
NUM_KEYPOINTS, LIMBS = skeleton.COCO17.num_keypoints, skeleton.COCO17.limbs
STRIDE = 4
SIZE = 33   # cells per side of the hand-made maps: 128 x 128 pixels
RADIUS = 8.0
OPTIONS = decode.PartsDecoding(max_candidates=4)


def disk_maps(points, num_keypoints=NUM_KEYPOINTS):
    """Heatmaps and short offsets of perfect disks (radius 8 px) around {(type): [(x, y), ...]}."""
    heatmaps = np.zeros((SIZE, SIZE, num_keypoints), np.float32)
    offsets = np.zeros((SIZE, SIZE, num_keypoints, 2), np.float32)
    grid = np.stack(np.meshgrid(np.arange(SIZE), np.arange(SIZE)), axis=-1) * STRIDE   # (x, y) of cell (i, j)
    for k, centres in points.items():
        for centre in centres:
            delta = np.asarray(centre, np.float32) - grid
            inside = np.hypot(delta[..., 0], delta[..., 1]) <= 8.0
            heatmaps[inside, k] = 1.0
            offsets[inside, k] = delta[inside]
    return tf.constant(heatmaps), tf.constant(offsets)


def test_candidates_are_the_hough_maxima_at_sub_pixel_positions():
    heatmaps, offsets = disk_maps({NOSE: [(41.5, 30.25), (90.0, 70.0)], LEFT_EYE: [(50.0, 20.0)]})
    maps = {keys.Map.HEATMAPS: heatmaps, keys.Map.SHORT_OFFSETS: offsets}
    positions, scores, valid = decode.keypoint_candidates(maps, STRIDE, RADIUS, OPTIONS)
    assert positions.shape == (NUM_KEYPOINTS, 4, 2)
    assert valid.numpy().sum() == 3 and valid.numpy()[NOSE, :2].all() and valid.numpy()[LEFT_EYE, 0]
    found = sorted(map(tuple, np.round(positions.numpy()[NOSE, :2], 3)))
    assert found == [(41.5, 30.25), (90.0, 70.0)]
    # Each perfect disk (about 4 pi cells of probability 1 voting at one point) has a peak mass near 1,
    # wherever the point falls between cells; a plateau of equal maxima gives one candidate.
    np.testing.assert_allclose(scores.numpy()[valid.numpy()], 1.0, atol=0.1)


def person_maps(points, person_cells):
    """Part probabilities (class 1 on `person_cells` [SIZE, SIZE] bool, else background) and a projection field
    from every cell to the nearest of `points` [(x, y), ...], as a perfect network would give them."""
    grid = np.stack(np.meshgrid(np.arange(SIZE), np.arange(SIZE)), axis=-1) * STRIDE
    delta = np.asarray(points, np.float32)[:, None, None] - grid                    # [P, SIZE, SIZE, 2]
    nearest = np.argmin(np.hypot(delta[..., 0], delta[..., 1]), axis=0)
    field = np.take_along_axis(delta, nearest[None, ..., None], axis=0)[0].astype(np.float32)
    parts = np.stack([~person_cells, person_cells], axis=-1).astype(np.float32)
    return {keys.Map.PART_PROBABILITIES: tf.constant(parts), keys.Map.PROJECTION_FIELD: tf.constant(field)}


def test_projection_candidates_are_where_person_pixels_project_scored_by_the_hough_maps():
    keypoints = {NOSE: [(41.5, 30.25), (90.0, 70.0)], LEFT_EYE: [(50.0, 20.0)]}
    heatmaps, offsets = disk_maps(keypoints)
    # The person covers x 32..56, y 12..40: every one of its cells projects onto the first nose or the eye; the
    # second nose has its Hough peak but no person pixel projects onto it (the field of the background cells
    # around it points there, but background does not project), so it is no candidate.
    person = np.zeros((SIZE, SIZE), bool)
    person[3:11, 8:15] = True
    maps = {keys.Map.HEATMAPS: heatmaps, keys.Map.SHORT_OFFSETS: offsets,
            **person_maps([(41.5, 30.25), (90.0, 70.0), (50.0, 20.0)], person)}
    options = decode.PartsDecoding(candidates="projections", max_candidates=4)
    positions, scores, valid = decode.keypoint_candidates(maps, STRIDE, RADIUS, options)
    assert valid.numpy().sum() == 2 and valid.numpy()[NOSE, 0] and valid.numpy()[LEFT_EYE, 0]
    np.testing.assert_allclose(positions.numpy()[NOSE, 0], (41.5, 30.25), atol=1e-4)
    np.testing.assert_allclose(positions.numpy()[LEFT_EYE, 0], (50.0, 20.0), atol=1e-4)
    np.testing.assert_allclose(scores.numpy()[valid.numpy()], 1.0, atol=0.1)
    # Without the Hough maps' support a projection is no candidate: the eye's disk removed, its projections
    # score 0 for every type.
    heatmaps = tf.where(tf.range(NUM_KEYPOINTS) == LEFT_EYE, 0.0, heatmaps)
    _, _, valid = decode.keypoint_candidates(dict(maps, **{keys.Map.HEATMAPS: heatmaps}), STRIDE, RADIUS, options)
    assert valid.numpy().sum() == 1 and valid.numpy()[NOSE, 0]


def test_connection_scores_average_the_limb_map_along_the_segment():
    limb_maps = np.zeros((1, SIZE, SIZE, len(LIMBS)), np.float32)
    limb_maps[0, 5, 2:11, 0] = 1.0      # limb 0 lit along row 5 (y = 20) from x = 8 to x = 40
    starts = tf.constant([[[[8.0, 20.0], [8.0, 60.0]]] * len(LIMBS)])
    ends = tf.constant([[[[40.0, 20.0]]] * len(LIMBS)])
    scores = connection_scores(tf.constant(limb_maps), starts, ends, STRIDE, samples=5).numpy()
    assert scores.shape == (1, len(LIMBS), 2, 1)
    assert scores[0, 0, 0, 0] == pytest.approx(1.0)
    # From (8, 60) to (40, 20): only the end point (40, 20) is on the lit row.
    assert scores[0, 0, 1, 0] == pytest.approx(1 / 5)
    assert scores[0, 1:].max() == 0


def connections(pairs, limbs=LIMBS):
    """[L, M, M] connections and scores from {(k, l): [(i, j, score)]}."""
    chosen = np.zeros((len(limbs), 4, 4), bool)
    scores = np.zeros(chosen.shape, np.float32)
    for limb, links in pairs.items():
        for i, j, score in links:
            chosen[limbs.index(limb), i, j] = True
            scores[limbs.index(limb), i, j] = score
    return tf.constant(chosen), tf.constant(scores)


def people(persons):
    """Non-empty person rows as a set of {keypoint: candidate} tuples."""
    return {tuple((k, int(c)) for k, c in enumerate(row) if c >= 0) for row in persons.numpy() if (row >= 0).any()}


def test_assembly_from_head_to_feet_and_merging_halves():
    chosen, scores = connections({
        (NOSE, LEFT_EYE): [(0, 0, 0.9)],
        (NOSE, LEFT_SHOULDER): [(0, 1, 0.8)],
        # person 2 has no nose: its shoulders start two fragments that the shoulder bar merges
        (LEFT_SHOULDER, 7): [(0, 2, 0.7)],
        (RIGHT_SHOULDER, 8): [(3, 1, 0.7)],
        (LEFT_SHOULDER, RIGHT_SHOULDER): [(0, 3, 0.6)],
    })
    persons = decode.assemble(chosen, scores, 4, LIMBS, NUM_KEYPOINTS)
    assert persons.shape == (NUM_KEYPOINTS * 4 // 2, NUM_KEYPOINTS)
    assert people(persons) == {((NOSE, 0), (LEFT_EYE, 0), (LEFT_SHOULDER, 1)),
                               ((LEFT_SHOULDER, 0), (RIGHT_SHOULDER, 3), (7, 2), (8, 1))}


def test_assembly_does_not_give_a_person_two_keypoints_of_one_type():
    # Two left eyes claimed for nose 0 by different limbs cannot happen; but a second shoulder bar
    # between persons that both have right shoulders must not merge them.
    chosen, scores = connections({
        (NOSE, LEFT_SHOULDER): [(0, 0, 0.9), (1, 1, 0.9)],
        (NOSE, RIGHT_SHOULDER): [(0, 0, 0.9), (1, 1, 0.9)],
        (LEFT_SHOULDER, RIGHT_SHOULDER): [(0, 1, 0.5)],
    })
    assert people(decode.assemble(chosen, scores, 4, LIMBS, NUM_KEYPOINTS)) == {
        ((NOSE, 0), (LEFT_SHOULDER, 0), (RIGHT_SHOULDER, 0)), ((NOSE, 1), (LEFT_SHOULDER, 1), (RIGHT_SHOULDER, 1))}


def test_no_connection_means_no_person():
    chosen, scores = connections({})
    detections = decode.person_keypoints(decode.assemble(chosen, scores, 4, LIMBS, NUM_KEYPOINTS),
                                         tf.zeros([NUM_KEYPOINTS, 4, 2]),
                                         tf.zeros([NUM_KEYPOINTS, 4]), 5)
    assert int(detections[keys.Detection.NUM_DETECTIONS]) == 0
    assert not detections[keys.Detection.KEYPOINT_PRESENT].numpy().any() and detections[keys.Detection.INSTANCE_SCORES].shape == (5,)


def test_instance_scores_are_the_mean_keypoint_score_and_rank_the_persons():
    persons = -np.ones((3, NUM_KEYPOINTS), np.int32)
    persons[0, [NOSE, LEFT_EYE]] = [0, 0]
    persons[2, [NOSE, LEFT_EYE, LEFT_SHOULDER]] = [1, 1, 0]
    positions = np.zeros((NUM_KEYPOINTS, 4, 2), np.float32)
    scores = np.zeros((NUM_KEYPOINTS, 4), np.float32)
    scores[NOSE, :2], scores[LEFT_EYE, :2], scores[LEFT_SHOULDER, 0] = (0.9, 0.5), (0.8, 0.5), 0.5
    detections = decode.person_keypoints(tf.constant(persons), tf.constant(positions), tf.constant(scores), 4)
    assert int(detections[keys.Detection.NUM_DETECTIONS]) == 2
    np.testing.assert_allclose(detections[keys.Detection.INSTANCE_SCORES], [1.7 / 17, 1.5 / 17, 0, 0], rtol=1e-6)


def test_pixels_join_the_nearest_instance_under_eq_17():
    keypoints = np.zeros((2, NUM_KEYPOINTS, 2), np.float32)
    present = np.zeros((2, NUM_KEYPOINTS), bool)
    keypoints[0, [NOSE, LEFT_EYE]] = [(10, 10), (20, 30)]    # box 10 x 20: lambda = sqrt(200)
    keypoints[1, [NOSE, LEFT_EYE]] = [(50, 10), (90, 90)]    # box 40 x 80: lambda = sqrt(3200) = 4 sqrt(200)
    present[:, [NOSE, LEFT_EYE]] = True
    scores = np.where(present, 0.5, 0.0).astype(np.float32)
    detections = {keys.Detection.KEYPOINTS: tf.constant(keypoints), keys.Detection.KEYPOINT_SCORES: tf.constant(scores),
                  keys.Detection.KEYPOINT_PRESENT: tf.constant(present), keys.Detection.INSTANCE_SCORES: tf.constant([0.5, 0.5]),
                  keys.Detection.NUM_DETECTIONS: tf.constant(2)}
    # Pixel (30, 10) projects onto itself: 20 px from both noses, but instance 1 is 4 times larger.
    # Pixel (12, 40) projects by (0, -28) to (12, 12): next to instance 0's nose.
    points = tf.constant([[30.0, 10.0], [12.0, 40.0]])
    field = tf.constant([[0.0, 0.0], [0.0, -28.0]])
    np.testing.assert_array_equal(decode.assign_pixels(points, field, detections), [1, 0])
    detections[keys.Detection.NUM_DETECTIONS] = tf.constant(0)
    np.testing.assert_array_equal(decode.assign_pixels(points, field, detections), [-1, -1])


def test_instance_part_maps_split_the_part_map():
    part_map = tf.constant([[1, 2, 0], [3, 3, 1]], tf.uint8)
    owner = tf.constant([[0, 1, -1], [1, -1, 0]])
    maps = decode.instance_part_maps(part_map, owner, 3).numpy()
    np.testing.assert_array_equal(maps[0], [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(maps[1], [[0, 2, 0], [3, 0, 0]])
    assert not maps[2].any()


TWO_PEOPLE = {0: [(30.0, 20.0), (90.0, 24.0)], 1: [(36.0, 16.0), (96.0, 20.0)], 5: [(40.0, 40.0), (100.0, 44.0)],
              6: [(20.0, 40.0), (80.0, 44.0)]}


def two_people_maps(truth=TWO_PEOPLE):
    """The decoding maps of two side-by-side persons made from their targets (parts.targets), and their
    keypoints [2, K, 2]."""
    heatmaps, offsets = disk_maps(truth)
    kp = np.zeros((2, NUM_KEYPOINTS, 2), np.float32)
    labelled = np.zeros((2, NUM_KEYPOINTS), bool)
    for k, (first, second) in truth.items():
        kp[0, k], kp[1, k] = first, second
        labelled[:, k] = True
    grid = grids.grid_points(SIZE, STRIDE)
    limbs = targets.limb_heatmaps(tf.constant(kp), tf.constant(labelled), grid, LIMBS, sigma=4.0)
    person = np.zeros((SIZE, SIZE), bool)
    person[3:12, 4:27] = True     # both persons' keypoints lie in x 16..104, y 12..44
    maps = {keys.Map.HEATMAPS: heatmaps, keys.Map.SHORT_OFFSETS: offsets, keys.Map.LIMB_HEATMAPS: limbs,
            **person_maps(kp[labelled].tolist(), person)}
    return maps, kp


@pytest.mark.parametrize("candidates", decode.CANDIDATES)
@pytest.mark.parametrize("matcher", matching.MATCHERS)
def test_two_people_from_their_target_maps(matcher, candidates):
    """Targets of two side-by-side persons (parts.targets) decode into exactly those persons."""
    maps, kp = two_people_maps()
    truth = TWO_PEOPLE
    options = decode.PartsDecoding(candidates=candidates, max_candidates=4, matcher=matcher)
    detections = tf.function(decode.decode_poses)(maps, STRIDE, RADIUS, LIMBS, options)
    assert int(detections[keys.Detection.NUM_DETECTIONS]) == 2
    found = sorted(detections[keys.Detection.KEYPOINTS].numpy()[:2, list(truth)].tolist())
    np.testing.assert_allclose(found, sorted(kp[:, list(truth)].tolist()), atol=1e-3)



def test_parsing_with_part_maps_at_stride_2_reads_the_part_map_on_the_stride_4_grid():
    """detector.parse_image with the part probabilities at stride 2 (each stride-4 cell's value on the 2 x 2
    cells from it) finds the same persons, also with the projection candidates, which read the part map."""
    maps, _ = two_people_maps()
    fine = np.repeat(np.repeat(maps[keys.Map.PART_PROBABILITIES].numpy(), 2, axis=0), 2, axis=1)[:2 * SIZE - 1, :2 * SIZE - 1]
    options = decode.PartsDecoding(candidates="projections", max_candidates=4)
    size = tf.constant([128, 128])
    coarse = detector.parse_image(maps, 1.0, size, RADIUS, LIMBS, options)
    parsed = detector.parse_image(dict(maps, **{keys.Map.PART_PROBABILITIES: tf.constant(fine)}), 1.0, size, RADIUS,
                                  LIMBS, options, part_stride=2)
    assert int(parsed[keys.Detection.NUM_DETECTIONS]) == 2
    np.testing.assert_allclose(parsed[keys.Detection.KEYPOINTS], coarse[keys.Detection.KEYPOINTS], atol=1e-4)
    assert parsed[keys.Detection.PART_MAP].shape == (128, 128)


# A skeleton of 5 keypoints, a star around the body (its limbs the tree's 4 edges).
THING = skeleton.make_skeleton("thing", ("body", "left_arm", "right_arm", "left_leg", "right_leg"),
                               ((0, 1), (0, 2), (0, 3), (0, 4)), (0.05,) * 5)
TWO_THINGS = {0: [(30.0, 30.0), (90.0, 30.0)], 1: [(42.0, 22.0), (102.0, 22.0)], 2: [(18.0, 22.0), (78.0, 22.0)],
              3: [(36.0, 46.0), (96.0, 46.0)], 4: [(24.0, 46.0), (84.0, 46.0)]}


@pytest.mark.parametrize("candidates", decode.CANDIDATES)
def test_a_five_keypoint_skeleton_decodes_with_its_own_limbs(candidates):
    """Decoding takes K from the maps and the limbs from the skeleton: two 5-keypoint persons from their
    target maps; the detections have 5 keypoints each, the assembly P = K M / 2 slots of K."""
    heatmaps, offsets = disk_maps(TWO_THINGS, THING.num_keypoints)
    kp = np.array([[TWO_THINGS[k][person] for k in range(5)] for person in range(2)], np.float32)
    limbs = targets.limb_heatmaps(tf.constant(kp), tf.ones([2, 5], tf.bool), grids.grid_points(SIZE, STRIDE),
                                  THING.limbs, sigma=4.0)
    assert limbs.shape == (SIZE, SIZE, 4)
    person = np.zeros((SIZE, SIZE), bool)
    person[4:13, 3:27] = True
    maps = {keys.Map.HEATMAPS: heatmaps, keys.Map.SHORT_OFFSETS: offsets, keys.Map.LIMB_HEATMAPS: limbs,
            **person_maps(kp.reshape(-1, 2).tolist(), person)}
    options = decode.PartsDecoding(candidates=candidates, max_candidates=4)
    positions, _, valid = decode.keypoint_candidates(maps, STRIDE, RADIUS, options)
    assert positions.shape == (5, 4, 2) and valid.numpy().sum() == 10
    detections = tf.function(decode.decode_poses)(maps, STRIDE, RADIUS, THING.limbs, options)
    assert int(detections[keys.Detection.NUM_DETECTIONS]) == 2
    assert detections[keys.Detection.KEYPOINTS].shape == (options.max_detections, 5, 2)
    np.testing.assert_allclose(sorted(detections[keys.Detection.KEYPOINTS].numpy()[:2].tolist()), sorted(kp.tolist()),
                               atol=1e-3)
    np.testing.assert_allclose(detections[keys.Detection.INSTANCE_SCORES].numpy()[:2], 1.0, atol=0.1)
    connected, scores = decode.limb_connections(limbs, positions, valid, STRIDE, THING.limbs, options)
    assert connected.shape == (4, 4, 4) and connected.numpy().sum() == 8
    assert decode.assemble(connected, scores, 4, THING.limbs, 5).shape == (10, 5)
    parsed = detector.parse_image(maps, 1.0, tf.constant([128, 128]), RADIUS, THING.limbs, options)
    assert int(parsed[keys.Detection.NUM_DETECTIONS]) == 2 and parsed[keys.Detection.KEYPOINT_SCORES].shape[1:] == (5,)
