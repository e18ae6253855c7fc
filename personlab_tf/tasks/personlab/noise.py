"""Realistic oracle maps: ground-truth maps degraded the way a trained PersonLab network errs (docs/decoding.md).

The perfect-map oracle (oracle.py) decodes targets: hard 0/1 disks and masks, exact offsets defined only where
they are supervised. A trained network predicts soft maps, offsets that fall short of their target the more so
the longer they are, with spatially smooth errors, and offsets everywhere (it extrapolates short- and mid-range
offsets beyond the disks). Some decoding choices that win on perfect maps lose on real ones (docs/decoding.md,
the Eq. 5 variants). `MapNoise` degrades the raw target maps before the model's refinement (Eq. 2, Eq. 5):

    heatmaps      p'_k = min(1, peak_h * G_{sigma_h R} * disks_k)                       (disks blurred, scaled)
    segmentation  p'_S = clip(floor_s + (peak_s - floor_s) * G_{sigma_s} * mask, 0, 1)   (soft edges)
    offsets       o'(x) = g_r(|o|) o(x) + n_r(x) * sqrt((a_r R)^2 + (b_r |o(x)|)^2)    for r in short, mid, long

with G_sigma a Gaussian blur (sigma in cells of the map; the heatmap's in units of the disk radius R, a
network's disks being soft in proportion to their size), and n_r a field of unit-variance Gaussian noise per
channel and component smoothed by G_{c_r} cells (spatially smooth errors, as a network's are). The maps it
degrades are made by oracle.py as a network sees them rather than as the loss supervises them: short- and
mid-range offsets out to `offset_extent` R from each keypoint (the targets' disks widened, where the network's
are measured), long-range offsets out to the same distance from the person masks (to the nearest person's
keypoints), and the segmentation as the fraction of each cell's pixels a person covers. The parameters come from `scripts/calibrate_oracle.py`, which measures a trained
network's maps against the targets; the defaults are its figures for the demo's network (docs/decoding.md).
Everything is deterministic given the seed.
"""

import dataclasses
from typing import Dict, Tuple

import cv2
import gin
import numpy as np

from personlab_tf import keys

# The offset maps a range's noise applies to.
RANGES = {"short": keys.Map.SHORT_OFFSETS, "mid": keys.Map.MID_OFFSETS, "long": keys.Map.LONG_OFFSETS}


@gin.configurable
@dataclasses.dataclass(frozen=True)
class MapNoise:
    """How a trained network's maps differ from the targets (module docstring; docs/decoding.md).

    Attributes:
      heatmap_blur, heatmap_peak: sigma_h (in units of R) and peak_h of the heatmap disks.
      segmentation_blur, segmentation_floor, segmentation_peak: sigma_s (cells), floor_s and peak_s.
      offset_extent: the short- and mid-range offsets' disk radius, in units of R.
      short, mid, long: (a_r, b_r, c_r) of each range: the residual error per component has the standard
        deviation sqrt((a_r R)^2 + (b_r |o|)^2), smoothed over c_r cells.
      short_gain, mid_gain, long_gain: g_r as ((length in pixels, gain), ...) by increasing length.
    """

    heatmap_blur: float = 0.533
    heatmap_peak: float = 1.131
    segmentation_blur: float = 0.7
    segmentation_floor: float = 0.006
    segmentation_peak: float = 1.029
    offset_extent: float = 2.0
    short: Tuple[float, float, float] = (0.155, 0.176, 0.8)
    mid: Tuple[float, float, float] = (0.809, 0.13, 1.31)
    long: Tuple[float, float, float] = (0.682, 0.128, 1.29)
    short_gain: Tuple[Tuple[float, float], ...] = ((5.3, 0.934), (12.4, 0.879), (20.3, 0.72))
    mid_gain: Tuple[Tuple[float, float], ...] = ((5.3, 0.182), (12.4, 0.176), (23.6, 0.5), (42.8, 0.681), (78.9, 0.692))
    long_gain: Tuple[Tuple[float, float], ...] = ((5.1, 0.557), (12.1, 0.41), (24.5, 0.509), (47.8, 0.542),
                                                  (91.2, 0.493), (171.2, 0.387), (307.4, 0.263))


def blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of every channel of [h, w, ...] float32 maps, sigma in cells (borders reflected)."""
    if sigma <= 0:
        return values
    flat = values.reshape(values.shape[:2] + (-1,))
    blurred = np.stack([cv2.GaussianBlur(flat[..., c], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
                        for c in range(flat.shape[-1])], axis=-1)
    return blurred.reshape(values.shape)


def smooth_noise(shape: Tuple[int, ...], correlation: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise of `shape` [h, w, ...], smoothed over the grid by G_{correlation}."""
    field = blur(rng.standard_normal(shape).astype(np.float32), correlation)
    return field / max(float(field.std()), 1e-6)


def offset_gain(lengths: np.ndarray, gains: Tuple[Tuple[float, float], ...]) -> np.ndarray:
    """g_r(L): the fraction of its target an offset of length L reaches (module docstring), interpolated in the
    ((length, gain), ...) table."""
    return np.interp(lengths, [length for length, _ in gains], [gain for _, gain in gains]).astype(np.float32)


def degrade(maps: Dict[str, np.ndarray], noise: MapNoise, radius: float, stride: int,
            rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """The module docstring's degradation of raw (unrefined) target maps of one image.

    Args:
      maps: keys.Map HEATMAPS [h, w, K], SEGMENTATION [h, w, 1] in {0, 1}, SHORT/MID/LONG_OFFSETS
        [h, w, C, 2] in pixels (short and mid made with disks of noise.offset_extent R), on a grid of stride
        `stride`.
      noise: MapNoise; radius: the disk radius R (pixels); rng: the random generator (its state decides the
        noise).

    Returns:
      the maps, degraded, float32.
    """
    out = dict(maps)
    disks = blur(maps[keys.Map.HEATMAPS], noise.heatmap_blur * radius / stride)
    out[keys.Map.HEATMAPS] = np.minimum(1.0, noise.heatmap_peak * disks)
    mask = blur(maps[keys.Map.SEGMENTATION], noise.segmentation_blur)
    out[keys.Map.SEGMENTATION] = np.clip(
        noise.segmentation_floor + (noise.segmentation_peak - noise.segmentation_floor) * mask, 0.0, 1.0)
    for name, key in RANGES.items():
        offsets = maps[key]
        floor, slope, correlation = getattr(noise, name)
        lengths = np.linalg.norm(offsets, axis=-1, keepdims=True)
        spread = np.hypot(floor * radius, slope * lengths)
        gained = offset_gain(lengths, getattr(noise, f"{name}_gain")) * offsets
        out[key] = gained + smooth_noise(offsets.shape, correlation, rng) * spread
    return {key: value.astype(np.float32) for key, value in out.items()}
