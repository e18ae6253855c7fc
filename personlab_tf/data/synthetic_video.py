"""Synthetic video clips of walking people with ground-truth identities, for measuring a multi-person tracker.

A clip is a fixed camera looking down a street: one background with its clutter (data/synthetic_drawing.py's) drawn
once, and 2-6 figures (an option) of synthetic_body.py's body model that walk across it. Each figure has, for the
whole clip:

- an identity, `track_id` 1..N (in the order the figures were sampled, not their depth order);
- a depth: the figures stand on a ground plane seen by a camera at eye level, so a nearer figure is larger and
  its feet are lower in the frame (feet at the horizon row plus its depth scale, height its depth scale times
  its stature); figures are drawn back to front in that fixed order, and a nearer one hides a farther one;
- a constant horizontal velocity, some walking left to right and some right to left (both directions in
  every clip of two or more), of a pace in figure heights per second bounded so that a figure crosses the
  frame in CROSSING_SECONDS at the clip's frame rate (nearer figures move faster on screen); a figure starts
  inside the frame or walks in from outside (reaching the edge within ENTRY_DELAY_SECONDS), and walks out, so
  a clip of more than about 8 s ends empty; paths cross, so figures occlude one another, a figure's visible
  region shrinking while one in front passes (to nothing for some frames, when it has no annotation);
- a gait: legs and arms swing with a phase that advances with the distance walked (one cycle = two steps of
  the stance leg's sweep), the swing leg's knee bends, and the body is lowered as the legs spread, so the
  head bobs a little: the lower ankle stays on the figure's ground line (`hip_centre`);
- its proportions, face, clothes and skin (the still generator's samplers), the clothing textures drawn once
  on canvases that move with the figure, so its appearance is the same in every frame.

Each frame then gets the still generator's camera noise (`synthetic_drawing.camera_effects`, drawn per frame).

Coordinates and annotations follow data/synthetic_annotations.py, frame by frame: figures face the camera (the person's
left on the image's right), keypoints are pixel centres (x right, y down), visibility is 2 where the keypoint's
pixel shows the person, 1 where a figure in front hides it, 0 (x = y = 0) outside the frame; a person's mask
is its visible region (polygons that pycocotools rasterises back exactly), its box the box of those pixels.
There are no crowd regions, and every person with a visible pixel keeps its keypoints labelled (SMALL_AREA 0,
as synthetic_scene.PARTS_SCENE): a tracker is scored on every visible person (video/mot.py), and the poses are
scored on the same set; a person with no visible pixel in a frame has no annotation in it.

Files of `generate_clip(output_dir, ...)`:
- `images/<image id:012d>.jpg`, one per frame, image id = frame + 1 (coco_format.IMAGES_DIR; the JPEG quality
  is one per clip);
- `part_labels/<image id:012d>.png`, the frames' body-part label maps (synthetic_body.BODY_PART_CLASSES);
- `person_keypoints.json`, COCO person keypoints of the skeleton's category; each image also has `frame`
  (0-based) and `video_id` (the clip's index), each annotation `track_id`; annotation id = image id *
  synthetic.ANNOTATION_ID_STRIDE + its index in the frame. So the project's tools read a clip like any
  synthetic COCO split, and video/evaluation.py reads it as a clip;
- `video.mp4`, the same frames (before JPEG compression) as H.264 (video/io.py), at the clip's frame rate.

Determinism: clip (seed, index) is drawn from `np.random.default_rng([seed, index, stream, ...])` streams
alone (the clip's layout, one per figure, one per frame's noise), so frame f depends only on (seed, index),
the frame size, the frame rate, the person-count bounds and the skeleton (which, as in synthetic_body.py, only
adds its keypoints' pixels to the figures), not on the number of frames written.
"""

import dataclasses
import os
from typing import Any, Dict, List, Tuple

import numpy as np

from personlab_tf.data import coco_format
from personlab_tf.data import part_labels as part_labels_lib
from personlab_tf.data import (synthetic, synthetic_annotations, synthetic_body, synthetic_drawing, synthetic_figure,
                               synthetic_scene)
from personlab_tf.skeleton import COCO17, Skeleton
from personlab_tf.video import io as video_io

VIDEO_FILE = "video.mp4"


def clip_folder(index: int) -> str:
    """The folder name of clip `index` of a set of clips (scripts/make_synthetic_video.py)."""
    return f"clip_{index:03d}"


DEFAULT_SIZE = (360, 480)  # (height, width); both even, as video encoders need
DEFAULT_FPS = 10.0
DEFAULT_NUM_FRAMES = 40
DEFAULT_PERSONS = (2, 6)  # fewest and most figures of a clip
MIN_SIDE = 32
# Random streams: np.random.default_rng([seed, index, stream, ...]).
LAYOUT_STREAM, FIGURE_STREAM, NOISE_STREAM = 1, 2, 3
# Every visible person keeps its keypoints (module docstring).
SMALL_AREA = 0

# Layout, in fractions of the frame height: the horizon row, and a figure's depth scale (the rows from the
# horizon down to its ground line); its height in pixels is its stature times its depth scale.
HORIZON_FRACTION = (0.2, 0.35)
DEPTH_SCALE_FRACTION = (0.22, 0.6)
STATURE = (0.9, 1.1)
PACE = (0.6, 1.0)  # walking speed, figure heights per second
CROSSING_SECONDS = (2.0, 6.0)  # the time to cross the frame's width is clipped to this range
START_INSIDE_PROBABILITY = 0.4  # the others walk in from outside the frame
ENTRY_DELAY_SECONDS = 2.0  # an entering figure reaches the frame's edge within this time
ENTRY_MARGIN = 0.6  # figure heights between the hip centre and the farthest pixel of a walking figure (< this)

# Gait amplitudes, radians, drawn per figure (image angles from straight down; see `_limbs`).
STRIDE = (0.3, 0.45)  # the thighs' swing
LEG_STANCE = (0.0, 0.1)  # the legs' outward angle at mid-swing
KNEE_FLEX = (0.3, 0.7)  # the swing leg's knee bend at mid-swing
ARM_SWING = (0.15, 0.45)
ARM_STANCE = (0.1, 0.25)  # the arms' outward angle, clearing the hips
ELBOW_BEND = (0.1, 0.45)  # the forearm's bend towards where the figure walks
FULL_LENGTH = 1.0  # walkers' limbs are drawn at full length (no foreshortening)
TEXTURE_REACH = 0.8  # a clothing canvas reaches this many figure heights around the hip centre


@dataclasses.dataclass(frozen=True, eq=False)
class Gait:
    """A figure's walk (module docstring; `_limbs` gives the limb angles at a phase).

    Attributes:
      stride, leg_stance, knee_flex, arm_swing, arm_stance, elbow_bend: amplitudes, radians (the constants of
        the same names).
      phase: the phase at frame 0, radians.
      cycle_px: the distance walked in one cycle (two steps), pixels: the phase advances by 2 pi per cycle_px.
    """

    stride: float
    leg_stance: float
    knee_flex: float
    arm_swing: float
    arm_stance: float
    elbow_bend: float
    phase: float
    cycle_px: float


@dataclasses.dataclass(frozen=True, eq=False)
class Walker:
    """One figure of a clip, fixed for the clip.

    Attributes:
      track_id: identity, 1..N.
      height_px: figure height in pixels (synthetic_body.py's body model: about one unit from head top to feet).
      ground_y: the figure's ground line, the row (pixel centres) of its lower ankle.
      start_x: the hip centre's x at frame 0 (outside the frame for a figure that walks in).
      velocity: the hip centre's x pixels per frame (> 0: walks right).
      build: body proportions (synthetic_body.sample_build), upright (lean 0), the face turned towards where it walks.
      style: clothes and skin (synthetic_drawing.sample_style).
      gait: its `Gait`.
      textures: dict synthetic_figure.TOP / synthetic_figure.BOTTOM -> [S, S, 3] uint8 RGB clothing canvas whose
        centre pixel is drawn at the hip centre (rounded).
    """

    track_id: int
    height_px: float
    ground_y: float
    start_x: float
    velocity: float
    build: Dict[str, Any]
    style: Dict[str, Any]
    gait: Gait
    textures: Dict[int, np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class Clip:
    """A clip's fixed scene (module docstring); `render_frame` draws its frames.

    Attributes:
      seed, index: what it was drawn from; index is the COCO images' `video_id`.
      fps: frames per second.
      background: [H, W, 3] uint8 RGB, the empty street.
      horizon_y: the horizon row, pixels.
      jpeg_quality: the quality of its JPEG frames.
      walkers: its `Walker`s back to front (drawing order).
    """

    seed: int
    index: int
    fps: float
    background: np.ndarray
    horizon_y: float
    jpeg_quality: int
    walkers: Tuple[Walker, ...]


def check_options(num_frames: int, size: Tuple[int, int], fps: float, min_persons: int, max_persons: int) -> None:
    """ValueError (one line) for options no clip can have: fewer than 1 frame, a side that is odd or under
    MIN_SIDE, fps <= 0, person bounds not 0 <= min_persons <= max_persons."""
    height, width = size
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got num_frames {num_frames}")
    if min(height, width) < MIN_SIDE or height % 2 or width % 2:
        raise ValueError(f"frame size {height}x{width} (height x width): both sides must be even (video encoders "
                         f"need it) and at least {MIN_SIDE}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not 0 <= min_persons <= max_persons:
        raise ValueError(f"person counts: need 0 <= min_persons <= max_persons, got {min_persons} and {max_persons}")


def sample_clip(seed: int, index: int, size: Tuple[int, int] = DEFAULT_SIZE, fps: float = DEFAULT_FPS,
                min_persons: int = DEFAULT_PERSONS[0], max_persons: int = DEFAULT_PERSONS[1]) -> Clip:
    """Draws clip `index` of `seed`: background, figures, paths, gaits and looks (module docstring).

    Args:
      seed, index: the clip's random streams.
      size: (height, width) of the frames, pixels.
      fps: frames per second (paces are per second).
      min_persons, max_persons: the number of figures is drawn uniformly from this range.
    """
    height, width = size
    rng = np.random.default_rng([seed, index, LAYOUT_STREAM])
    count = int(rng.integers(min_persons, max_persons, endpoint=True))
    horizon_y = rng.uniform(*HORIZON_FRACTION) * height
    jpeg_quality = int(rng.integers(*synthetic_scene.JPEG_QUALITY, endpoint=True))
    directions = rng.choice((-1.0, 1.0), count)
    if count >= 2 and np.all(directions == directions[0]):
        directions[rng.integers(count)] *= -1.0
    background = synthetic_drawing.sample_background(rng, height, width)
    walkers = [_sample_walker(np.random.default_rng([seed, index, FIGURE_STREAM, n]), n + 1, direction, size,
                              fps, horizon_y) for n, direction in enumerate(directions)]
    walkers.sort(key=lambda walker: walker.ground_y)  # farther (higher ground line) first
    return Clip(seed=seed, index=index, fps=fps, background=background, horizon_y=horizon_y,
                jpeg_quality=jpeg_quality, walkers=tuple(walkers))


def _sample_walker(rng, track_id, direction, size, fps, horizon_y):
    """A `Walker` walking in `direction` (+1 right, -1 left) from `rng`, the figure's own stream."""
    height, width = size
    depth_scale = rng.uniform(*DEPTH_SCALE_FRACTION) * height
    height_px = rng.uniform(*STATURE) * depth_scale
    crossing = np.clip(width / (rng.uniform(*PACE) * height_px), *CROSSING_SECONDS)
    velocity = direction * width / (crossing * fps)
    if rng.random() < START_INSIDE_PROBABILITY:
        start_x = rng.uniform(0, width)
    else:
        edge = -ENTRY_MARGIN * height_px if direction > 0 else width - 1 + ENTRY_MARGIN * height_px
        start_x = edge - velocity * rng.uniform(0, ENTRY_DELAY_SECONDS) * fps
    build = synthetic_body.sample_build(rng)
    build = dict(build, lean=0.0, yaw=direction * abs(build["yaw"]))
    style = synthetic_drawing.sample_style(rng)
    stride, leg_stance = rng.uniform(*STRIDE), rng.uniform(*LEG_STANCE)
    leg = build["length"]["thigh"] + build["length"]["shin"]
    gait = Gait(stride=stride, leg_stance=leg_stance, knee_flex=rng.uniform(*KNEE_FLEX),
                arm_swing=rng.uniform(*ARM_SWING), arm_stance=rng.uniform(*ARM_STANCE),
                elbow_bend=rng.uniform(*ELBOW_BEND), phase=rng.uniform(0, 2 * np.pi),
                cycle_px=2 * height_px * leg * (np.sin(leg_stance + stride) - np.sin(leg_stance - stride)))
    side = 2 * _canvas_half(height_px) + 1
    textures = {label: synthetic_drawing.random_texture(rng, side, side, 0.1 * height_px)
                for label in (synthetic_figure.TOP, synthetic_figure.BOTTOM)}
    return Walker(track_id=track_id, height_px=height_px, ground_y=horizon_y + depth_scale, start_x=start_x,
                  velocity=velocity, build=build, style=style, gait=gait, textures=textures)


def _canvas_half(height_px):
    """Pixels from a clothing canvas's centre pixel to its edges, for a figure `height_px` pixels tall."""
    return int(np.ceil(TEXTURE_REACH * height_px))


def gait_phase(walker: Walker, frame: int) -> float:
    """The walker's gait phase at `frame`, radians: its phase at frame 0 plus 2 pi per cycle_px walked."""
    return walker.gait.phase + 2 * np.pi * abs(walker.velocity) * frame / walker.gait.cycle_px


def hip_centre(walker: Walker, frame: int) -> np.ndarray:
    """The walker's hip centre at `frame`, [2] float (x, y) pixels: x = start_x + velocity * frame; y puts the
    lower of its two ankles (`_limbs` at the frame's phase) on its ground line ground_y."""
    limbs = _limbs(walker.gait, gait_phase(walker, frame), np.sign(walker.velocity))
    length = walker.build["length"]
    drop = max(length["thigh"] * limb["thigh"] * np.cos(limb["hip_angle"])
               + length["shin"] * limb["shin"] * np.cos(limb["knee_angle"]) for limb in limbs.values())
    return np.array([walker.start_x + walker.velocity * frame, walker.ground_y - walker.height_px * drop])


def _limbs(gait, phase, direction):
    """The limb dict of synthetic_body.pose_body at gait `phase` for a figure walking in `direction` (+1: right).

    Image angles (radians from straight down, towards +x), the right side's mirroring the left's: the left
    thigh at leg_stance + direction stride sin phase, the left arm opposite it (arm_stance - direction
    arm_swing sin phase); a leg swings forwards while the cosine of its phase is positive (the left: cos phase
    > 0, the right: cos phase < 0), and its shin then trails by knee_flex times that cosine; the forearms bend
    forwards by elbow_bend. pose_body's angles are outwards, i.e. the image angle times the side's sign.
    """
    thigh = gait.leg_stance + direction * gait.stride * np.sin(phase)
    arm = gait.arm_stance - direction * gait.arm_swing * np.sin(phase)
    swing = {"left": max(0.0, np.cos(phase)), "right": max(0.0, -np.cos(phase))}
    limbs = {}
    for side, sign in synthetic_body.BODY_SIDES:
        thigh_image, arm_image = sign * thigh, sign * arm
        shin_image = thigh_image - direction * gait.knee_flex * swing[side]
        forearm_image = arm_image + direction * gait.elbow_bend
        limbs[side] = {"shoulder_angle": sign * arm_image, "elbow_angle": sign * forearm_image,
                       "hip_angle": sign * thigh_image, "knee_angle": sign * shin_image,
                       "upper_arm": FULL_LENGTH, "forearm": FULL_LENGTH, "thigh": FULL_LENGTH, "shin": FULL_LENGTH}
    return limbs


def walker_figure(walker: Walker, frame: int, skeleton: Skeleton) -> Dict[str, Any]:
    """The walker posed and placed at `frame`: a synthetic_figure.posed_figure dict with its clothing 'textures'."""
    direction = np.sign(walker.velocity)
    points, shape = synthetic_body.pose_body(walker.build, _limbs(walker.gait, gait_phase(walker, frame), direction))
    origin = hip_centre(walker, frame)
    figure = synthetic_figure.posed_figure(points, shape, walker.style, walker.height_px, 0.0, origin, skeleton)
    corner = np.round(origin).astype(int) - _canvas_half(walker.height_px)
    figure["textures"] = {label: (canvas, tuple(corner)) for label, canvas in walker.textures.items()}
    return figure


def render_frame(clip: Clip, frame: int, skeleton: Skeleton = COCO17) -> Dict[str, Any]:
    """Draws frame `frame` of `clip` and annotates it.

    Returns:
      dict with 'image' [H, W, 3] uint8 RGB (with the frame's camera noise), 'annotations' (COCO dicts with
      `track_id`, without ids, back to front; a person with no visible pixel has none), 'part_labels' [H, W]
      uint8 (synthetic_body.BODY_PART_CLASSES), 'drawn_areas' [N] int and 'visible_areas' [N] int: per walker
      (drawing order), its pixels in the frame when alone and those left visible by the figures in front.
    """
    height, width = clip.background.shape[:2]
    image = clip.background.copy()
    owner = np.full((height, width), -1, np.int16)
    body_parts = np.zeros((height, width), np.uint8)
    drawn = []
    drawn_areas = np.zeros(len(clip.walkers), int)
    for n, walker in enumerate(clip.walkers):
        figure = walker_figure(walker, frame, skeleton)
        box = synthetic_drawing.draw_figure(image, owner, body_parts, figure, n, None)
        if box is not None:
            x0, y0, x1, y1 = box
            drawn_areas[n] = np.count_nonzero(owner[y0:y1, x0:x1] == n)
        drawn.append((figure, box))
    annotations = []
    visible_areas = np.zeros(len(clip.walkers), int)
    for n, (walker, (figure, box)) in enumerate(zip(clip.walkers, drawn)):
        result = None if box is None else synthetic_annotations.drawn_person_annotation(
            figure, owner, n, box, False, SMALL_AREA, skeleton.category_id)
        if result is not None:
            annotations.append(dict(result[0], track_id=walker.track_id))
            visible_areas[n] = result[0]["area"]
    noise_rng = np.random.default_rng([clip.seed, clip.index, NOISE_STREAM, frame])
    return {"image": synthetic_drawing.camera_effects(noise_rng, image), "annotations": annotations,
            "part_labels": body_parts, "drawn_areas": drawn_areas, "visible_areas": visible_areas}


def generate_clip(output_dir: str, seed: int, index: int, num_frames: int = DEFAULT_NUM_FRAMES,
                  size: Tuple[int, int] = DEFAULT_SIZE, fps: float = DEFAULT_FPS, skeleton: Skeleton = COCO17,
                  min_persons: int = DEFAULT_PERSONS[0], max_persons: int = DEFAULT_PERSONS[1]) -> Dict[str, int]:
    """Writes clip `index` of `seed` to `output_dir` (files: module docstring), frame by frame.

    Args:
      output_dir: the clip folder, created or filled.
      seed, index: the clip's random streams; index is its `video_id`.
      num_frames: frames written (0..num_frames - 1; frame f does not depend on it).
      size: (height, width), both even.
      fps: frames per second.
      skeleton: the `Skeleton` annotated (synthetic_body.check_skeleton).
      min_persons, max_persons: bounds of the number of figures.

    Returns:
      summary dict: frames, figures (walkers in the clip), tracks (identities with an annotation), annotations,
      frames_with_occlusion (frames where a figure in front hides part of another), hidden (person-frames in
      the frame but hidden entirely), entries (figures outside the frame at frame 0 that come in), exits
      (figures in the frame at some frame but not at the last), video_frames (frames in `video.mp4`).

    Raises:
      ValueError: bad options (`check_options`, `synthetic_body.check_skeleton`), before anything is written.
    """
    check_options(num_frames, size, fps, min_persons, max_persons)
    synthetic_body.check_skeleton(skeleton)
    clip = sample_clip(seed, index, size, fps, min_persons, max_persons)
    os.makedirs(os.path.join(output_dir, coco_format.IMAGES_DIR), exist_ok=True)
    images: List[dict] = []
    annotations: List[dict] = []
    drawn_areas = np.zeros((num_frames, len(clip.walkers)), int)
    visible_areas = np.zeros_like(drawn_areas)

    def frames():
        """Renders and writes the frames one by one, yielding each image for the video."""
        for frame in range(num_frames):
            rendered = render_frame(clip, frame, skeleton)
            image_id = frame + 1
            file_name = f"{image_id:012d}.jpg"
            synthetic.write_jpeg(os.path.join(output_dir, coco_format.IMAGES_DIR, file_name), rendered["image"],
                                 clip.jpeg_quality)
            part_labels_lib.write_png(coco_format.part_labels_path(
                os.path.join(output_dir, coco_format.PART_LABELS_DIR), file_name), rendered["part_labels"])
            images.append({"id": image_id, "file_name": file_name, "height": size[0], "width": size[1],
                           "frame": frame, "video_id": index})
            annotations.extend(dict(annotation, id=image_id * synthetic.ANNOTATION_ID_STRIDE + n, image_id=image_id)
                               for n, annotation in enumerate(rendered["annotations"]))
            drawn_areas[frame], visible_areas[frame] = rendered["drawn_areas"], rendered["visible_areas"]
            yield rendered["image"]

    video_frames = video_io.write_video(os.path.join(output_dir, VIDEO_FILE), frames(), fps)
    description = f"personlab_tf synthetic video, seed {seed}, clip {index}"
    if skeleton.name != COCO17.name:
        description += f", skeleton {skeleton.describe()}"
    coco_format.write_annotations(output_dir, images, annotations, description, skeleton)
    in_frame = drawn_areas > 0
    return {"frames": num_frames, "figures": len(clip.walkers),
            "tracks": len({annotation["track_id"] for annotation in annotations}), "annotations": len(annotations),
            "frames_with_occlusion": int(np.any(visible_areas < drawn_areas, axis=1).sum()),
            "hidden": int((in_frame & (visible_areas == 0)).sum()),
            "entries": int((~in_frame[0] & in_frame.any(axis=0)).sum()),
            "exits": int((in_frame.any(axis=0) & ~in_frame[-1]).sum()),
            "video_frames": video_frames}
