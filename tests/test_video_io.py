"""personlab_tf/video/io.py: video files and frame folders read and written with PyAV; damaged input read as far
as it goes and counted; unusable input refused in one line naming the file."""

import fractions

import av
import cv2
import numpy as np
import pytest

from personlab_tf.video import io

from inference_fixtures import textured_image

FRAMES = 12


def clip_frames(count=FRAMES, height=64, width=96):
    """`count` different smooth frames [H, W, 3] uint8 (each its own texture, so frames can be told apart)."""
    return [textured_image(height, width, seed) for seed in range(count)]


def write_with(path, codec, frames, fps=10, pixel_format="yuv420p"):
    """Encodes `frames` with PyAV's `codec` into `path` (its container from the extension)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pixel_format
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def nearest(frame, originals):
    """Index of the original frame closest to `frame` (mean absolute difference)."""
    return int(np.argmin([np.abs(frame.astype(int) - o.astype(int)).mean() for o in originals]))


def grey(frame):
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(float)


def test_round_trip_keeps_frames_order_rate_and_pads_odd_sides(tmp_path):
    frames = clip_frames(height=63, width=81)
    path = tmp_path / "clip.mp4"
    assert io.write_video(str(path), frames, fps=12.5) == FRAMES
    with io.VideoSource(str(path)) as source:
        assert source.fps == 12.5 and source.size == (64, 82) and source.frames_expected == FRAMES
        indices, decoded = zip(*source.frames())
        report = source.report()
    assert (report.frames_read, report.frames_unread, report.problems) == (FRAMES, 0, [])
    assert list(indices) == list(range(FRAMES))
    assert [nearest(frame[:63, :81], frames) for frame in decoded] == list(range(FRAMES))
    for frame, original in zip(decoded, frames):
        assert frame.shape == (64, 82, 3)
        # x264 at CRF 20 keeps the brightness; yuv420p keeps colour at half resolution only
        assert np.abs(grey(frame[:63, :81]) - grey(original)).mean() < 3.0
        assert grey(frame)[63].mean() < 25 and grey(frame)[:, 81].mean() < 25   # the padding: black, a little blurred


@pytest.mark.parametrize("name, codec", [("a.webm", "libvpx-vp9"), ("a.avi", "mpeg4"), ("a.mov", "mpeg4"),
                                         ("a.mkv", "libx264")])
def test_other_containers_and_codecs_are_read(tmp_path, name, codec):
    frames = clip_frames(6)
    write_with(tmp_path / name, codec, frames)
    decoded = list(io.read_frames(str(tmp_path / name)))
    assert [nearest(frame, frames) for frame in decoded] == list(range(6))


def test_a_truncated_video_gives_the_frames_before_the_cut_and_counts_the_rest(tmp_path):
    rng = np.random.default_rng(0)   # noise frames: every frame costs about the same number of bytes
    frames = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(30)]
    io.write_video(str(tmp_path / "full.mp4"), frames, fps=10)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) // 2])   # the index comes first (faststart)
    with io.VideoSource(str(tmp_path / "cut.mp4")) as source:
        decoded = [frame for _, frame in source.frames()]
        report = source.report()
    assert 10 <= report.frames_read <= 20 and report.frames_read == len(decoded)
    assert report.frames_expected == 30 and report.frames_read + report.frames_unread == 30
    assert len(report.problems) == 1 and "cut.mp4" in report.problems[0]


def test_a_damaged_stretch_costs_its_frames_only(tmp_path):
    frames = clip_frames(20)
    write_with(tmp_path / "a.mkv", "mjpeg", frames, pixel_format="yuvj420p")   # every frame stands alone
    data = bytearray((tmp_path / "a.mkv").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 1500] = bytes(1500)   # about one frame's bytes
    (tmp_path / "b.mkv").write_bytes(bytes(data))
    with io.VideoSource(str(tmp_path / "b.mkv")) as source:
        indices, decoded = zip(*source.frames())
        report = source.report()
    order = [nearest(frame, frames) for frame in decoded]
    assert order == sorted(set(order)) and 15 <= len(order) < 20   # in order, no frame twice, a few lost
    assert list(indices) == order   # every frame keeps its index in the video, also after the lost ones
    assert order[:5] == [0, 1, 2, 3, 4] and order[-5:] == [15, 16, 17, 18, 19]   # the damage stays local
    assert report.frames_read == len(decoded) and report.frames_read + report.frames_unread == 20


def test_a_frame_folder_reads_sorted_images_and_skips_unreadable_or_other_sized_ones(tmp_path):
    frames = clip_frames(4)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{index:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (tmp_path / "002.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    cv2.imwrite(str(tmp_path / "004.png"), np.zeros((32, 32, 3), np.uint8))   # another size
    with io.VideoSource(str(tmp_path), folder_fps=25) as source:
        indices, decoded = zip(*source.frames())
        report = source.report()
        assert source.fps == 25.0 and source.size == (64, 96)
    assert [nearest(frame, frames) for frame in decoded] == [0, 1, 3] and list(indices) == [0, 1, 3]
    assert np.array_equal(decoded[0], frames[0])   # PNG: lossless
    assert (report.frames_expected, report.frames_read, report.frames_unread) == (5, 3, 2)
    assert report.problems == [f"{tmp_path / '002.png'}: not a readable image",
                               f"{tmp_path / '004.png'}: 32x32, the first frame 96x64"]


def test_unusable_sources_are_one_line_errors_naming_the_file(tmp_path):
    (tmp_path / "text.mp4").write_bytes(b"hello " * 200)
    with av.open(str(tmp_path / "sound.wav"), "w") as container:   # a file FFmpeg opens, without video
        stream = container.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        audio = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        audio.sample_rate = 8000
        for packet in stream.encode(audio):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (tmp_path / "empty").mkdir()
    io.write_video(str(tmp_path / "h264.mp4"), clip_frames(2), fps=10)   # its codec renamed to one nobody has
    (tmp_path / "codec.mp4").write_bytes((tmp_path / "h264.mp4").read_bytes().replace(b"avc1", b"zzz9"))
    cases = {"missing.mp4": "no such file or folder", "text.mp4": "cannot open as video",
             "sound.wav": "has no video stream", "empty": "no .jpg/.jpeg/.png frames",
             "codec.mp4": "unknown video codec"}
    for name, reason in cases.items():
        with pytest.raises(io.VideoError) as raised:
            io.VideoSource(str(tmp_path / name))
        message = str(raised.value)
        assert message.startswith(f"{tmp_path / name}: ") and reason in message and "\n" not in message


def test_frames_of_another_size_are_refused(tmp_path):
    with io.VideoWriter(str(tmp_path / "a.mp4"), 10) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))
        with pytest.raises(io.VideoError, match="frame 1 is 48x32, the video 32x32"):
            writer.write(np.zeros((32, 48, 3), np.uint8))
    assert len(list(io.read_frames(str(tmp_path / "a.mp4")))) == 1
