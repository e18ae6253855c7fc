"""Reading and writing video with PyAV (FFmpeg's libraries in its wheel: no system ffmpeg needed).

A source is a video file (any container and codec FFmpeg decodes: .mp4, .webm, .avi, .mov, .mkv, ...) or a
folder of frames (.jpg/.jpeg/.png files, in the order of their sorted names). Frames are [H, W, 3] uint8 RGB,
each with its index in the source: a video frame's from its timestamp (pts x time base x frame rate), a
folder frame's from its position in the sorted list, so the frames after a damaged stretch keep their places
(in containers with timestamps: MP4, MOV, MKV, WebM; AVI numbers the packets it finds).

Damaged input (docs/video.md): a video is decoded packet by packet, so a packet that does not decode costs its
frames only, and a truncated file gives the frames before the cut when its index comes first (streamable
formats: WebM, MKV, AVI, MPEG-TS, and MP4s written with the index first, as ours are; an MP4 whose index is at
its end, as cameras write them, cannot be opened once cut). A folder frame that does not read, or whose size
differs from the first frame's, is skipped. `VideoSource.report()` counts what was read and what was not: the
frames the container declares (or its duration times its frame rate when it declares none) minus those read.
A missing file, a file FFmpeg cannot open, one without a video stream or with a codec FFmpeg does not know
raises `VideoError` with a one-line message naming the file, before any frame is read.

Writing: H.264 (libx264, yuv420p, constant quality CRF, preset PRESET) in an MP4 whose index comes first
(`faststart`, so players start before the whole file has arrived); the index is written when the file is
closed, so the file of a killed job does not play. Odd frame sides are padded by one black row or column
(yuv420p needs even sides).
"""

import dataclasses
import fractions
import os
from typing import Iterable, Iterator, List, Optional, Tuple

import av
import cv2
import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
DEFAULT_FPS = 10.0  # the rate of a folder of frames (the video command's --fps), and of a video declaring none
CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
CRF = "20"  # x264's constant quality: visually lossless for overlays
# x264's speed preset: 'veryfast' encodes a 720p frame in 30 ms of CPU against 78 ms for its default 'medium',
# at the same file size on the synthetic clips ('ultrafast': 10 ms, 1.7 times the size); docs/video.md, Speed.
PRESET = "veryfast"


class VideoError(ValueError):
    """A video that cannot be read or written; the message is one line naming the file."""


@dataclasses.dataclass
class ReadReport:
    """What reading a source gave.

    Attributes:
      frames_read: frames decoded and yielded.
      frames_expected: frames the source declares (a folder: its image files), None when unknown.
      frames_damaged: packets that did not decode and folder files skipped, as they were met.
      problems: one line per damaged packet, early end or skipped file, at most MAX_PROBLEMS.
    """

    frames_read: int = 0
    frames_expected: Optional[int] = None
    frames_damaged: int = 0
    problems: List[str] = dataclasses.field(default_factory=list)

    @property
    def frames_unread(self) -> int:
        """Frames declared but not read (at least the damaged ones met): once the source is read to its end,
        what it lost."""
        declared = 0 if self.frames_expected is None else self.frames_expected - self.frames_read
        return max(declared, self.frames_damaged)


MAX_PROBLEMS = 20


class VideoSource:
    """Frames of a video file or of a folder of frame images, in order.

    Attributes:
      path: the file or folder.
      fps: frames per second (the container's average rate; a folder's `folder_fps`).
      size: (height, width) of the video, of a folder's first frame (None when it does not read).
    """

    def __init__(self, path: str, folder_fps: float = DEFAULT_FPS):
        """Opens `path`.

        Raises:
          VideoError: missing path, a file FFmpeg cannot open (unknown format or codec, not a video), a
            file without a video stream, a folder without frame images.
        """
        self.path = str(path)
        self._report = ReadReport()
        self._container = None
        if os.path.isdir(self.path):
            self._files = sorted(os.path.join(self.path, name) for name in os.listdir(self.path)
                                 if name.lower().endswith(FRAME_EXTENSIONS))
            if not self._files:
                raise VideoError(f"{self.path}: no .jpg/.jpeg/.png frames in the folder")
            self.fps = float(folder_fps)
            self._report.frames_expected = len(self._files)
            first = cv2.imread(self._files[0], cv2.IMREAD_COLOR)
            self.size = None if first is None else first.shape[:2]
            return
        if not os.path.exists(self.path):
            raise VideoError(f"{self.path}: no such file or folder")
        self._files = None
        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except av.error.FFmpegError as error:
            raise VideoError(f"{self.path}: cannot open as video ({_reason(error)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{self.path}: has no video stream")
        stream = self._container.streams.video[0]
        if stream.codec_context is None or not stream.codec_context.name:
            self._container.close()
            raise VideoError(f"{self.path}: unknown video codec")
        self._stream = stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else DEFAULT_FPS
        self.size = (stream.codec_context.height, stream.codec_context.width)
        self._report.frames_expected = _declared_frames(self._container, stream, self.fps)

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    @property
    def frames_expected(self) -> Optional[int]:
        """Frames the source declares, None when unknown."""
        return self._report.frames_expected

    def frames(self) -> Iterator[Tuple[int, np.ndarray]]:
        """Yields (index, frame [H, W, 3] uint8 RGB) of the readable frames in order (module docstring);
        damaged ones are counted (`report`)."""
        if self._files is not None:
            yield from self._folder_frames()
        else:
            yield from self._video_frames()

    def report(self) -> ReadReport:
        """The counts of what `frames()` read so far (complete once it is exhausted)."""
        return self._report

    def _problem(self, text: str) -> None:
        if len(self._report.problems) < MAX_PROBLEMS:
            self._report.problems.append(text)

    def _folder_frames(self) -> Iterator[Tuple[int, np.ndarray]]:
        for index, path in enumerate(self._files):
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None or (self.size is not None and image.shape[:2] != tuple(self.size)):
                self._report.frames_damaged += 1
                self._problem(f"{path}: not a readable image" if image is None else
                              f"{path}: {image.shape[1]}x{image.shape[0]}, the first frame "
                              f"{self.size[1]}x{self.size[0]}")
                continue
            if self.size is None:
                self.size = image.shape[:2]
            self._report.frames_read += 1
            yield index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _video_frames(self) -> Iterator[Tuple[int, np.ndarray]]:
        count = 0
        time_base = self._stream.time_base
        try:
            for packet in self._container.demux(self._stream):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as error:
                    self._report.frames_damaged += 1
                    self._problem(f"{self.path}: packet at {packet.pts} does not decode ({_reason(error)})")
                    continue
                for frame in decoded:
                    index = count if frame.pts is None or not time_base else round(
                        float(frame.pts * time_base) * self.fps)
                    count = max(count, index) + 1
                    self._report.frames_read += 1
                    yield index, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as error:  # the container ends inside a packet: a truncated file
            self._problem(f"{self.path}: stream ends early ({_reason(error)})")


def _reason(error: BaseException) -> str:
    """FFmpeg's reason of an av error, on one line."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split())


def _declared_frames(container, stream, fps: float) -> Optional[int]:
    """Frames a container declares: the stream's frame count, else its duration times `fps`, else None."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration is not None and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * fps))
    if container.duration:
        return int(round(container.duration / av.time_base * fps))
    return None


def even_frame(frame: np.ndarray) -> np.ndarray:
    """`frame` [H, W, 3] padded with a black last row / column where H / W is odd (yuv420p wants even sides)."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)))


class VideoWriter:
    """Writes RGB frames to an H.264 MP4 (module docstring); a context manager that finishes the file."""

    def __init__(self, path: str, fps: float):
        """Opens `path` for writing at `fps` frames per second.

        Raises:
          VideoError: the file cannot be created.
        """
        self.path = str(path)
        self.frames_written = 0
        try:
            self._container = av.open(self.path, "w", format="mp4", options={"movflags": "faststart"})
        except (av.error.FFmpegError, OSError) as error:
            raise VideoError(f"{self.path}: cannot write ({_reason(error)})") from None
        try:
            self._stream = self._container.add_stream(CODEC, rate=fractions.Fraction(fps).limit_denominator(1001))
            self._stream.pix_fmt = PIXEL_FORMAT
            self._stream.options = {"crf": CRF, "preset": PRESET}
        except BaseException:
            self._container.close()
            raise
        self._size: Optional[Tuple[int, int]] = None

    def write(self, frame: np.ndarray) -> None:
        """Appends one [H, W, 3] uint8 RGB frame (every frame of a file has the first one's size)."""
        frame = even_frame(np.ascontiguousarray(frame, np.uint8))
        if self._size is None:
            self._size = frame.shape[:2]
            self._stream.height, self._stream.width = self._size
        elif frame.shape[:2] != self._size:
            raise VideoError(f"{self.path}: frame {self.frames_written} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"the video {self._size[1]}x{self._size[0]}")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flushes the encoder and finishes the file."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            if self._size is not None:
                for packet in self._stream.encode():
                    container.mux(packet)
        finally:
            container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str, frames: Iterable[np.ndarray], fps: float) -> int:
    """Writes [H, W, 3] uint8 RGB frames to an H.264 MP4 at `fps`; returns the number written."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.frames_written


def read_frames(path: str) -> Iterator[np.ndarray]:
    """The readable frames of a video file or frame folder, [H, W, 3] uint8 RGB (`VideoSource.frames` without
    their indices)."""
    with VideoSource(path) as source:
        for _, frame in source.frames():
            yield frame
