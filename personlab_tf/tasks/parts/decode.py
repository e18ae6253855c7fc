"""Instance-aware part parsing inference (second paper §3.3 and "Inference"), graph ops only.

```
keypoint heatmaps + short offsets --Hough voting (Eq. 8)--> Hough maps h_k
  --local maxima moved by their short offsets, or the DSPF projections x + f(x) scored by h_k-->
  seeds --suppressed within r--> keypoint candidates
limb heatmaps --limb_scores.connection_scores--> score matrix per limb --matching (Hungarian, LP of Eqs. 13-16,
  or greedy)--> connections --assembly from head to feet--> persons --Eq. 17 on the person pixels of the part
  map--> instances
```

Maps (one image, dict of keys.Map) on one grid of stride s, cell (i, j) at input pixel (s j, s i):
PART_PROBABILITIES [h, w, C] softmax, HEATMAPS [h, w, K] sigmoid, SHORT_OFFSETS [h, w, K, 2],
LIMB_HEATMAPS [h, w, L] sigmoid, PROJECTION_FIELD [h, w, 2]; points and offsets (x, y) in input pixels.
K is the maps' (the last axis of HEATMAPS, static); `limbs` are the skeleton's (Skeleton.limbs,
personlab_tf/skeleton.py), L (k, l) keypoint pairs in the order of the LIMB_HEATMAPS channels and of the
assembly. The disk radius R of the Hough voting is the training targets' (the task passes it).
"""

import dataclasses
from typing import Dict, Sequence, Tuple

import gin
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import MAX_DETECTIONS, MIN_AREA
from personlab_tf.inference.detections import best, pad_to
from personlab_tf.ops.hough import hough_voting
from personlab_tf.ops.peaks import find_peaks
from personlab_tf.ops.sampling import static_keypoints
from personlab_tf.ops.suppression import greedy_keep
from personlab_tf.skeleton import Edge
from personlab_tf.tasks.parts import matching
from personlab_tf.tasks.parts.limb_scores import connection_scores
from personlab_tf.tasks.parts.targets import limb_ends

CANDIDATES = ("hough_peaks", "projections")


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PartsDecoding:
    """Settings of part-parsing decoding (gin: `PartsDecoding.matcher = 'greedy'`, ...).

    Attributes:
      candidates: where keypoint candidates come from (docs/parts.md): "hough_peaks" (local maxima of the
        Hough maps moved by their short-range offsets, `hough_peak_seeds`) or "projections" (the DSPF
        projections x + f(x) of the person pixels scored by the Hough maps, §3.3, `projection_seeds`).
      keypoint_threshold: smallest Hough score of a keypoint candidate (the paper's threshold on h_k).
      candidate_radius: a candidate within this distance (input pixels) of a better one of its type is
        dropped (the maxima of one vote peak spread over a few cells; PersonLab's r = 10 px).
      max_candidates: M, candidates kept per keypoint type (best first).
      limb_threshold: smallest connection score of a limb kept by the matching.
      matcher: a key of matching.MATCHERS: "hungarian" (the exact maximum-weight matching), "lp" (the
        differentiable solver at the evaluation settings, rounded) or "greedy" (Table 5).
      max_detections: D, persons kept, best first.
    """

    candidates: str = "hough_peaks"
    keypoint_threshold: float = 0.1
    candidate_radius: float = 10.0
    max_candidates: int = 20
    limb_threshold: float = 0.2
    matcher: str = "hungarian"
    max_detections: int = MAX_DETECTIONS

    def __post_init__(self):
        if self.candidates not in CANDIDATES:
            raise ValueError(f"candidates must be one of {CANDIDATES}, got {self.candidates!r}")
        if self.matcher not in matching.MATCHERS:
            raise ValueError(f"matcher must be one of {tuple(matching.MATCHERS)}, got {self.matcher!r}")


def peak_mass(hough: tf.Tensor, points: tf.Tensor, stride: int) -> tf.Tensor:
    """The Hough mass of every keypoint type at each point: h_k summed over the 4 cells around the point.

    A vote at x is split over the 4 cells around x by the bilinear kernel (Eq. 8), so a single cell holds
    between a quarter and all of it depending on where x falls; the 4-cell sum does not.

    Args:
      hough: [h, w, K]; points: [N, 2] (x, y) input pixels.

    Returns:
      [N, K] float32.
    """
    height, width = tf.shape(hough)[0], tf.shape(hough)[1]
    column = tf.clip_by_value(tf.cast(tf.floor(points[:, 0] / stride), tf.int32), 0, width - 1)
    row = tf.clip_by_value(tf.cast(tf.floor(points[:, 1] / stride), tf.int32), 0, height - 1)
    total = tf.zeros([tf.shape(points)[0], static_keypoints(hough)])
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        cells = tf.stack([tf.minimum(row + dr, height - 1), tf.minimum(column + dc, width - 1)], axis=-1)
        inside = (row + dr < height) & (column + dc < width)
        total += tf.where(inside[:, tf.newaxis], tf.gather_nd(hough, cells), 0.0)
    return total


def seed_budget(options: PartsDecoding, num_keypoints: int) -> int:
    """Seeds taken from a map before suppression: twice the candidates of all K types."""
    return 2 * num_keypoints * options.max_candidates


def hough_peak_seeds(hough: tf.Tensor, short_offsets: tf.Tensor, stride: int,
                     options: PartsDecoding) -> Tuple[tf.Tensor, tf.Tensor]:
    """Seeds from the Hough maps (PersonLab's): local maxima of h_k above the threshold, each moved by its
    short-range offset.

    Returns:
      (points [S, 2] (x, y), types [S] int32), by descending h_k of their cells.
    """
    cells, types, _ = find_peaks(hough, stride, options.keypoint_threshold,
                                 max_seeds=seed_budget(options, static_keypoints(hough)))
    cell_index = tf.cast(tf.round(cells / stride), tf.int32)
    return cells + tf.gather_nd(short_offsets, tf.stack([cell_index[:, 1], cell_index[:, 0], types], axis=-1)), types


def projection_seeds(hough: tf.Tensor, part_probabilities: tf.Tensor, projection_field: tf.Tensor, stride: int,
                     options: PartsDecoding) -> Tuple[tf.Tensor, tf.Tensor]:
    """Seeds from the dense-to-sparse projection field (second paper §3.3, keypoint detection): every person
    cell x (most likely class not the background) gives the keypoint coordinate q = x + f(x), scored for each
    type k by the Hough map at q (`peak_mass`); pairs (q, k) scoring below the threshold are dropped.

    The projections of one keypoint land together, so they are pooled by the cell nearest to q: the
    projection map D_k(c) is the best score of the pairs (q, k) landing in cell c, at the score-weighted
    mean of their q; the seeds are the local maxima of D (`find_peaks`) at those means.

    Returns:
      (points [S, 2] (x, y), types [S] int32), by descending D.
    """
    height, width, num_keypoints = tf.shape(hough)[0], tf.shape(hough)[1], static_keypoints(hough)
    cells = tf.cast(tf.where(tf.argmax(part_probabilities, axis=-1) > 0), tf.int32)      # [N, 2] (row, column)
    projections = tf.cast(tf.reverse(cells, [1]), tf.float32) * stride + tf.gather_nd(projection_field, cells)
    mass = peak_mass(hough, projections, stride)                                         # [N, K]
    pairs = tf.cast(tf.where(mass >= options.keypoint_threshold), tf.int32)              # [P, 2] (n, k)
    points, scores = tf.gather(projections, pairs[:, 0]), tf.gather_nd(mass, pairs)
    column = tf.clip_by_value(tf.cast(tf.round(points[:, 0] / stride), tf.int32), 0, width - 1)
    row = tf.clip_by_value(tf.cast(tf.round(points[:, 1] / stride), tf.int32), 0, height - 1)
    segments = (row * width + column) * num_keypoints + pairs[:, 1]
    size = height * width * num_keypoints
    best_score = tf.maximum(tf.math.unsorted_segment_max(scores, segments, size), 0.0)
    weight = tf.math.unsorted_segment_sum(scores, segments, size)
    centre = tf.math.unsorted_segment_sum(scores[:, tf.newaxis] * points, segments, size)
    seeds, types, _ = find_peaks(tf.reshape(best_score, [height, width, num_keypoints]), stride,
                                 options.keypoint_threshold, max_seeds=seed_budget(options, num_keypoints))
    seed_cells = tf.cast(tf.round(seeds / stride), tf.int32)
    flat = (seed_cells[:, 1] * width + seed_cells[:, 0]) * num_keypoints + types
    return tf.gather(centre, flat) / tf.gather(weight, flat)[:, tf.newaxis], types


def keypoint_candidates(maps: Dict[str, tf.Tensor], stride: int, radius: float,
                        options: PartsDecoding) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The candidates of every keypoint type: the seeds of `options.candidates` (`hough_peak_seeds` or
    `projection_seeds`) without those within `candidate_radius` of a better seed of their type, best
    `max_candidates` per type.

    Args:
      maps: the module docstring's maps (PART_PROBABILITIES and PROJECTION_FIELD only for "projections").

    Returns:
      (positions [K, M, 2] (x, y), scores [K, M] the Hough mass at the positions (`peak_mass`), valid [K, M]
      bool); M = max_candidates, each type's candidates in the order of their seeds, padding last.
    """
    num_keypoints = static_keypoints(maps[keys.Map.HEATMAPS])
    hough = hough_voting(maps[keys.Map.HEATMAPS], maps[keys.Map.SHORT_OFFSETS], stride, radius)
    if options.candidates == "hough_peaks":
        points, types = hough_peak_seeds(hough, maps[keys.Map.SHORT_OFFSETS], stride, options)
    else:
        points, types = projection_seeds(hough, maps[keys.Map.PART_PROBABILITIES], maps[keys.Map.PROJECTION_FIELD],
                                         stride, options)
    distance = tf.norm(points[:, tf.newaxis] - points[tf.newaxis], axis=-1)
    keep = greedy_keep((types[:, tf.newaxis] == types[tf.newaxis]) & (distance < options.candidate_radius))
    points, types = tf.boolean_mask(points, keep), tf.boolean_mask(types, keep)
    scores = tf.gather(peak_mass(hough, points, stride), types, batch_dims=1)
    rank = tf.gather(tf.cumsum(tf.one_hot(types, num_keypoints, dtype=tf.int32), axis=0), types, batch_dims=1) - 1
    kept = rank < options.max_candidates
    slot = tf.boolean_mask(types * options.max_candidates + rank, kept)[:, tf.newaxis]
    size = [num_keypoints * options.max_candidates]
    shape = [num_keypoints, options.max_candidates]
    positions = tf.scatter_nd(slot, tf.boolean_mask(points, kept), size + [2])
    scores = tf.scatter_nd(slot, tf.boolean_mask(scores, kept), size)
    valid = tf.scatter_nd(slot, tf.ones_like(slot[:, 0], tf.bool), size)
    return tf.reshape(positions, shape + [2]), tf.reshape(scores, shape), tf.reshape(valid, shape)


def limb_connections(limb_maps: tf.Tensor, positions: tf.Tensor, valid: tf.Tensor, stride: int, limbs: Sequence[Edge],
                     options: PartsDecoding) -> Tuple[tf.Tensor, tf.Tensor]:
    """Connections of every limb: the matching (`options.matcher`) of its candidates' connection scores
    of at least `limb_threshold`, all limbs in one batched call.

    Args:
      limb_maps: [h, w, L]; positions: [K, M, 2]; valid: [K, M] bool; stride: s of the limb maps;
      limbs: the L (k, l) keypoint pairs of the limb maps' channels; options: PartsDecoding.

    Returns:
      (connections [L, M, M] bool, scores [L, M, M]): candidate i of the limb's first keypoint type is
      joined to candidate j of its second.
    """
    first, second = limb_ends(limbs)
    scores = connection_scores(limb_maps[tf.newaxis], tf.gather(positions, first)[tf.newaxis],
                               tf.gather(positions, second)[tf.newaxis], stride)[0]
    usable = (tf.gather(valid, first)[:, :, tf.newaxis] & tf.gather(valid, second)[:, tf.newaxis, :]
              & (scores >= options.limb_threshold))
    return matching.match(scores, usable, options.matcher), scores


def assemble(connections: tf.Tensor, scores: tf.Tensor, max_candidates: int, limbs: Sequence[Edge],
             num_keypoints: int) -> tf.Tensor:
    """Groups connected candidates into persons, limb by limb in the order of `limbs` (the skeleton's, from
    the root outwards), each limb's connections by descending score (the conventional assembly, §3.3).

    For a connection (k, i) - (l, j): two free candidates start a person; a free candidate joins the
    other's person when that person has no type yet; two persons merge when they share no keypoint type.

    Args:
      connections: [L, M, M] bool; scores: [L, M, M] float32; max_candidates: M; limbs: the L (k, l)
      keypoint pairs; num_keypoints: K.

    Returns:
      [P, K] int32 candidate index of each person's keypoint (-1 none), P = K M / 2 slots (unused slots
      all -1).
    """
    slots = num_keypoints * max_candidates // 2
    found = tf.cast(tf.where(connections), tf.int32)                               # [C, 3] (limb, i, j)
    order = tf.argsort(tf.cast(found[:, 0], tf.float32) * 2.0 - tf.gather_nd(scores, found), stable=True)
    found = tf.gather(found, order)
    first, second = (tf.constant(ends, tf.int32) for ends in limb_ends(limbs))

    def body(index, owner, persons, count):
        limb, i, j = found[index, 0], found[index, 1], found[index, 2]
        k, l = first[limb], second[limb]
        a, b = owner[k, i], owner[l, j]

        def start():
            person = tf.stack([tf.one_hot(k, num_keypoints, on_value=i + 1, off_value=0, dtype=tf.int32)
                               + tf.one_hot(l, num_keypoints, on_value=j + 1, off_value=0, dtype=tf.int32) - 1])
            return (tf.tensor_scatter_nd_update(owner, [[k, i], [l, j]], [count, count]),
                    tf.tensor_scatter_nd_update(persons, [[count]], person), count + 1)

        def join(person, keypoint, candidate):
            taken = persons[person, keypoint] >= 0
            return tf.cond(taken, lambda: (owner, persons, count), lambda: (
                tf.tensor_scatter_nd_update(owner, [[keypoint, candidate]], [person]),
                tf.tensor_scatter_nd_update(persons, [[person, keypoint]], [candidate]), count))

        def merge():
            overlap = tf.reduce_any((persons[a] >= 0) & (persons[b] >= 0))

            def combined():
                joined = tf.where(persons[a] >= 0, persons[a], persons[b])
                updated = tf.tensor_scatter_nd_update(persons, [[a], [b]], [joined, -tf.ones_like(joined)])
                return tf.where(owner == b, a, owner), updated, count

            return tf.cond(overlap | tf.equal(a, b), lambda: (owner, persons, count), combined)

        owner, persons, count = tf.case([
            ((a < 0) & (b < 0), start),
            ((a >= 0) & (b < 0), lambda: join(a, l, j)),
            ((a < 0) & (b >= 0), lambda: join(b, k, i)),
        ], default=merge)
        return index + 1, owner, persons, count

    initial = (tf.constant(0), -tf.ones([num_keypoints, max_candidates], tf.int32),
               -tf.ones([slots, num_keypoints], tf.int32), tf.constant(0))
    _, _, persons, _ = tf.while_loop(lambda index, *_: index < tf.shape(found)[0], body, initial)
    return persons


def person_keypoints(persons: tf.Tensor, positions: tf.Tensor, scores: tf.Tensor,
                     max_detections: int) -> Dict[str, tf.Tensor]:
    """Keypoints, keypoint scores and instance scores of the best persons.

    The instance score is the mean of the K keypoint scores (0 for a missing keypoint), as PersonLab's.

    Returns:
      dict of keys.Detection: KEYPOINTS [D, K, 2], KEYPOINT_SCORES [D, K] (0 where missing), INSTANCE_SCORES
      [D] descending, NUM_DETECTIONS [], and KEYPOINT_PRESENT [D, K] bool; padding past NUM_DETECTIONS is
      zero / False.
    """
    present = persons >= 0
    index = tf.maximum(persons, 0)
    types = tf.broadcast_to(tf.range(tf.shape(persons)[1]), tf.shape(persons))
    points = tf.where(present[..., tf.newaxis], tf.gather_nd(positions, tf.stack([types, index], -1)), 0.0)
    point_scores = tf.where(present, tf.gather_nd(scores, tf.stack([types, index], -1)), 0.0)
    instance = tf.reduce_mean(point_scores, axis=-1)
    chosen, count = best(instance, tf.reduce_any(present, axis=-1), max_detections)
    return {
        keys.Detection.KEYPOINTS: pad_to(tf.gather(points, chosen), max_detections),
        keys.Detection.KEYPOINT_SCORES: pad_to(tf.gather(point_scores, chosen), max_detections),
        keys.Detection.INSTANCE_SCORES: pad_to(tf.gather(instance, chosen), max_detections),
        keys.Detection.NUM_DETECTIONS: count,
        keys.Detection.KEYPOINT_PRESENT: pad_to(tf.gather(present, chosen), max_detections),
    }


def instance_scales(keypoints: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
    """lambda_h: the square root of the area of the box tightly containing each person's present keypoints
    (at least 1 px^2). keypoints [D, K, 2], present [D, K] -> [D]."""
    big = 1e9
    low = tf.reduce_min(tf.where(present[..., tf.newaxis], keypoints, big), axis=1)
    high = tf.reduce_max(tf.where(present[..., tf.newaxis], keypoints, -big), axis=1)
    size = tf.where(tf.reduce_any(present, axis=1)[:, tf.newaxis], high - low, 0.0)
    return tf.sqrt(tf.maximum(size[:, 0] * size[:, 1], MIN_AREA))


def assign_pixels(points: tf.Tensor, projections: tf.Tensor, detections: Dict[str, tf.Tensor]) -> tf.Tensor:
    """The instance of each person pixel (Eq. 17): d(x, h) = min_j |x + f(x) - k_{h,j}| / ((s_j + s_h) lambda_h),
    x joins argmin_h d(x, h).

    Args:
      points: [N, 2] person pixels x; projections: [N, 2] their DSPF f(x) (same pixels as the points).
      detections: `person_keypoints` result (keypoints in the same pixels).

    Returns:
      [N] int32 detection slot of each pixel, -1 when there is no detection.
    """
    keypoints, scores = detections[keys.Detection.KEYPOINTS], detections[keys.Detection.KEYPOINT_SCORES]
    present, instance = detections[keys.Detection.KEYPOINT_PRESENT], detections[keys.Detection.INSTANCE_SCORES]
    slots = tf.shape(keypoints)[0]
    valid = present & (tf.range(slots) < detections[keys.Detection.NUM_DETECTIONS])[:, tf.newaxis]
    scale = (scores + instance[:, tf.newaxis]) * instance_scales(keypoints, present)[:, tf.newaxis]   # [D, K]
    targets = points + projections
    nearest = tf.fill([tf.shape(points)[0], slots], float("inf"))
    for k in range(static_keypoints(keypoints, axis=1)):  # one keypoint type at a time keeps memory at [N, D]
        distance = tf.norm(targets[:, tf.newaxis, :] - keypoints[tf.newaxis, :, k, :], axis=-1)
        distance = distance / tf.maximum(scale[tf.newaxis, :, k], 1e-12)
        nearest = tf.minimum(nearest, tf.where(valid[tf.newaxis, :, k], distance, float("inf")))
    owner = tf.argmin(nearest, axis=1, output_type=tf.int32)
    return tf.where(tf.reduce_min(nearest, axis=1) < float("inf"), owner, -1)


@tf.autograph.experimental.do_not_convert
def decode_poses(maps: Dict[str, tf.Tensor], stride: int, radius: float, limbs: Sequence[Edge],
                 options: PartsDecoding = PartsDecoding()) -> Dict[str, tf.Tensor]:
    """Persons of one image from its keypoint and limb maps (candidates, matching, assembly).

    Args:
      maps: the module docstring's maps; stride: s; radius: the targets' disk radius R; limbs: the skeleton's
        limbs (the LIMB_HEATMAPS channels); options: PartsDecoding.

    Returns:
      `person_keypoints` dict, positions in the maps' input pixels.
    """
    positions, scores, valid = keypoint_candidates(maps, stride, radius, options)
    connections, limb_scores = limb_connections(maps[keys.Map.LIMB_HEATMAPS], positions, valid, stride, limbs,
                                                options)
    persons = assemble(connections, limb_scores, options.max_candidates, limbs, static_keypoints(positions, axis=0))
    return person_keypoints(persons, positions, scores, options.max_detections)


def instance_part_maps(part_map: tf.Tensor, owner: tf.Tensor, slots: int) -> tf.Tensor:
    """[D, H, W] uint8: the part classes of the pixels assigned to each detection (0 elsewhere).

    Args:
      part_map: [H, W] uint8 category-level parsing; owner: [H, W] int32 slot per pixel (-1 none).
    """
    mine = owner[tf.newaxis] == tf.range(slots)[:, tf.newaxis, tf.newaxis]
    return tf.where(mine, part_map[tf.newaxis], tf.zeros_like(part_map)[tf.newaxis])

