"""PersonLab's benchmarks of scripts/benchmark.py (targets, decode, serve; docs/decoding.md, docs/inference.md):
the training map per sample, decoding of perfect maps per decode stride and mask resolution as the detector runs
it, and the SavedModel's latency against the bare backbone. Medians of repeated runs (evaluation/timing.py)."""

import dataclasses
import os
import sys
import tempfile
import time
from typing import Any, Dict, List, Sequence

import numpy as np
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import coco_format, synthetic, writer
from personlab_tf.evaluation.timing import FRAME_HEIGHT, FRAME_WIDTH, interleaved_medians, median_ms
from personlab_tf.inference import serving
from personlab_tf.tasks.personlab import detector, oracle, synthetic_maps
from personlab_tf.tasks.personlab.decode import decode
from personlab_tf.tasks.personlab.model import PersonLabNetwork
from personlab_tf.tasks.personlab.targets import PersonLabData
from personlab_tf.tasks.personlab.task import PersonLabTask

# The decoding benchmark's maps: perfect maps of the benchmark frame at output stride 8.
DECODE_STRIDE = 8
# The decoding variants of docs/decoding.md §7: name -> (decode stride, mask resolution, extra gin bindings).
# Eq. 5's variants change the refinement (no weights), not the decoding's cost.
DECODE_VARIANTS = {
    **{f"s{stride}_{masks}": (stride, masks, ()) for stride in (8, 4, 2) for masks in ("grid", "hybrid", "image")},
    "s4_hybrid_eq5_1_2": (4, "hybrid", ("PersonLabNetwork.refine_long_steps = (1, 2)",)),
    "s4_hybrid_eq5_0_2": (4, "hybrid", ("PersonLabNetwork.refine_long_steps = (0, 2)",)),
    "s4_hybrid_eq5_gate_1": (4, "hybrid", ("PersonLabNetwork.refine_long_gate = 1.0",)),
}


def synthetic_record(num_persons: int, height: int, width: int, seed: int) -> bytes:
    """One serialized record of a synthetic image with `num_persons` people, made by the real writer."""
    with tempfile.TemporaryDirectory() as directory:
        synthetic.generate_dataset(directory, 1, seed, num_persons=num_persons, size=(height, width))
        prefix = os.path.join(directory, "records")
        writer.convert(os.path.join(directory, coco_format.ANNOTATIONS_FILE),
                       os.path.join(directory, coco_format.IMAGES_DIR), prefix)
        return next(iter(tf.data.TFRecordDataset(writer.shard_paths(prefix, 1)))).numpy()


def targets_benchmark(crop_size: int, target_stride: int, people: Sequence[str], height: int, width: int,
                      repeats: int) -> Dict[str, Any]:
    """{"targets_ms": {people: median ms}}: the training map (decode, augment, targets) of one serialized
    synthetic `height` x `width` image per person count of `people`, crop `crop_size`, target stride
    `target_stride` (one core's worth: no parallel calls)."""
    task = PersonLabTask(data=PersonLabData(crop_size, target_stride))
    example = tf.function(lambda serialized, seed: task.make_example(serialized, seed, True))
    results = {}
    for count in people:
        record = tf.constant(synthetic_record(int(count), height, width, int(count)))
        seeds = iter(range(10**6))

        def run():
            _, targets = example(record, tf.constant([0, next(seeds)], tf.int64))
            targets[keys.Map.HEATMAPS].numpy()

        results[count] = round(median_ms(run, repeats), 2)
        print(f"{count:>3} people: {results[count]:.1f} ms/sample", file=sys.stderr)
    return {"targets_ms": results}


def decode_benchmark(variants: Sequence[str], people: Sequence[str], repeats: int,
                     measured: Sequence[str] = ()) -> Dict[str, Any]:
    """Decoding of perfect 801 x 529 maps at output stride 8 (one image, tf.functions) as the detector runs it
    (maps upsampled to the decoding grid, `Detector.detect_grid_maps`): poses only and the full decode with
    masks, for every "stride:resolution" pair of `variants`, of the DECODE_VARIANTS named in `measured`, and of
    the PersonLabInference defaults (always; "poses" and "full" are their times), each with every person count
    of `people`; medians of `repeats` interleaved runs.

    Returns:
      {"decode_ms": {path: {people: ms}}, "defaults": {"decode_stride", "mask_resolution"}}.
    """
    skeleton = synthetic_maps.SKELETON
    specs = oracle.map_specs(skeleton)
    radius = 32.0
    size = tf.constant([FRAME_HEIGHT, FRAME_WIDTH])
    default = detector.PersonLabInference(output_stride=DECODE_STRIDE)
    pairs = dict.fromkeys([*variants, *(f"{DECODE_VARIANTS[name][0]}:{DECODE_VARIANTS[name][1]}" for name in measured),
                           f"{default.grid_stride}:{default.mask_resolution}"])
    paths = {}
    for stride, resolution in (pair.split(":") for pair in pairs):
        stride = int(stride)

        def grid(maps, stride=stride):
            """The maps [1, h, w, ...] on the decoding grid of `stride`, as the detector upsamples them."""
            return detector.upsample_maps({key: value[tf.newaxis] for key, value in maps.items()}, DECODE_STRIDE,
                                          stride)

        paths[f"poses_s{stride}"] = tf.function(
            lambda maps, stride=stride, grid=grid: decode({key: value[0] for key, value in grid(maps).items()},
                                                          stride, radius, skeleton, with_masks=False),
            input_signature=[specs])
        # The detector's own path from the maps on its decoding grid (no network: the maps are given).
        full = detector.Detector(None, radius, skeleton, dataclasses.replace(
            default, decode_stride=stride, mask_resolution=resolution))
        paths[f"full_s{stride}_{resolution}"] = tf.function(
            lambda maps, grid=grid, full=full: full.detect_grid_maps(grid(maps), 1.0, size),
            input_signature=[specs])
    functions, counts = {}, {}
    for count in people:
        persons = synthetic_maps.scene_keypoints(int(count), FRAME_HEIGHT, FRAME_WIDTH, seed=int(count))
        maps = {key: tf.constant(value) for key, value in synthetic_maps.perfect_maps(
            persons, FRAME_HEIGHT, FRAME_WIDTH, DECODE_STRIDE).items()}
        counts[count] = int(paths[f"poses_s{default.grid_stride}"](maps)[keys.Detection.NUM_DETECTIONS])
        for path, function in paths.items():
            output = keys.Detection.MASKS if path.startswith("full") else keys.Detection.NUM_DETECTIONS
            functions[(path, count)] = lambda maps=maps, function=function, output=output: function(maps)[output].numpy()
    medians = interleaved_medians(functions, repeats)
    results = {path: {count: round(medians[(path, count)], 2) for count in people} for path in paths}
    results["poses"] = results[f"poses_s{default.grid_stride}"]
    results["full"] = results[f"full_s{default.grid_stride}_{default.mask_resolution}"]
    for count in people:
        print(f"{count:>3} people ({counts[count]} detected): "
              + ", ".join(f"{path} {results[path][count]:.1f} ms" for path in paths), file=sys.stderr)
    return {"decode_ms": results, "defaults": {"decode_stride": default.grid_stride,
                                               "mask_resolution": default.mask_resolution}}


def variant_bindings(name: str) -> List[str]:
    """The gin bindings of a DECODE_VARIANTS entry."""
    stride, masks, extra = DECODE_VARIANTS[name]
    return [f"PersonLabInference.decode_stride = {stride}", f"PersonLabInference.mask_resolution = '{masks}'",
            *extra]


def jpeg_bytes(height: int, width: int, seed: int = 0) -> bytes:
    """An encoded JPEG of a smooth random picture."""
    rng = np.random.default_rng(seed)
    small = tf.constant(rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3)), tf.float32)
    picture = tf.cast(tf.image.resize(small[tf.newaxis], [height, width])[0], tf.uint8)
    return tf.io.encode_jpeg(picture, quality=90).numpy()


def serve_benchmark(backbone_name: str, output_stride: int, repeats: int) -> Dict[str, Any]:
    """SavedModel latency (encoded JPEG -> detections) vs the bare backbone forward at 801 x 529, and the
    inference network's forward plain vs compiled by XLA (`xla_ratio`: compiled over plain): a `backbone_name`
    network at `output_stride` with random weights, exported with max_side 801; medians of `repeats`
    interleaved runs."""
    network = PersonLabNetwork(backbone_name, output_stride, auxiliary_heads=False)
    task = PersonLabTask(network=network, inference=detector.PersonLabInference(output_stride, max_side=FRAME_WIDTH))
    model = task.build_model(inference=True)
    inference = model.inference_model()
    run = task.build_detector(inference)
    backbone = tf.function(model.backbone, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    pixels = tf.cast(tf.io.decode_jpeg(jpeg_bytes(FRAME_HEIGHT, FRAME_WIDTH)), tf.float32)[tf.newaxis]

    def forward_call(jit):
        """The inference forward on `pixels`, plain or compiled by XLA, its outputs fetched."""
        function = tf.function(lambda images: inference(images, training=False), jit_compile=jit)
        return lambda: [t.numpy() for t in function(pixels).values()]

    forward = {jit: forward_call(jit) for jit in (False, True)}
    first_ms = {jit: median_ms(call, repeats=1, warmup=0) for jit, call in forward.items()}
    request = tf.constant([jpeg_bytes(FRAME_HEIGHT, FRAME_WIDTH)])
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        serving.export(run, directory, {"task": task.name, "config": task.config()})
        print(f"exported in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        serve = tf.saved_model.load(directory).signatures[serving.SERVING_DEFAULT]
        outputs = serve(images=request)
        print(f"{int(outputs[keys.Detection.NUM_DETECTIONS][0])} detections, "
              f"masks {outputs[keys.Detection.MASKS].shape}", file=sys.stderr)
        medians = interleaved_medians({
            "serve": lambda: serve(images=request)[keys.Detection.MASKS].numpy(),
            "backbone": lambda: [t.numpy() for t in backbone(pixels)],
            "forward": forward[False],
            "forward_xla": forward[True],
        }, repeats)
    return {"serve_ms": round(medians["serve"], 1), "backbone_ms": round(medians["backbone"], 1),
            "ratio": round(medians["serve"] / medians["backbone"], 3), "forward_ms": round(medians["forward"], 1),
            "forward_xla_ms": round(medians["forward_xla"], 1),
            "xla_ratio": round(medians["forward_xla"] / medians["forward"], 3),
            "forward_first_call_ms": round(first_ms[False], 1), "forward_xla_first_call_ms": round(first_ms[True], 1)}
