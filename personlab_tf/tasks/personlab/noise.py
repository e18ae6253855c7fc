"""Realistic oracle maps: ground-truth maps degraded the way a trained PersonLab network errs (docs/decoding.md).

The perfect-map oracle (oracle.py) decodes targets: hard 0/1 disks and masks, exact offsets defined only where
they are supervised. A trained network predicts soft maps, offsets that fall short of their target the more so
the longer they are, with spatially smooth errors, and offsets everywhere (it extrapolates short- and mid-range
offsets beyond the disks). Some decoding choices that win on perfect maps lose on real ones (docs/decoding.md,
the Eq. 5 variants). `MapNoise` degrades the raw target maps before the model's refinement (Eq. 2, Eq. 5):

    heatmaps      p'_k = min(1, (1 + s (peak_h - 1)) G_{s sigma_h R} * disks_k)          (disks blurred, scaled)
    segmentation  p'_S = clip(s floor_s + (1 + s (peak_s - 1) - s floor_s) G_{s sigma_s} * mask, 0, 1)
    offsets       o'(x) = (1 - s (1 - g_r(|o| / R))) o(x) + s n_r(x) sqrt((a_r R)^2 + (b_r |o(x)|)^2)
                  for r in short, mid, long

with s the severity (1: the calibrated network; 0: the targets; docs/decoding.md fits it at COCO scale),
G_sigma a Gaussian blur, and n_r a field of unit-variance Gaussian noise per channel and component smoothed by
G_{c_r} cells (spatially smooth errors, as a network's are). Every parameter is in units that carry over from
the network it was measured on to another scale: lengths in units of the disk radius R (the heatmap's blur,
the offsets' error floor a_r, the lengths of the gain tables g_r), ratios (peaks, floor, gains, b_r), and
cells of the output grid (the segmentation's blur sigma_s and the noise correlation c_r: the network's
resolution, whatever the frame). The maps it degrades are made by oracle.py as a network sees them rather
than as the loss supervises them: short- and mid-range offsets out to `offset_extent` R from each keypoint
(the targets' disks widened, where the network's are measured), long-range offsets out to the same distance
from the person masks (to the nearest person's keypoints), and the segmentation as the fraction of each
cell's pixels a person covers. The parameters come from `scripts/calibrate_oracle.py`, which measures a
trained network's maps against the targets; the defaults are its figures for the demo's network on its
training images (docs/decoding.md). Everything is deterministic given the seed.
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
      short_gain, mid_gain, long_gain: g_r as ((length in units of R, gain), ...) by increasing length.
      severity: s of the module docstring, how far the maps are from the targets (1: as calibrated).
    """

    heatmap_blur: float = 0.533
    heatmap_peak: float = 1.064
    segmentation_blur: float = 0.7
    segmentation_floor: float = 0.008
    segmentation_peak: float = 1.0
    offset_extent: float = 2.0
    short: Tuple[float, float, float] = (0.161, 0.178, 0.8)
    mid: Tuple[float, float, float] = (0.747, 0.163, 1.27)
    long: Tuple[float, float, float] = (0.694, 0.122, 1.33)
    short_gain: Tuple[Tuple[float, float], ...] = ((0.33, 0.942), (0.78, 0.909), (1.55, 0.747))
    mid_gain: Tuple[Tuple[float, float], ...] = ((0.33, 0.156), (0.77, 0.14), (1.52, 0.227),
                                                 (2.84, 0.647), (5.02, 0.724), (9.22, 0.622))
    long_gain: Tuple[Tuple[float, float], ...] = ((0.32, 0.579), (0.76, 0.477), (1.53, 0.484), (3.03, 0.526),
                                                  (5.85, 0.505), (11.05, 0.431), (20.43, 0.315), (34.17, 0.186))
    severity: float = 1.0


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
    """g_r(L): the fraction of its target an offset of length L (in units of R) reaches (module docstring),
    interpolated in the ((length, gain), ...) table."""
    return np.interp(lengths, [length for length, _ in gains], [gain for _, gain in gains]).astype(np.float32)


def degrade(maps: Dict[str, np.ndarray], noise: MapNoise, radius: float, stride: int,
            rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """The module docstring's degradation of raw (unrefined) target maps of one image.

    Args:
      maps: keys.Map HEATMAPS [h, w, K], SEGMENTATION [h, w, 1] in {0, 1}, SHORT/MID/LONG_OFFSETS
        [h, w, C, 2] in pixels (short and mid made with disks of noise.offset_extent R), on a grid of stride
        `stride`.
      noise: MapNoise; radius: the disk radius R (pixels) of the targets; rng: the random generator (its state
        decides the noise).

    Returns:
      the maps, degraded, float32.
    """
    out = dict(maps)
    severity = noise.severity
    disks = blur(maps[keys.Map.HEATMAPS], severity * noise.heatmap_blur * radius / stride)
    out[keys.Map.HEATMAPS] = np.minimum(1.0, (1.0 + severity * (noise.heatmap_peak - 1.0)) * disks)
    mask = blur(maps[keys.Map.SEGMENTATION], severity * noise.segmentation_blur)
    floor, peak = severity * noise.segmentation_floor, 1.0 + severity * (noise.segmentation_peak - 1.0)
    out[keys.Map.SEGMENTATION] = np.clip(floor + (peak - floor) * mask, 0.0, 1.0)
    for name, key in RANGES.items():
        offsets = maps[key]
        error_floor, slope, correlation = getattr(noise, name)
        lengths = np.linalg.norm(offsets, axis=-1, keepdims=True)
        spread = severity * np.hypot(error_floor * radius, slope * lengths)
        gain = 1.0 - severity * (1.0 - offset_gain(lengths / radius, getattr(noise, f"{name}_gain")))
        out[key] = gain * offsets + smooth_noise(offsets.shape, correlation, rng) * spread
    return {key: value.astype(np.float32) for key, value in out.items()}
