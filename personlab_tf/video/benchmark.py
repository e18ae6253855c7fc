"""The video benchmark of scripts/benchmark.py video (docs/video.md): frames/s of the video path
(scripts/track_video.py) with reading, inference and writing overlapped, the same path one stage after the other,
and the frames predicted as separate images the way scripts/predict.py does; and each stage's milliseconds."""

import glob
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, Sequence

import tensorflow as tf

from personlab_tf import registry
from personlab_tf.data import coco_format, synthetic_video
from personlab_tf.inference import overlay, predict, serving
from personlab_tf.task import Task
from personlab_tf.video import io as video_io
from personlab_tf.video import pipeline as video_pipeline
from personlab_tf.video.tracker import Tracker


def separate_images(serve: Any, task: Task, image_dir: str, output_dir: str) -> int:
    """scripts/predict.py's work (inference/predict.py) on every JPEG of `image_dir`: the file's bytes through
    `serving_default`, the decoded image, COCO results, the overlay PNGs. Returns the number of images."""
    paths = sorted(glob.glob(os.path.join(image_dir, "*.jpg")))
    return predict.predict_images(paths, task, serve, output_dir)["images_processed"]


def video_path(loaded: Any, task: Task, video: str, output_dir: str, overlap: bool) -> int:
    """The video command's work (scripts/track_video.py) on `video`; returns the number of frames."""
    with video_io.VideoSource(video) as source, \
            video_io.VideoWriter(os.path.join(output_dir, "tracked.mp4"), source.fps) as out:
        recorder = video_pipeline.Recorder(task.skeleton, out)
        return video_pipeline.run(source.frames(), video_pipeline.saved_model_detector(loaded, task),
                                  Tracker(task.skeleton), recorder, overlap=overlap)


def video_stage_ms(loaded: Any, task: Task, video: str, output_dir: str) -> Dict[str, float]:
    """Median milliseconds per frame of each stage of the video path run one after the other: decoding the
    frame, the SavedModel, the tracker, the COCO results, drawing the overlay, encoding it."""
    detect = video_pipeline.saved_model_detector(loaded, task)
    tracker = Tracker(task.skeleton)
    times = {name: [] for name in ("decode", "inference", "tracker", "results", "overlay", "encode")}

    def timed(name, function):
        start = time.perf_counter()
        value = function()
        times[name].append((time.perf_counter() - start) * 1e3)
        return value

    with video_io.VideoSource(video) as source, \
            video_io.VideoWriter(os.path.join(output_dir, "stages.mp4"), source.fps) as out:
        frames = source.frames()
        while True:
            read = timed("decode", lambda: next(frames, None))
            if read is None:
                times["decode"].pop()   # the end of the stream, not a frame
                break
            index, image = read
            detections = timed("inference", lambda: detect(image))
            tracked = video_pipeline.TrackedFrame(index, image, detections,
                                                  timed("tracker", lambda: tracker.update(detections)))
            timed("results", lambda: video_pipeline.frame_results(tracked, task.skeleton))
            picture = timed("overlay", lambda: video_pipeline.overlay_frame(tracked, task.skeleton, overlay.MIN_SCORE))
            timed("encode", lambda: out.write(picture))
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def video_benchmark(saved_model: str, sizes: Sequence[str], num_frames: int, rounds: int) -> Dict[str, Any]:
    """Frames/s of the video path overlapped, sequential and as separate images (interleaved, medians of
    `rounds`) and the per-stage milliseconds, on a synthetic clip of `num_frames` frames of each "HxW" of
    `sizes`, with the SavedModel at `saved_model` (FileNotFoundError naming it when absent)."""
    if not os.path.isdir(saved_model):
        raise FileNotFoundError(f"video: no SavedModel at {saved_model} (run make demo, or give --video_saved_model)")
    loaded = tf.saved_model.load(saved_model)
    task = registry.task_of_saved_model(loaded)
    serve = loaded.signatures[serving.SERVING_DEFAULT]
    measured = {}
    for size in sizes:
        height, width = (int(side) for side in size.split("x"))
        with tempfile.TemporaryDirectory() as directory:
            clip = os.path.join(directory, "clip")
            synthetic_video.generate_clip(clip, seed=0, index=0, num_frames=num_frames, size=(height, width))
            video = os.path.join(clip, synthetic_video.VIDEO_FILE)
            image_dir = os.path.join(clip, coco_format.IMAGES_DIR)
            ways = {
                "video_overlapped": lambda out: video_path(loaded, task, video, out, overlap=True),
                "video_sequential": lambda out: video_path(loaded, task, video, out, overlap=False),
                "separate_images": lambda out: separate_images(serve, task, image_dir, out),
            }
            seconds = {name: [] for name in ways}
            for way in ways.values():  # warm-up: tracing of both signatures at this size
                way(tempfile.mkdtemp(dir=directory))
            for round_ in range(rounds):
                for name, way in ways.items():
                    out = tempfile.mkdtemp(dir=directory)
                    start = time.perf_counter()
                    frames = way(out)
                    seconds[name].append(time.perf_counter() - start)
                    print(f"{size} round {round_ + 1} {name}: {frames / seconds[name][-1]:.2f} frames/s",
                          file=sys.stderr)
            stages = video_stage_ms(loaded, task, video, directory)
        rates = {name: round(frames / statistics.median(times), 2) for name, times in seconds.items()}
        measured[size] = {"frames_per_s": rates, "stage_ms": stages,
                          "overlapped_over_separate": round(rates["video_overlapped"] / rates["separate_images"], 3),
                          "overlapped_over_sequential": round(rates["video_overlapped"] / rates["video_sequential"], 3)}
        print(f"{size}: {measured[size]}", file=sys.stderr)
    first = measured[sizes[0]]
    return {"frames": num_frames, "overlapped_over_separate": first["overlapped_over_separate"],
            "overlapped_over_sequential": first["overlapped_over_sequential"], "sizes": measured,
            "saved_model": saved_model, "cpus": os.cpu_count()}
