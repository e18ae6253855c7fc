"""Calibration of the realistic oracle: a trained PersonLab network's maps measured against the targets
(scripts/calibrate_oracle.py; noise.py; docs/decoding.md).

Every image is put on the frame the exported model sees (larger side max_side, output stride 8); the
network's raw maps (its refinement switched off: Eq. 2 and Eq. 5 have no weights) are compared with the
training targets made on the same grid (targets.py):
- heatmaps: the mean probability p_k at cells by their distance d to the nearest labelled keypoint k, in
  units of the disk radius R (the disk's sharpness), and far from every keypoint;
- segmentation: the mean p_S by the cell's signed distance to the person masks' edge (cells, + inside);
- short-, mid- and long-range offsets, by the target offset's length in units of R: the gain (median of the
  network's offset along the target over the target's length) and the robust standard deviation per component
  of the residual (network minus gain times target, in units of R), and the correlation of neighbouring cells'
  residuals. Short- and
  mid-range offsets are measured on disks widened to offset_extent R (the network extrapolates them).
`Statistics.fit` turns the measurements into noise.MapNoise (least squares where the model is parametric).
"""

import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from personlab_tf import keys
from personlab_tf.task import Task
from personlab_tf.data import coco_problems, coco_records, decoder
from personlab_tf.inference.oracle import frame_grid
from personlab_tf.skeleton import Skeleton
from personlab_tf.tasks.personlab import noise as noise_lib, oracle, targets

Maps = Dict[str, np.ndarray]   # [h, w, ...] numpy maps by keys.Map name

OUTPUT_STRIDE = 8
HEATMAP_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)          # d / R
EDGE_BINS = tuple(range(-4, 5))                                       # signed distance to the mask edge, cells
LENGTH_BINS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)              # offset length / R


def raw_task(task: Task) -> Task:
    """The task with its refinement switched off: the network's raw offsets."""
    return task.replace(network=dataclasses.replace(task.options.network, refine_mid_steps=0,
                                                    refine_long_steps=(0, 0)))


def oracle_maps(record: coco_records.ImageRecord, skeleton: Skeleton, max_side: int, radius: float,
                noise_seed: int) -> Dict[str, np.ndarray]:
    """The realistic oracle's maps before refinement (oracle.oracle_maps, MapNoise defaults), [h, w, ...] numpy
    on the same stride-8 frame as `image_targets`: what `--measure oracle` of scripts/calibrate_oracle.py
    measures in place of the network's (`skeleton`: the record's keypoint set)."""
    maps, _ = oracle.oracle_maps(decoder.decode_record(record, skeleton.num_keypoints), skeleton, max_side,
                                 OUTPUT_STRIDE, radius, 0, (0, 0),
                                 noise=noise_lib.MapNoise(), noise_seed=noise_seed)
    return {key: value[0].numpy() for key, value in maps.items()}


def keypoint_distances(keypoints: np.ndarray, labelled: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """[h, w, K] distance (pixels) of every cell to the nearest labelled keypoint of each type (inf if none)."""
    ys, xs = np.mgrid[:rows, :columns].astype(np.float32) * OUTPUT_STRIDE
    distances = np.full((rows, columns, keypoints.shape[1]), np.inf, np.float32)
    for person, flags_ in zip(keypoints, labelled):
        for k in np.flatnonzero(flags_):
            distances[..., k] = np.minimum(distances[..., k], np.hypot(xs - person[k, 0], ys - person[k, 1]))
    return distances


def signed_edge_distance(mask: np.ndarray) -> np.ndarray:
    """[h, w] signed distance (cells) of every cell to the edge of a binary mask: > 0 inside, <= 0 outside."""
    mask = mask.astype(np.uint8)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 3)
    return np.where(mask > 0, inside, -outside + 1.0)


# The weights of each range's offsets (the cells where the target is defined).
WEIGHTS = {keys.Map.SHORT_OFFSETS: keys.Map.SHORT_WEIGHTS, keys.Map.MID_OFFSETS: keys.Map.MID_WEIGHTS,
           keys.Map.LONG_OFFSETS: keys.Map.LONG_WEIGHTS}
BLURS = tuple(np.round(np.arange(0.0, 2.51, 0.1), 2))                 # candidate sigmas of the fit, cells
SUBSAMPLE = 2                     # offsets: every SUBSAMPLE-th channel of a cell is kept (memory)
MIN_CELLS = 200                   # offset length bins with fewer cells are not reported


class Statistics:
    """The measurements over the images: binned sums for the maps (and of the targets blurred by each candidate
    sigma: the fit compares the network's curves with those of blurred targets on the same cells), and per range
    the target offsets with the network's on the supervised cells (subsampled) for the offset fit."""

    def __init__(self, radius: float):
        self.radius = radius
        self.heatmap = np.zeros((len(HEATMAP_BINS), 2))                  # per d/R bin: sum of p, count
        self.heatmap_blurred = np.zeros((len(BLURS), len(HEATMAP_BINS)))  # sum of the blurred disks
        self.segmentation = np.zeros((len(EDGE_BINS), 2))
        self.segmentation_blurred = np.zeros((len(BLURS), len(EDGE_BINS)))
        self.offsets = {name: [] for name in noise_lib.RANGES}     # [n, 4]: target (x, y), network (x, y)
        self.neighbours = {name: [] for name in noise_lib.RANGES}  # [n, 2, 4]: horizontal neighbours' rows

    def add(self, made: Maps, wide: Maps, predicted: Maps, frame_keypoints: np.ndarray, labelled: np.ndarray) -> None:
        """Adds one image: its targets (short and mid also on the wider disks `wide`) and the network's maps on
        the same grid, its labelled keypoints."""
        rows, columns = made[keys.Map.HEATMAPS].shape[:2]
        distances = keypoint_distances(frame_keypoints, labelled, rows, columns) / self.radius
        known = made[keys.Map.HEATMAP_WEIGHTS] > 0
        bins = np.digitize(distances, HEATMAP_BINS) - 1
        selections = [known & (bins == index) for index in range(len(HEATMAP_BINS))]
        for index, chosen in enumerate(selections):
            self.heatmap[index] += (predicted[keys.Map.HEATMAPS][chosen].sum(), chosen.sum())
        mask = made[keys.Map.SEGMENTATION]
        edge = np.clip(np.round(signed_edge_distance(mask[..., 0] > 0)), EDGE_BINS[0], EDGE_BINS[-1]).astype(int)
        weight = made[keys.Map.SEGMENTATION_WEIGHTS][..., 0] > 0
        edges = [weight & (edge == value) for value in EDGE_BINS]
        for index, chosen in enumerate(edges):
            self.segmentation[index] += (predicted[keys.Map.SEGMENTATION][..., 0][chosen].sum(), chosen.sum())
        for row, sigma in enumerate(BLURS):
            disks, person = noise_lib.blur(made[keys.Map.HEATMAPS], sigma), noise_lib.blur(mask, sigma)[..., 0]
            self.heatmap_blurred[row] += [disks[chosen].sum() for chosen in selections]
            self.segmentation_blurred[row] += [person[chosen].sum() for chosen in edges]
        for name, key in noise_lib.RANGES.items():
            source = made if key == keys.Map.LONG_OFFSETS else wide
            valid = source[WEIGHTS[key]] > 0
            valid &= np.arange(valid.shape[2]) % SUBSAMPLE == 0
            both = np.concatenate([source[key], predicted[key]], -1)           # [h, w, C, 4]
            self.offsets[name].append(both[valid])
            pair = valid[:, 1:] & valid[:, :-1]
            self.neighbours[name].append(np.stack([both[:, :-1][pair], both[:, 1:][pair]], 1))

    def tables(self) -> Dict[str, Any]:
        """The measured curves: heatmap p by d/R, p_S by edge distance, per range and offset length (in R) the
        gain (median of the network's offset along the target over its length) and the residual's robust sigma
        per component (in R), and the correlation of neighbouring cells' residuals."""
        def mean(rows):
            return [round(float(total / count), 4) if count else None for total, count in rows]

        offsets, correlation = {}, {}
        for name in noise_lib.RANGES:
            both = np.concatenate(self.offsets[name]) / self.radius
            lengths = np.linalg.norm(both[:, :2], axis=-1)
            bins = np.digitize(lengths, LENGTH_BINS) - 1
            rows = []
            for index in range(len(LENGTH_BINS)):
                chosen = (bins == index) & (lengths > 0)
                if chosen.sum() < MIN_CELLS:
                    continue
                gain, sigma = gain_and_residual(both[chosen])
                rows.append((round(float(lengths[chosen].mean()), 2), round(gain, 3), round(sigma, 3),
                             int(chosen.sum())))
            offsets[name] = rows
            if not rows:
                correlation[name] = None
                continue
            pairs = np.concatenate(self.neighbours[name]) / self.radius
            left, right = (residuals(pairs[:, side], rows) for side in (0, 1))
            correlation[name] = round(float((left * right).sum() / np.sqrt(np.square(left).sum()
                                                                              * np.square(right).sum())), 3)
        return {"heatmap_by_distance": dict(zip([str(b) for b in HEATMAP_BINS], mean(self.heatmap))),
                "segmentation_by_edge_distance": dict(zip([str(b) for b in EDGE_BINS], mean(self.segmentation))),
                "offsets_by_length": {name: [dict(zip(("length", "gain", "sigma", "cells"), row)) for row in rows]
                                      for name, rows in offsets.items()},
                "neighbour_residual_correlation": correlation}

    def fit(self, offset_extent: float, tables: Optional[Dict[str, Any]] = None) -> noise_lib.MapNoise:
        """The MapNoise closest (least squares over the bins, weighted by their counts) to the curves;
        `tables`: those of `tables()` when the caller has them already.

        Raises:
          ValueError: a range has no length bin with MIN_CELLS cells (too little data).
        """
        heatmap_blur, _, heatmap_peak = best_blur(self.heatmap[:-1], self.heatmap_blurred[:, :-1], False)
        edge_blur, floor, peak = best_blur(self.segmentation, self.segmentation_blurred, True)
        tables = tables or self.tables()
        ranges = {}
        for name, rows in tables["offsets_by_length"].items():
            if not rows:
                raise ValueError(f"too few {name}-range offsets to fit (no length bin has {MIN_CELLS} cells): "
                                 "measure more or larger images (--max_images, --max_side)")
            lengths, gains, sigmas, counts = (np.array([row[k] for row in rows], np.float64)
                                              for k in ("length", "gain", "sigma", "cells"))
            # In units of R, sigma^2 = a^2 + (b |o|)^2: least squares of the relative error of sigma^2, linear in
            # a^2 and b^2, each bin weighted by the root of its count; with one bin the error is all floor.
            weights = np.sqrt(counts) / np.square(sigmas)
            if len(lengths) > 1:
                design = np.stack([np.ones_like(lengths), np.square(lengths)], -1) * weights[:, np.newaxis]
                (floor2, slope2), *_ = np.linalg.lstsq(design, np.square(sigmas) * weights, rcond=None)
            else:
                floor2, slope2 = float(np.square(sigmas[0])), 0.0
            rho = min(max(tables["neighbour_residual_correlation"][name], 0.05), 0.99)
            # Smoothed white noise has correlation exp(-1 / (4 c^2)) between neighbouring cells.
            ranges[name] = (round(math.sqrt(max(floor2, 0.0)), 3), round(math.sqrt(max(slope2, 0.0)), 3),
                            round(math.sqrt(-1.0 / (4.0 * math.log(rho))), 2))
            ranges[f"{name}_gain"] = tuple((float(length), float(gain)) for length, gain in zip(lengths, gains))
        return noise_lib.MapNoise(heatmap_blur=round(heatmap_blur * OUTPUT_STRIDE / self.radius, 3),
                                  heatmap_peak=round(heatmap_peak, 3), segmentation_blur=edge_blur,
                                  segmentation_floor=round(floor, 3), segmentation_peak=round(peak, 3),
                                  offset_extent=offset_extent, **ranges)


def gain_and_residual(both: np.ndarray) -> Tuple[float, float]:
    """(gain, sigma) of [n, 4] rows (target x, y, network x, y): the median of the network's offset along the
    target over its length, and the robust per-component sigma (median absolute deviation / 0.6745) of the
    network's offset minus gain times the target."""
    target, network = both[:, :2], both[:, 2:]
    lengths = np.linalg.norm(target, axis=-1)
    gain = float(np.median((target * network).sum(-1) / np.square(lengths)))
    return gain, float(np.median(np.abs(network - gain * target)) / 0.6745)


def residuals(both: np.ndarray, rows: List[tuple]) -> np.ndarray:
    """The network's offsets minus the target times the gain of its length bin (the rows of `tables`), [n, 2]."""
    target, network = both[:, :2], both[:, 2:]
    lengths = np.linalg.norm(target, axis=-1, keepdims=True)
    gains = np.interp(lengths, [row[0] for row in rows], [row[1] for row in rows])
    return network - gains * target


def best_blur(measured: np.ndarray, blurred: np.ndarray, with_floor: bool) -> Tuple[float, float, float]:
    """(sigma, floor, peak) of the blurred targets closest to a measured curve.

    Args:
      measured: [bins, 2] sums of the network's values and counts; blurred: [sigmas, bins] sums of the
        targets blurred by each of BLURS on the same cells.
      with_floor: fit floor + (peak - floor) * blurred (else peak * blurred).
    """
    counts = measured[:, 1]
    used = counts > 0
    target = measured[used, 0] / counts[used]
    root = np.sqrt(counts[used])
    results = []
    for row, sigma in enumerate(BLURS):
        value = blurred[row, used] / counts[used]
        design = np.stack([value, np.ones_like(value)], -1) if with_floor else value[:, np.newaxis]
        solution, *_ = np.linalg.lstsq(design * root[:, np.newaxis], target * root, rcond=None)
        residual = float(np.sum(counts[used] * np.square(design @ solution - target)))
        slope, floor = (solution[0], solution[1]) if with_floor else (solution[0], 0.0)
        results.append((residual, float(sigma), float(floor), float(floor + slope)))
    _, sigma, floor, peak = min(results)
    return sigma, floor, peak




def image_targets(record: coco_records.ImageRecord, skeleton: Skeleton, max_side: int, radius: float,
                  offset_extent: float) -> Tuple[dict, Maps, Maps, np.ndarray, np.ndarray]:
    """The targets of an image (keypoints of `skeleton`) on its stride-8 inference frame, as the calibration
    compares them.

    Returns:
      (sample, made, wide, keypoints, labelled): the decoded sample; dicts of numpy [h, w, ...] targets with
      disks of R and of offset_extent R; the frame's keypoints [N, K, 2] and which are labelled [N, K] (non-crowd
      persons).
    """
    sample = decoder.decode_record(record, skeleton.num_keypoints)
    frame = frame_grid(sample, max_side, OUTPUT_STRIDE, OUTPUT_STRIDE)
    made, wide = ({key: value.numpy() for key, value in frame.crop(targets.make_targets(
        frame.sample, frame.side, skeleton.directed_edges, OUTPUT_STRIDE, disks)).items()}
                  for disks in (radius, offset_extent * radius))
    framed = frame.sample[keys.Sample.KEYPOINTS].numpy()
    labelled = (framed[..., 2] > 0) & ~record.is_crowd[:, np.newaxis]
    return sample, made, wide, framed[..., :2], labelled


def raw_target_maps(made: Maps, wide: Maps) -> Maps:
    """The maps a perfect network would predict before refinement: heatmaps, segmentation and long-range
    offsets of `made`, short- and mid-range offsets of the wider disks `wide` (noise.degrade's input)."""
    maps = {key: made[key] for key in (keys.Map.HEATMAPS, keys.Map.SEGMENTATION, keys.Map.LONG_OFFSETS)}
    maps.update({key: wide[key] for key in (keys.Map.SHORT_OFFSETS, keys.Map.MID_OFFSETS)})
    return maps


def measure(task: Task, annotations: str, images: str, max_side: int, detector: Optional[Any] = None,
            max_images: Optional[int] = None, offset_extent: float = noise_lib.MapNoise.offset_extent,
            noise_seed: int = 0) -> Tuple[Statistics, int]:
    """(the Statistics of the images with people of a COCO JSON, how many were measured): the maps of
    `detector` (the task's detector over its network without refinement, `raw_task`; its `frame_maps` at
    stride OUTPUT_STRIDE in a frame of `max_side`) or, when None, the realistic oracle's (`oracle_maps`,
    degraded with `noise_seed`), against the targets made on the same frame with the task's radius, short- and
    mid-range offsets measured out to `offset_extent` R; the first `max_images` images with people only.
    Unusable images are skipped with a warning (data/coco.py)."""
    radius = task.options.data.disk_radius
    statistics = Statistics(radius)
    problems = coco_problems.ProblemCounter()
    count = 0
    for image in task.evaluation_images(annotations, images, None, problems):
        if image.record.keypoints.shape[0] == 0:
            continue
        if max_images is not None and count >= max_images:
            break
        sample, made, wide, keypoints, labelled = image_targets(image.record, task.skeleton, max_side, radius,
                                                                offset_extent)
        if detector is not None:
            maps, _ = detector.frame_maps(sample[keys.Sample.IMAGE], max_side)
            predicted = {key: value[0].numpy() for key, value in maps.items()}
        else:
            predicted = oracle_maps(image.record, task.skeleton, max_side, radius, noise_seed)
        statistics.add(made, wide, predicted, keypoints, labelled)
        count += 1
    return statistics, count
