"""The video path (docs/video.md): frames -> a detector -> the tracker -> per-frame results and an overlay video.

Three stages run at once, each in its own thread, joined by bounded queues (`QUEUE_DEPTH` frames): reading and
decoding the video (`background`), the detector and the tracker (the caller's thread), and drawing, encoding
and result writing (`Sink`). TensorFlow, FFmpeg and OpenCV release Python's lock while they work, so the stages
overlap; the tracker sees the frames in order. An exception in any stage stops the run and is raised in the
caller's thread.

Results: the COCO keypoint and segmentation results of every frame (evaluation/results.py), image id = frame
index + 1, each with its `frame` (0-based) and `track_id` (the tracker's identity; -1 for a detection the
tracker ignores). Coordinates: original frame pixels, pixel centres at integer coordinates, (x, y).
"""

import dataclasses
import queue
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.evaluation import results
from personlab_tf.inference import overlay, serving
from personlab_tf.skeleton import Skeleton
from personlab_tf.task import Task
from personlab_tf.video import io
from personlab_tf.video.tracker import Tracker

QUEUE_DEPTH = 4
_DONE = object()


class _Failure:
    """An exception raised in a stage's thread, carried to the caller's."""

    def __init__(self, error: BaseException):
        self.error = error


def background(items: Iterable[Any], depth: int = QUEUE_DEPTH) -> Iterator[Any]:
    """Yields `items`, produced ahead by a daemon thread into a queue of `depth`; the producer's exception is
    raised here. Stopping early (an exception here, or the generator closed) stops the producer after its
    current item and waits for it, so whatever it reads from (a video file) can be closed safely after."""
    channel: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def offer(item) -> bool:
        """Puts `item` unless stopped; False when stopped."""
        while not stop.is_set():
            try:
                channel.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as error:  # carried to the consumer
            offer(_Failure(error))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = channel.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class Sink:
    """Applies `consume` to each item put, in order, in a daemon thread (a queue of `depth`); with
    `threaded=False` at once in the caller's thread (the sequential baseline of scripts/benchmark.py video)."""

    def __init__(self, consume: Callable[[Any], None], depth: int = QUEUE_DEPTH, threaded: bool = True):
        self._consume = consume
        self._channel: queue.Queue = queue.Queue(depth)
        self._failure: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True) if threaded else None
        if self._thread is not None:
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._channel.get()
            if item is _DONE:
                return
            if self._failure is None:
                try:
                    self._consume(item)
                except BaseException as error:  # carried to the caller
                    self._failure = error

    def put(self, item: Any) -> None:
        """Queues `item`; raises the consumer's exception if it failed on an earlier one."""
        if self._failure is not None:
            raise self._failure
        if self._thread is None:
            self._consume(item)
        else:
            self._channel.put(item)

    def close(self) -> None:
        """Waits for the queued items; raises the consumer's exception if it failed."""
        if self._thread is not None:
            self._channel.put(_DONE)
            self._thread.join()
        if self._failure is not None:
            raise self._failure


@dataclasses.dataclass
class TrackedFrame:
    """One frame through detector and tracker.

    Attributes:
      index: the frame's 0-based index in its source (io.VideoSource.frames: frames after a damaged stretch
        keep their places).
      image: [H, W, 3] uint8 RGB.
      detections: numpy keys.Detection outputs of the frame, with `masks` [D, H, W] bool (Task.instance_masks).
      track_ids: [num_detections] int32, -1 where the tracker ignored the detection.
    """

    index: int
    image: np.ndarray
    detections: Dict[str, np.ndarray]
    track_ids: np.ndarray


def saved_model_detector(loaded: Any, task: Task) -> Callable[[np.ndarray], Dict[str, np.ndarray]]:
    """A function frame [H, W, 3] uint8 RGB -> its numpy detections with instance masks, through a loaded
    SavedModel's `serving_image` signature (docs/inference.md) and `task.instance_masks`.

    Raises:
      ValueError: the SavedModel has no `serving_image` signature.
    """
    if serving.SERVING_IMAGE not in loaded.signatures:
        raise ValueError(f"the SavedModel has no {serving.SERVING_IMAGE} signature (signatures: "
                         f"{', '.join(sorted(loaded.signatures))}): export it with scripts/export_saved_model.py")
    serve = loaded.signatures[serving.SERVING_IMAGE]

    def detect(frame: np.ndarray) -> Dict[str, np.ndarray]:
        detections = serving.image_outputs(serve(**{serving.INPUT_NAME: tf.constant(frame[None])}))
        detections[keys.Detection.MASKS] = task.instance_masks(detections)
        return detections

    return detect


def track(frames: Iterable[Tuple[int, np.ndarray]], detect: Callable[[np.ndarray], Dict[str, np.ndarray]],
          tracker: Tracker, overlap: bool = True) -> Iterator[TrackedFrame]:
    """Runs `detect` and `tracker` on each (index, frame) in order, reading the frames ahead in a thread (with
    `overlap`; without, each frame is read when the previous one is done)."""
    for index, image in (background(frames) if overlap else frames):
        detections = detect(image)
        yield TrackedFrame(index, image, detections, tracker.update(detections))


def run(frames: Iterable[Tuple[int, np.ndarray]], detect: Callable[[np.ndarray], Dict[str, np.ndarray]],
        tracker: Tracker, consume: Callable[[TrackedFrame], None], overlap: bool = True,
        max_frames: Optional[int] = None, on_frame: Optional[Callable[[], None]] = None) -> int:
    """Tracks the (index, frame) pairs and hands each `TrackedFrame` to `consume` (in its own thread with
    `overlap`, the reading too; without, all in the caller's thread, one frame at a time); stops after
    `max_frames` (at least 1). `on_frame` is called after each frame is tracked (a progress bar). Returns the
    frames tracked."""
    sink = Sink(consume, threaded=overlap)
    count = 0
    try:
        for tracked in track(frames, detect, tracker, overlap):
            sink.put(tracked)
            count += 1
            if on_frame is not None:
                on_frame()
            if max_frames is not None and count >= max_frames:
                break
    finally:
        sink.close()
    return count


class Recorder:
    """The `consume` of `run` that keeps each frame's results (`frame_results`) and a frames list, and writes
    the overlay (`overlay_frame`) to an optional io.VideoWriter.

    Attributes:
      keypoints, segmentation: the COCO results of all frames so far, with `frame` and `track_id`.
      frames: per frame, {"frame", "image_id", "height", "width", "detections", "track_ids"}.
    """

    def __init__(self, skeleton: Skeleton, writer: Optional[io.VideoWriter] = None,
                 min_score: float = overlay.MIN_SCORE):
        self.skeleton = skeleton
        self.writer = writer
        self.min_score = min_score
        self.keypoints: List[Dict[str, Any]] = []
        self.segmentation: List[Dict[str, Any]] = []
        self.frames: List[Dict[str, Any]] = []

    def __call__(self, tracked: TrackedFrame) -> None:
        found = frame_results(tracked, self.skeleton)
        self.keypoints.extend(found["keypoints"])
        self.segmentation.extend(found["segmentation"])
        self.frames.append({"frame": tracked.index, "image_id": tracked.index + 1,
                            "height": int(tracked.image.shape[0]), "width": int(tracked.image.shape[1]),
                            "detections": len(tracked.track_ids), "track_ids": [int(i) for i in tracked.track_ids]})
        if self.writer is not None:
            self.writer.write(overlay_frame(tracked, self.skeleton, self.min_score))

    def track_count(self) -> int:
        """Distinct identities in the results."""
        return len({result["track_id"] for result in self.segmentation if result["track_id"] >= 0})


def frame_results(tracked: TrackedFrame, skeleton: Skeleton) -> Dict[str, List[Dict[str, Any]]]:
    """{"keypoints": ..., "segmentation": ...}: the frame's COCO results with `frame` and `track_id`."""
    image_id = tracked.index + 1
    extra = [{"frame": tracked.index, "track_id": int(track_id)} for track_id in tracked.track_ids]
    keypoints = results.keypoint_results(image_id, tracked.detections, skeleton)
    segmentation = results.segmentation_results(image_id, tracked.detections, skeleton.category_id)
    return {"keypoints": [dict(r, **e) for r, e in zip(keypoints, extra)],
            "segmentation": [dict(r, **e) for r, e in zip(segmentation, extra)]}


def overlay_frame(tracked: TrackedFrame, skeleton: Skeleton, min_score: float) -> np.ndarray:
    """The frame with its tracked persons drawn in their identities' colours, ids as labels: [H, W, 3] uint8."""
    return overlay.draw_detections(tracked.image, tracked.detections, skeleton, min_score, track_ids=tracked.track_ids)
