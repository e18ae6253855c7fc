"""Following people from frame to frame: track ids for per-frame detections (docs/video.md).

Host-side and stateful, numpy only. `Tracker.update` takes the detections of one frame (keys.Detection:
KEYPOINTS [D, K, 2], KEYPOINT_SCORES [D, K], INSTANCE_SCORES [D], NUM_DETECTIONS [], optional MASKS
[D, H, W] bool) and returns a track id per used slot (-1: no track). Positions are (x, y) image pixels,
pixel centres at integer coordinates (docs/conventions.md).

Similarity of a live track t and a detection d (`TrackerOptions`):

    S(t, d) = w OKS(t, d) + (1 - w) IoU(t, d)      when the track and the frame both have masks,
    S(t, d) = OKS(t, d)                            otherwise,

with w = `oks_weight`, OKS the COCO object keypoint similarity between the track's last pose and the
detection's (`pose_oks`; the object's area s^2 is the track's, `track_areas`) and IoU the intersection over
union of the track's last mask and the detection's (`mask_iou`). With `velocity`, the track's last pose
(and mask) is first moved by its velocity times the frames since its last match.

Assignment: detections scoring below `min_score` are ignored (id -1). The others are assigned to live tracks
by the assignment of largest total similarity (scipy.optimize.linear_sum_assignment, Hungarian), in which
a pair with S < `min_similarity` is forbidden: its cost is that of leaving both unmatched (0), and a
forbidden pair the solver returns is dropped. Unlike a greedy matching (best pair first), it does not swap
two people when the best single pair is wrong (two people crossing).

Lifecycle:
- a matched track takes the detection's pose, scores and mask; its `missed` count returns to 0;
- an unmatched track survives, `missed` one higher, while `missed` <= `max_missed`, and can still be matched
  (keeping its id); it ends when it has missed `max_missed` + 1 consecutive frames;
- an unmatched detection starts a new track if its instance score reaches `birth_score`, else gets -1;
- ids count from 1 in order of birth and are never reused (not even after `reset`).
"""

import dataclasses
from typing import Dict, List, Optional

import gin
import numpy as np
from scipy.optimize import linear_sum_assignment

from personlab_tf import keys
from personlab_tf.constants import MIN_AREA
from personlab_tf.evaluation.results import detection_count
from personlab_tf.skeleton import Skeleton



@gin.configurable
@dataclasses.dataclass(frozen=True)
class TrackerOptions:
    """Settings of the tracker (module docstring). The defaults are the best measured on the synthetic clips
    with both the demo's network and perfect maps (docs/video.md, "Tracker options").

    Attributes:
      oks_weight: w of S = w OKS + (1 - w) IoU with masks; without masks S = OKS. 0.5: the network's clips
        track best at 0.25 and the perfect maps' at 0.75, each within 0.011 IDF1 of 0.5; OKS alone (1) or IoU
        alone (0) switch identities more often on both.
      min_similarity: pairs with S below it are never matched (0.1; 0.2 breaks tracks of fast walkers into
        new identities on both instruments; 0.05 gains 0.012 IDF1 on the network and loses 0.003 on perfect
        maps). In (0, 1].
      min_score: detections whose instance score is below it get no track (-1) and match none (0.2: the
        weaker ones are mostly duplicates and fragments, false positives to MOTA; 0.1 costs 0.02-0.04 MOTA).
      birth_score: an unmatched detection starts a track only if its instance score reaches it (0.3: weak
        detections continue tracks but do not open them; 0.015-0.023 MOTA above 0.2, 0.4 the same within
        0.003). At least min_score.
      max_missed: a track survives up to this many consecutive unmatched frames and ends at the next one
        (5: half a second at 10 frames per second; 2 to 10 measure alike, 0 loses identities through
        occlusions).
      min_keypoint_score: a keypoint counts in the OKS (and the keypoint box) when its score reaches it in
        both poses (0.1).
      box_area_scale: without masks, s^2 = this times the area of the box of the track's confident keypoints
        (1.0: the keypoint box of a standing person is about its segment's area, and PersonLab's lambda^2 of
        Eq. 3 and OKS-NMS is that box's area).
      mask_stride: IoU on masks subsampled every `mask_stride` pixels in x and y (pixels (f j, f i)); 2 is
        about 4 times faster than 1 and tracks the same (MOTA within 0.001 on the clips).
      velocity: predict each track's pose (and mask, shifted by whole pixels) at the frame by a constant
        velocity: the mean displacement per frame of its confident keypoints between its last two matches
        (True: without it, the clips' identity switches are 29 and 31 instead of 16 and 9, and IDF1 is 0.14-0.15
        lower).
    """

    oks_weight: float = 0.5
    min_similarity: float = 0.1
    min_score: float = 0.2
    birth_score: float = 0.3
    max_missed: int = 5
    min_keypoint_score: float = 0.1
    box_area_scale: float = 1.0
    mask_stride: int = 2
    velocity: bool = True

    def __post_init__(self):
        if not 0.0 <= self.oks_weight <= 1.0:
            raise ValueError(f"oks_weight must be in [0, 1], got {self.oks_weight}")
        if not 0.0 < self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in (0, 1], got {self.min_similarity}")
        if self.birth_score < self.min_score:
            raise ValueError(f"birth_score ({self.birth_score}) must be at least min_score ({self.min_score})")
        if self.max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {self.max_missed}")
        if self.box_area_scale <= 0:
            raise ValueError(f"box_area_scale must be > 0, got {self.box_area_scale}")
        if self.mask_stride < 1:
            raise ValueError(f"mask_stride must be >= 1, got {self.mask_stride}")


# ---------------------------------------------------------------------------------------------- similarity
def pose_oks(track_keypoints: np.ndarray, track_scores: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
             areas: np.ndarray, kappas: np.ndarray, min_keypoint_score: float) -> np.ndarray:
    """COCO's object keypoint similarity between T track poses and N detected poses.

        OKS(t, n) = sum_k c_tnk exp(-|x_tk - x_nk|^2 / (2 s_t^2 kappa_k^2)) / sum_k c_tnk,

    c_tnk = 1 when the keypoint's score reaches `min_keypoint_score` in both poses (else 0), kappa_k = 2 sigma_k
    (Skeleton.kappas, pycocotools' vars = kappa^2), s_t^2 = areas[t]; OKS = 0 when no keypoint is shared.

    Args:
      track_keypoints: [T, K, 2] (x, y) pixels; track_scores: [T, K].
      keypoints: [N, K, 2] (x, y) pixels; scores: [N, K].
      areas: [T] s^2 of each track, pixels^2 (> 0).
      kappas: [K].
      min_keypoint_score: the confidence threshold.

    Returns:
      [T, N] float64 in [0, 1].
    """
    track_keypoints = np.asarray(track_keypoints, np.float64)
    keypoints = np.asarray(keypoints, np.float64)
    distance2 = np.sum(np.square(track_keypoints[:, None] - keypoints[None]), axis=-1)  # [T, N, K]
    variance = 2.0 * np.asarray(areas, np.float64)[:, None, None] * np.square(np.asarray(kappas, np.float64))
    shared = ((np.asarray(track_scores)[:, None] >= min_keypoint_score)
              & (np.asarray(scores)[None] >= min_keypoint_score))  # [T, N, K]
    total = np.sum(np.where(shared, np.exp(-distance2 / variance), 0.0), axis=-1)
    count = np.sum(shared, axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def mask_iou(masks_a: np.ndarray, masks_b: np.ndarray, stride: int = 1) -> np.ndarray:
    """Pairwise intersection over union of boolean masks: |A_i & B_j| / |A_i | B_j| (0 when both are empty).

    Vectorised as one matrix product of the flattened masks (float32). With `stride` f > 1 the masks are
    first subsampled to the pixels (f j, f i), which divides the work by f^2 and estimates the IoU.

    Args:
      masks_a: [A, H, W] bool; masks_b: [B, H, W] bool.
      stride: f, the subsampling step (1: every pixel).

    Returns:
      [A, B] float64 in [0, 1].
    """
    masks_a, masks_b = np.asarray(masks_a, bool), np.asarray(masks_b, bool)
    if masks_a.shape[1:] != masks_b.shape[1:]:
        raise ValueError(f"masks of different sizes: {masks_a.shape[1:]} and {masks_b.shape[1:]}")
    pixels = len(range(0, masks_a.shape[1], stride)) * len(range(0, masks_a.shape[2], stride))
    a = masks_a[:, ::stride, ::stride].reshape(len(masks_a), pixels).astype(np.float32)
    b = masks_b[:, ::stride, ::stride].reshape(len(masks_b), pixels).astype(np.float32)
    intersection = (a @ b.T).astype(np.float64)
    union = a.sum(axis=1, dtype=np.float64)[:, None] + b.sum(axis=1, dtype=np.float64)[None] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1.0), 0.0)


def keypoint_box_areas(keypoints: np.ndarray, scores: np.ndarray, min_keypoint_score: float,
                       scale: float = 1.0) -> np.ndarray:
    """scale x the area of the box of each pose's confident keypoints (score >= min_keypoint_score), at least
    MIN_AREA (also with fewer than two confident keypoints).

    Args:
      keypoints: [N, K, 2] (x, y) pixels; scores: [N, K].

    Returns:
      [N] float64 areas, pixels^2.
    """
    keypoints = np.asarray(keypoints, np.float64)
    confident = (np.asarray(scores) >= min_keypoint_score)[..., None]
    low = np.min(np.where(confident, keypoints, np.inf), axis=1)
    high = np.max(np.where(confident, keypoints, -np.inf), axis=1)
    size = np.where(np.isfinite(high - low), high - low, 0.0)
    return np.maximum(scale * size[:, 0] * size[:, 1], MIN_AREA)


def _shift_mask(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """[H, W] bool mask moved by (dx, dy) whole pixels, False where it enters."""
    height, width = mask.shape
    shifted = np.zeros_like(mask)
    if abs(dx) < width and abs(dy) < height:
        shifted[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            mask[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return shifted


# ---------------------------------------------------------------------------------------------- tracks
@dataclasses.dataclass
class Track:
    """One person followed across frames.

    Attributes:
      track_id: its id (>= 1).
      keypoints: [K, 2] (x, y) pixels of its last match; keypoint_scores: [K].
      mask: [H, W] bool mask of its last match, None when that frame had no masks.
      area: s^2 of its OKS (the mask's pixel count, or the scaled keypoint box; `Tracker.track_areas`).
      first_frame, last_frame: the frames (Tracker.frame_index) of its first and last match.
      hits: frames it was matched in (birth included).
      missed: consecutive frames since its last match (0: matched in the latest frame).
      velocity: [2] (x, y) pixels per frame (zero unless TrackerOptions.velocity).
    """

    track_id: int
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    mask: Optional[np.ndarray]
    area: float
    first_frame: int
    last_frame: int
    hits: int = 1
    missed: int = 0
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))


class Tracker:
    """Track ids for the detections of consecutive frames (module docstring).

    Usage: `ids = tracker.update(detections)` once per frame, in order; `tracker.tracks` are the live tracks.
    """

    def __init__(self, skeleton: Skeleton, options: Optional[TrackerOptions] = None):
        """`options` None: TrackerOptions() with the gin bindings parsed by then."""
        self.skeleton = skeleton
        self.options = TrackerOptions() if options is None else options
        self._kappas = np.asarray(skeleton.kappas, np.float64)
        self._tracks: List[Track] = []
        self._next_id = 1
        self._frame_index = -1

    @property
    def tracks(self) -> List[Track]:
        """The live tracks (matched in the latest frame or missed at most max_missed frames), oldest first."""
        return list(self._tracks)

    @property
    def frame_index(self) -> int:
        """0-based index of the latest frame `update` took (-1 before the first)."""
        return self._frame_index

    @property
    def next_id(self) -> int:
        """The id the next track will get (ids started so far: 1 .. next_id - 1)."""
        return self._next_id

    def reset(self) -> None:
        """Ends every track and restarts the frame count (ids keep counting: never reused)."""
        self._tracks = []
        self._frame_index = -1

    # ------------------------------------------------------------------------------------------ similarity
    def _predicted(self, track: Track):
        """The track's pose [K, 2] and mask at the current frame (moved by its velocity when enabled)."""
        if not self.options.velocity or not np.any(track.velocity):
            return track.keypoints, track.mask
        motion = track.velocity * (track.missed + 1)
        mask = track.mask
        if mask is not None:
            mask = _shift_mask(mask, int(np.round(motion[0])), int(np.round(motion[1])))
        return track.keypoints + motion, mask

    def track_areas(self, keypoints: np.ndarray, keypoint_scores: np.ndarray,
                    masks: Optional[np.ndarray]) -> np.ndarray:
        """s^2 of the OKS of tracks made from these poses: each mask's pixel count (at least MIN_AREA), or
        without masks `keypoint_box_areas` scaled by options.box_area_scale.

        Args:
          keypoints: [N, K, 2]; keypoint_scores: [N, K]; masks: [N, H, W] bool or None.

        Returns:
          [N] float64, pixels^2.
        """
        if masks is not None:
            return np.maximum(np.asarray(masks, bool).sum(axis=(1, 2), dtype=np.float64), MIN_AREA)
        return keypoint_box_areas(keypoints, keypoint_scores, self.options.min_keypoint_score,
                                  self.options.box_area_scale)

    def similarities(self, keypoints: np.ndarray, keypoint_scores: np.ndarray,
                     masks: Optional[np.ndarray] = None) -> np.ndarray:
        """S between the live tracks (in `tracks` order) and N detections (module docstring).

        Args:
          keypoints: [N, K, 2] (x, y) pixels; keypoint_scores: [N, K]; masks: [N, H, W] bool or None.

        Returns:
          [T, N] float64.
        """
        count = len(keypoints)
        if not self._tracks or count == 0:
            return np.zeros([len(self._tracks), count])
        predicted = [self._predicted(track) for track in self._tracks]
        similarity = pose_oks(np.stack([pose for pose, _ in predicted]),
                              np.stack([track.keypoint_scores for track in self._tracks]),
                              keypoints, keypoint_scores, np.array([track.area for track in self._tracks]),
                              self._kappas, self.options.min_keypoint_score)
        with_mask = [t for t, (_, mask) in enumerate(predicted) if mask is not None]
        if masks is not None and with_mask:
            iou = mask_iou(np.stack([predicted[t][1] for t in with_mask]), masks, self.options.mask_stride)
            weight = self.options.oks_weight
            similarity[with_mask] = weight * similarity[with_mask] + (1.0 - weight) * iou
        return similarity

    # ------------------------------------------------------------------------------------------ update
    def update(self, detections: Dict[str, np.ndarray]) -> np.ndarray:
        """Takes the next frame's detections; returns their track ids.

        Args:
          detections: one image's keys.Detection arrays (module docstring): KEYPOINTS [D, K, 2] (x, y) pixels,
            KEYPOINT_SCORES [D, K], INSTANCE_SCORES [D], optional NUM_DETECTIONS [] (slots at and past it are
            padding) and MASKS [D, H, W] bool (absent or None: OKS only).

        Returns:
          [num_detections] int32: the track id of each used slot, -1 for a detection below min_score or an
          unmatched one below birth_score.
        """
        options = self.options
        self._frame_index += 1
        count = detection_count(detections)
        scores = np.asarray(detections[keys.Detection.INSTANCE_SCORES], np.float64).reshape(-1)[:count]
        keypoints = np.asarray(detections[keys.Detection.KEYPOINTS], np.float64)[:count]
        keypoint_scores = np.asarray(detections[keys.Detection.KEYPOINT_SCORES], np.float64)[:count]
        masks = detections.get(keys.Detection.MASKS)
        masks = None if masks is None else np.asarray(masks, bool)[:count]
        if keypoints.shape != (count, self.skeleton.num_keypoints, 2):
            raise ValueError(f"keypoints must be [D, {self.skeleton.num_keypoints}, 2] "
                             f"(skeleton {self.skeleton.name}), got {keypoints.shape}")

        ids = np.full([count], -1, np.int32)
        candidates = np.flatnonzero(scores >= options.min_score)
        similarity = self.similarities(keypoints[candidates], keypoint_scores[candidates],
                                       None if masks is None else masks[candidates])
        allowed = similarity >= options.min_similarity
        rows, columns = linear_sum_assignment(np.where(allowed, -similarity, 0.0))
        matched = {int(t): int(candidates[n]) for t, n in zip(rows, columns) if allowed[t, n]}
        areas = self.track_areas(keypoints, keypoint_scores, masks)

        survivors = []
        for t, track in enumerate(self._tracks):
            if t in matched:
                slot = matched[t]
                self._match(track, slot, keypoints, keypoint_scores, masks, areas)
                ids[slot] = track.track_id
                survivors.append(track)
            else:
                track.missed += 1
                if track.missed <= options.max_missed:
                    survivors.append(track)
        taken = set(matched.values())
        for slot in candidates:
            if slot not in taken and scores[slot] >= options.birth_score:
                track = Track(track_id=self._next_id, keypoints=keypoints[slot].copy(),
                              keypoint_scores=keypoint_scores[slot].copy(),
                              mask=None if masks is None else masks[slot].copy(), area=float(areas[slot]),
                              first_frame=self._frame_index, last_frame=self._frame_index)
                self._next_id += 1
                ids[slot] = track.track_id
                survivors.append(track)
        self._tracks = survivors
        return ids

    def _match(self, track: Track, slot: int, keypoints, keypoint_scores, masks, areas) -> None:
        """Moves `track` onto detection `slot` of the current frame."""
        if self.options.velocity:
            shared = ((track.keypoint_scores >= self.options.min_keypoint_score)
                      & (keypoint_scores[slot] >= self.options.min_keypoint_score))
            gap = self._frame_index - track.last_frame
            track.velocity = (np.mean(keypoints[slot][shared] - track.keypoints[shared], axis=0) / gap
                              if np.any(shared) else np.zeros(2))
        track.keypoints = keypoints[slot].copy()
        track.keypoint_scores = keypoint_scores[slot].copy()
        track.mask = None if masks is None else masks[slot].copy()
        track.area = float(areas[slot])
        track.last_frame = self._frame_index
        track.hits += 1
        track.missed = 0
