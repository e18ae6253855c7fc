"""The realistic oracle (tasks/personlab/noise.py) and its calibration (tasks/personlab/calibration.py,
scripts/calibrate_oracle.py): the noise model's figures, determinism, and a calibration that measures back the
noise it is given (docs/decoding.md)."""

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest

from personlab_tf import keys
from personlab_tf.skeleton import COCO17
from personlab_tf.data import coco, coco_format, coco_problems, coco_records, synthetic
from personlab_tf.tasks.parts.task import PartsTask
from personlab_tf.tasks.personlab import calibration, noise

from coco_samples import sample_images_dir, sample_json_path
from inference_fixtures import MAX_SIDE, REPO, exported_model, run_script
from personlab_tf.tfds_builders.coco_person import layout

RADIUS = 8.0
STRIDE = 8
# No degradation: sharp disks, hard masks, exact offsets.
IDENTITY = noise.MapNoise(heatmap_blur=0.0, heatmap_peak=1.0, segmentation_blur=0.0, segmentation_floor=0.0,
                          segmentation_peak=1.0, short=(0.0, 0.0, 0.0), mid=(0.0, 0.0, 0.0), long=(0.0, 0.0, 0.0),
                          short_gain=((0.0, 1.0),), mid_gain=((0.0, 1.0),), long_gain=((0.0, 1.0),))


def maps_with_offsets(offsets, size=40):
    """Raw maps of one image: a disk of keypoint 0 at cell (20, 20), a square person, constant offsets."""
    rows, columns = np.mgrid[:size, :size]
    heatmaps = np.zeros([size, size, 17], np.float32)
    heatmaps[..., 0] = np.hypot(rows - 20, columns - 20) * STRIDE <= RADIUS
    segmentation = np.zeros([size, size, 1], np.float32)
    segmentation[10:30, 10:30] = 1.0
    constant = np.broadcast_to(np.asarray(offsets, np.float32), (size, size, 17, 2)).copy()
    return {keys.Map.HEATMAPS: heatmaps, keys.Map.SEGMENTATION: segmentation, keys.Map.SHORT_OFFSETS: constant,
            keys.Map.MID_OFFSETS: np.broadcast_to(constant[:, :, :1], (size, size, 32, 2)).copy(),
            keys.Map.LONG_OFFSETS: constant}


def test_without_degradation_the_maps_are_the_targets():
    maps = maps_with_offsets([30.0, -40.0])
    degraded = noise.degrade(maps, IDENTITY, RADIUS, STRIDE, np.random.default_rng(0))
    for key, value in maps.items():
        np.testing.assert_allclose(degraded[key], value, atol=1e-6)


def test_the_degradation_is_deterministic_given_the_generator():
    maps = maps_with_offsets([30.0, -40.0])
    first, again, other = (noise.degrade(maps, noise.MapNoise(), RADIUS, STRIDE, np.random.default_rng(seed))
                           for seed in (3, 3, 4))
    for key in maps:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.allclose(first[keys.Map.LONG_OFFSETS], other[keys.Map.LONG_OFFSETS])


def test_offsets_fall_short_by_the_gain_and_spread_by_the_modelled_sigma():
    """Offsets (30, -40), |o| = 50 px = 6.25 R: the gain table gives 0.6 there (0.8 at 0, 0.4 at 12.5 R); the
    residual per component has sigma sqrt((a R)^2 + (b |o|)^2) = sqrt(4^2 + 5^2) = 6.40 with a = 0.5, b = 0.1; neighbouring
    cells correlate as smoothed white noise does, exp(-1 / (4 c^2)) = 0.895 for c = 1.5."""
    options = dataclasses.replace(IDENTITY, long=(0.5, 0.1, 1.5), long_gain=((0.0, 0.8), (12.5, 0.4)))
    target = np.array([30.0, -40.0], np.float32)
    degraded = noise.degrade(maps_with_offsets(target, size=200), options, RADIUS, STRIDE,
                             np.random.default_rng(0))[keys.Map.LONG_OFFSETS]
    along = (degraded @ target) / 50.0 ** 2
    assert np.mean(along) == pytest.approx(0.6, abs=0.01)
    residual = degraded - 0.6 * target
    assert np.std(residual) == pytest.approx(math.hypot(4.0, 5.0), rel=0.03)
    neighbours = np.corrcoef(residual[:, :-1].ravel(), residual[:, 1:].ravel())[0, 1]
    assert neighbours == pytest.approx(math.exp(-1.0 / 9.0), abs=0.02)


def test_the_severity_moves_the_maps_between_the_targets_and_the_calibrated_network():
    """Severity 0 gives the targets back whatever the noise model; severity 0.5 halves the gain's shortfall
    (1 - 0.5 (1 - 0.6) = 0.8 at 6.25 R) and the residual's sigma (0.5 x 6.40 = 3.20 px)."""
    maps = maps_with_offsets([30.0, -40.0])
    untouched = noise.degrade(maps, dataclasses.replace(noise.MapNoise(), severity=0.0), RADIUS, STRIDE,
                              np.random.default_rng(0))
    for key, value in maps.items():
        np.testing.assert_allclose(untouched[key], value, atol=1e-6, err_msg=key)
    options = dataclasses.replace(IDENTITY, long=(0.5, 0.1, 1.5), long_gain=((0.0, 0.8), (12.5, 0.4)), severity=0.5)
    target = np.array([30.0, -40.0], np.float32)
    degraded = noise.degrade(maps_with_offsets(target, size=200), options, RADIUS, STRIDE,
                             np.random.default_rng(0))[keys.Map.LONG_OFFSETS]
    assert np.mean((degraded @ target) / 50.0 ** 2) == pytest.approx(0.8, abs=0.01)
    assert np.std(degraded - 0.8 * target) == pytest.approx(0.5 * math.hypot(4.0, 5.0), rel=0.03)


def test_heatmaps_and_segmentation_are_soft_as_modelled():
    """The disk blurred by sigma_h R and scaled by peak_h (capped at 1); p_S = floor + (peak - floor) * mask
    where the blur does not reach (centre of the person, far outside it)."""
    options = dataclasses.replace(IDENTITY, heatmap_blur=0.5, heatmap_peak=0.9, segmentation_blur=1.0,
                                  segmentation_floor=0.01, segmentation_peak=0.95)
    degraded = noise.degrade(maps_with_offsets([0.0, 0.0]), options, RADIUS, STRIDE, np.random.default_rng(0))
    disk = degraded[keys.Map.HEATMAPS][..., 0]
    # R = 8 px = 1 cell: the disk is the centre and its 4 neighbours. Blurred by 0.5 cells (a sampled Gaussian
    # kernel of 5 taps, weights proportional to exp(-i^2 / (2 0.5^2)), as OpenCV's), its centre keeps
    # w0^2 + 4 w0 w1 of the disk.
    taps = np.exp(-np.arange(-2, 3) ** 2 / (2 * 0.5 ** 2))
    w0, w1 = taps[2] / taps.sum(), taps[1] / taps.sum()
    assert disk[20, 20] == pytest.approx(0.9 * (w0 ** 2 + 4 * w0 * w1), rel=1e-4)
    assert disk.max() <= 1.0 and disk[0, 0] == pytest.approx(0.0, abs=1e-6)
    person = degraded[keys.Map.SEGMENTATION][..., 0]
    assert person[20, 20] == pytest.approx(0.95, abs=1e-4) and person[0, 0] == pytest.approx(0.01, abs=1e-4)
    # The mask's first row (10): the kernel's taps 0..4 of 9 (sigma 1) fall inside it.
    taps = np.exp(-np.arange(-4, 5) ** 2 / 2.0)
    assert person[10, 20] == pytest.approx(0.01 + 0.94 * taps[4:].sum() / taps.sum(), rel=1e-4)


# The hand-made network of the calibration tests: maps of a stride-8 grid made, by construction, with known
# figures (noise.py's model), that the fit must give back. R = 12 px = 1.5 cells: R and the cell differ, so a
# unit confused between them shows.
HAND_RADIUS = 12.0
HAND_LENGTHS = (1.5, 3.0, 6.0, 12.0, 24.0)        # in R: one offset length per bin of calibration.LENGTH_BINS
HAND_NOISE = noise.MapNoise(
    heatmap_blur=0.6, heatmap_peak=0.85,            # disks blurred by 0.6 R = 7.2 px = 0.9 cells
    segmentation_blur=0.7, segmentation_floor=0.02, segmentation_peak=0.95,
    short=(0.3, 0.15, 0.8), mid=(0.8, 0.1, 1.3), long=(0.6, 0.05, 1.1),
    short_gain=tuple(zip(HAND_LENGTHS, (0.9, 0.85, 0.8, 0.7, 0.6))),
    mid_gain=tuple(zip(HAND_LENGTHS, (0.3, 0.5, 0.65, 0.7, 0.7))),
    long_gain=tuple(zip(HAND_LENGTHS, (0.55, 0.5, 0.5, 0.45, 0.3))))


def correlated_noise(shape, rho, rng):
    """Unit-variance Gaussian noise [h, w, ...] whose horizontally neighbouring cells correlate by exactly `rho`
    (an AR(1) chain along every row: n_j = rho n_{j-1} + sqrt(1 - rho^2) e_j), independent of noise.py."""
    white = rng.standard_normal(shape)
    field = np.empty(shape)
    field[:, 0] = white[:, 0]
    for column in range(1, shape[1]):
        field[:, column] = rho * field[:, column - 1] + math.sqrt(1.0 - rho ** 2) * white[:, column]
    return field


def hand_made_image(rng, rows=125, columns=100, channels=4):
    """One image of the hand-made network: (made, predicted, keypoints, labelled) as Statistics.add takes them.

    Two keypoint types at 20 places each (disks of R); a person mask of five 16 x 16-cell squares; offsets of
    every range in `channels` channels, of length HAND_LENGTHS[b] in the b-th band of 25 rows, random
    directions. The network's maps, by HAND_NOISE's model: heatmaps peak_h G_{0.9 cells} disks, p_S = floor +
    (peak - floor) G_{0.7} mask, offsets g(L) o + sqrt((a R)^2 + (b L)^2) n with n of neighbour correlation
    exp(-1 / (4 c^2)).
    """
    ys, xs = np.mgrid[:rows, :columns].astype(np.float64) * calibration.OUTPUT_STRIDE
    keypoints = np.stack([rng.uniform(0, columns * 8 - 8, (20, 2)), rng.uniform(0, rows * 8 - 8, (20, 2))], -1)
    labelled = np.ones((20, 2), bool)
    disks = np.zeros((rows, columns, 2))
    for person in keypoints:
        for k, (x, y) in enumerate(person):
            disks[..., k] = np.maximum(disks[..., k], np.hypot(xs - x, ys - y) <= HAND_RADIUS)
    mask = np.zeros((rows, columns, 1))
    for top, left in ((5, 5), (30, 60), (60, 20), (90, 70), (100, 5)):
        mask[top:top + 16, left:left + 16] = 1.0
    sigma = HAND_NOISE.heatmap_blur * HAND_RADIUS / calibration.OUTPUT_STRIDE          # 0.9 cells
    blurred_disks = np.stack([cv2.GaussianBlur(disks[..., k], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
                              for k in range(2)], -1)
    blurred_mask = cv2.GaussianBlur(mask[..., 0], (0, 0), HAND_NOISE.segmentation_blur,
                                    borderType=cv2.BORDER_REFLECT)[..., np.newaxis]
    floor, peak = HAND_NOISE.segmentation_floor, HAND_NOISE.segmentation_peak
    made = {keys.Map.HEATMAPS: disks, keys.Map.HEATMAP_WEIGHTS: np.ones_like(disks),
            keys.Map.SEGMENTATION: mask, keys.Map.SEGMENTATION_WEIGHTS: np.ones_like(mask)}
    predicted = {keys.Map.HEATMAPS: HAND_NOISE.heatmap_peak * blurred_disks,
                 keys.Map.SEGMENTATION: floor + (peak - floor) * blurred_mask}
    band = np.repeat(np.arange(len(HAND_LENGTHS)), rows // len(HAND_LENGTHS))[:, np.newaxis, np.newaxis]
    lengths = np.broadcast_to(np.asarray(HAND_LENGTHS)[band] * HAND_RADIUS, (rows, columns, channels))  # pixels
    for name, key in noise.RANGES.items():
        a, b, c = getattr(HAND_NOISE, name)
        gains = np.asarray([gain for _, gain in getattr(HAND_NOISE, f"{name}_gain")])[band]
        angle = rng.uniform(0, 2 * np.pi, (rows, columns, channels))
        target = lengths[..., np.newaxis] * np.stack([np.cos(angle), np.sin(angle)], -1)
        spread = np.hypot(a * HAND_RADIUS, b * lengths)[..., np.newaxis]
        residual = correlated_noise(target.shape, math.exp(-1.0 / (4.0 * c * c)), rng)
        made[key] = target
        made[calibration.WEIGHTS[key]] = np.ones((rows, columns, channels))
        predicted[key] = gains[..., np.newaxis] * target + spread * residual
    return made, predicted, keypoints, labelled


def test_the_calibration_fits_back_the_figures_a_hand_made_network_was_made_with():
    """Two hand-made images (`hand_made_image`, 10000 offsets per range and length): the fit gives back
    HAND_NOISE. Heatmap blur and peak, and the segmentation's blur, floor and peak, are exact (the network's
    curves are the blurred targets' for a sigma on the fit's grid); each offset gain within 0.03 (3 times the standard
    error of the median, worst for mid-range offsets of 1.5 R = 18 px, is 1.25 sigma / (L sqrt(n)) = 1.25 x 9.8 /
    (18 x 100) = 0.007, with sigma = sqrt((0.8 x 12)^2 + (0.1 x 18)^2)); a, b and c within 10 % (a in units of R,
    b a ratio; b is rounded to 0.001). Gain-table lengths come back in units of R."""
    rng = np.random.default_rng(7)
    statistics = calibration.Statistics(HAND_RADIUS)
    for _ in range(2):
        made, predicted, keypoints, labelled = hand_made_image(rng)
        statistics.add(made, made, predicted, keypoints, labelled)
    fitted = statistics.fit(HAND_NOISE.offset_extent)
    assert fitted.heatmap_blur == pytest.approx(0.6, abs=1e-3)          # 0.9 cells x 8 px / 12 px
    assert fitted.heatmap_peak == pytest.approx(0.85, abs=1e-3)
    assert fitted.segmentation_blur == pytest.approx(0.7, abs=1e-6)
    assert fitted.segmentation_floor == pytest.approx(0.02, abs=1e-3)
    assert fitted.segmentation_peak == pytest.approx(0.95, abs=1e-3)
    for name in noise.RANGES:
        gains = getattr(fitted, f"{name}_gain")
        assert [length for length, _ in gains] == pytest.approx(HAND_LENGTHS, abs=0.05), name
        assert [gain for _, gain in gains] == pytest.approx(
            [gain for _, gain in getattr(HAND_NOISE, f"{name}_gain")], abs=0.03), name
        assert getattr(fitted, name) == pytest.approx(getattr(HAND_NOISE, name), rel=0.1), name


def test_the_calibration_measures_back_the_noise_it_is_given():
    """Targets of the real COCO train sample degraded by a known MapNoise, measured like a network's maps:
    the gains, the residual sigmas and the heatmap blur come back."""
    given = dataclasses.replace(noise.MapNoise(), short_gain=((0.0, 0.9),), mid_gain=((0.0, 0.7),),
                                long_gain=((0.0, 0.5),), short=(0.2, 0.0, 0.8), mid=(0.6, 0.0, 1.3),
                                long=(0.7, 0.0, 1.3))
    statistics = calibration.Statistics(RADIUS)
    dataset = coco.load_dataset(str(sample_json_path(layout.TRAIN)), coco_problems.ProblemCounter())
    records = coco_records.iter_image_records(dataset, str(sample_images_dir(layout.TRAIN)),
                                              coco_problems.ProblemCounter())
    for index, record in zip(range(8), records):
        _, made, wide, keypoints, labelled = calibration.image_targets(record, COCO17, 401, RADIUS, given.offset_extent)
        degraded = noise.degrade(calibration.raw_target_maps(made, wide), given, RADIUS, STRIDE,
                                 np.random.default_rng(index))
        statistics.add(made, wide, degraded, keypoints, labelled)
    fitted = statistics.fit(given.offset_extent)
    for name in noise.RANGES:
        expected_gain = getattr(given, f"{name}_gain")[0][1]
        for _, gain in getattr(fitted, f"{name}_gain"):
            assert gain == pytest.approx(expected_gain, abs=0.05), name
        assert getattr(fitted, name)[0] == pytest.approx(getattr(given, name)[0], rel=0.15), name
    assert fitted.heatmap_blur == pytest.approx(given.heatmap_blur, abs=0.15)


def train_records(count):
    dataset = coco.load_dataset(str(sample_json_path(layout.TRAIN)), coco_problems.ProblemCounter())
    return list(zip(range(count), coco_records.iter_image_records(dataset, str(sample_images_dir(layout.TRAIN)),
                                                           coco_problems.ProblemCounter())))


def test_the_realistic_noise_of_an_image_depends_on_the_seed_and_the_image_only():
    """The realistic oracle draws an image's noise from (noise_seed, image id) (oracle.oracle_maps): image A's
    maps are the same alone, after B and C, and last of C, B, A; they change with the seed; and a twin of A
    (the same pixels and persons under another id) gets other noise with the same seed."""
    a, b, c = (record for _, record in train_records(3))
    twin = dataclasses.replace(a, image_id=a.image_id + 1_000_000)

    def maps(record, seed):
        return calibration.oracle_maps(record, COCO17, 129, RADIUS, seed)

    alone = maps(a, 0)
    forward = [maps(record, 0) for record in (a, b, c)]
    backward = [maps(record, 0) for record in (c, b, a)]
    for key in alone:
        np.testing.assert_array_equal(forward[0][key], alone[key], err_msg=key)
        np.testing.assert_array_equal(backward[2][key], alone[key], err_msg=key)
        np.testing.assert_array_equal(forward[1][key], backward[1][key], err_msg=key)
    # The offsets' noise has a floor of a R = 0.68 x 8 = 5.5 px per component: other noise moves them by pixels.
    offsets = keys.Map.LONG_OFFSETS
    assert np.abs(maps(a, 1)[offsets] - alone[offsets]).mean() > 2.0, "the seed does not change the noise"
    assert np.abs(maps(twin, 0)[offsets] - alone[offsets]).mean() > 2.0, "two images share their noise"


@pytest.mark.slow
def test_calibrate_oracle_script_prints_a_usable_noise_model(tmp_path):
    data = tmp_path / "val"
    synthetic.generate_dataset(str(data), 6, seed=1, min_side=200, max_side=256)
    model_dir, _, _ = exported_model()
    # Frames of 4 x MAX_SIDE: enough cells of every offset range to fit.
    _, summary = run_script("calibrate_oracle.py", "--model_dir", model_dir, "--max_side", str(4 * MAX_SIDE),
                            "--annotations", str(data / coco_format.ANNOTATIONS_FILE),
                            "--images", str(data / coco_format.IMAGES_DIR))
    with open(data / coco_format.ANNOTATIONS_FILE) as f:
        with_people = {a["image_id"] for a in json.load(f)["annotations"]}
    assert summary["images"] == len(with_people) > 0
    fitted = noise.MapNoise(**summary["fitted"])
    assert fitted.offset_extent == noise.MapNoise().offset_extent
    assert set(summary["measured"]["offsets_by_length"]) == set(noise.RANGES)


@pytest.mark.slow
def test_realistic_oracle_on_the_coco_val_sample():
    """docs/decoding.md §6: the COCO-scale realistic oracle (gin/realistic_oracle_coco.gin: 1401 px, output stride 8,
    severity 0.75; decode stride 4, hybrid masks; seed 0) gives keypoint AP 0.834 and segmentation AP 0.461 on the
    val sample (its 4 images; the severity was fitted on the train sample)."""
    folder = sample_json_path(layout.VALIDATION).parent
    _, summary = run_script("oracle_eval.py", "--gin_file", str(REPO / "gin" / "realistic_oracle_coco.gin"),
                            "--annotations", str(folder / "person_keypoints.json"), "--images", str(folder / "images"),
                            "--map_noise", "realistic", "--noise_seed", "0")
    assert summary["keypoints_AP"] == pytest.approx(0.834, abs=0.005)
    assert summary["segm_AP"] == pytest.approx(0.461, abs=0.005)


def test_the_part_parsers_oracle_refuses_map_noise():
    """The noise model is calibrated for PersonLab's maps only (docs/decoding.md)."""
    with pytest.raises(ValueError, match="calibrated for PersonLab only"):
        PartsTask().oracle_detections(None, noise_seed=0)


@pytest.mark.slow
def test_calibrating_the_realistic_oracle_measures_back_its_noise_model(tmp_path):
    """`--measure oracle` measures the oracle's own degraded maps: the offset gains it finds are MapNoise's
    (docs/decoding.md, the calibration table's oracle column)."""
    data = tmp_path / "val"
    synthetic.generate_dataset(str(data), 6, seed=1, min_side=200, max_side=256)
    model_dir, _, _ = exported_model()
    _, summary = run_script("calibrate_oracle.py", "--model_dir", model_dir, "--max_side", str(4 * MAX_SIDE),
                            "--annotations", str(data / coco_format.ANNOTATIONS_FILE),
                            "--images", str(data / coco_format.IMAGES_DIR), "--measure", "oracle")
    assert summary["measure"] == "oracle"
    given = noise.MapNoise()
    for name, rows in summary["measured"]["offsets_by_length"].items():
        for row in rows:
            expected = float(noise.offset_gain(np.array(row["length"]), getattr(given, f"{name}_gain")))
            # The standard error of a median of n ratios of spread sigma / length is about 1.25 sigma / (length
            # sqrt(n)); allow four of them.
            error = 1.25 * row["sigma"] / (row["length"] * math.sqrt(row["cells"]))
            assert row["gain"] == pytest.approx(expected, abs=4 * error + 0.03), (name, row)
