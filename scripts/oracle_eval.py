"""Oracle evaluation: ground-truth maps through refinement, decoding and COCO evaluation.

    python scripts/oracle_eval.py --annotations person_keypoints.json --images images/ \
        [--output_stride 8] [--max_side 1401] [--decode_stride S] [--mask_resolution grid|image]
    python scripts/oracle_eval.py --task parts --annotations person_keypoints.json --images images/ \
        [--part_labels DIR] [--part_set synthetic] [--max_side 1401] [--matcher lp|greedy]

Every image with people is read as training does (data.coco -> data.writer record ->
data.decoder), its targets are made by `data.targets.make_targets` at stride = output stride on the
inference frame (larger side max_side, padded to n os + 1), refined with Eq. 2 / Eq. 5, upsampled to
the decoding stride and decoded exactly as the network's maps (`personlab_tf.inference`), mapped back
to original pixels and scored with pycocotools against the same JSON. It is the upper bound of the
decoder. Images without people (and unreadable ones, with a warning) get no detections but count in
the evaluation, as in COCO. The last stdout line is
`{"keypoints_AP": ..., "segm_AP": ..., "images": N}` (N = images evaluated).

`--task parts`: the same for instance-aware part parsing (personlab_tf/parts/oracle.py): the part-parsing
targets of every image with a part label map (default: the `part_labels` folder beside the annotations)
are decoded by the part parser's inference path and scored with personlab_tf/parts/metrics.py; the last
line is `{"APp_50": ..., "APp_vol": ..., "PCP50": ..., "mIoU": ...}`.
"""

import json
import statistics
import sys
import time

import tensorflow as tf
from absl import app, flags, logging

from personlab_tf.data import coco, decoder, writer
from personlab_tf.evaluation import EVALUATORS, PYCOCOTOOLS, Evaluator
from personlab_tf import keys
from personlab_tf.inference import detector, oracle
from personlab_tf.parts import decode as parts_decode, evaluation as parts_evaluation, oracle as parts_oracle, part_sets

FLAGS = flags.FLAGS
flags.DEFINE_string("annotations", None, "COCO person keypoints JSON.", required=True)
flags.DEFINE_string("images", None, "Directory of the JSON's images.", required=True)
flags.DEFINE_integer("output_stride", 8, "Stride of the target maps (the model's output stride).")
flags.DEFINE_integer("max_side", detector.MAX_SIDE, "Larger side of the inference frame.")
flags.DEFINE_integer("decode_stride", detector.DECODE_STRIDE,
                     "Stride of Hough voting, decoding and masks on the grid (divides os); default: os.")
flags.DEFINE_enum("mask_resolution", detector.MASK_RESOLUTION, detector.MASK_RESOLUTIONS,
                  "Where Eq. 6 runs: on the decoding grid or on the original pixels.")
flags.DEFINE_bool("complete_tree", True, "Mid-range maps from the skeleton completed across unlabelled "
                  "keypoints (personlab_tf/inference/oracle.py); --nocomplete_tree: the targets as they are.")
flags.DEFINE_enum("evaluator", PYCOCOTOOLS, EVALUATORS, "COCO evaluation backend.")
flags.DEFINE_string("output_dir", None, "Optional directory for the results JSONs and metrics.")
flags.DEFINE_enum("task", "personlab", ["personlab", "parts"], "PersonLab or instance-aware part parsing.")
flags.DEFINE_string("part_labels", None, "parts: part label PNGs (default: part_labels beside the annotations).")
flags.DEFINE_enum("part_set", "synthetic", sorted(part_sets.PART_SETS), "parts: the classes of the part labels.")
flags.DEFINE_enum("matcher", "lp", parts_decode.MATCHERS, "parts: limb matching, differentiable LP or greedy.")


def oracle_detections(annotations, images_dir, output_stride, max_side, decode_stride, mask_resolution,
                      complete_tree=True):
    """Yields (image_id, numpy detections, decode milliseconds) for every readable image with people."""
    problems = coco.ProblemCounter()
    dataset = coco.load_dataset(annotations, problems)
    run = oracle.decoding_function(output_stride, min(decode_stride or output_stride, output_stride),
                                   mask_resolution)
    for record in coco.iter_image_records(dataset, images_dir, problems):
        sample = decoder.decode_example(tf.constant(writer.image_example(record).SerializeToString()))
        maps, scale = oracle.oracle_maps(sample, max_side, output_stride, complete_tree=complete_tree)
        start = time.perf_counter()
        detections = oracle.to_numpy(run(maps, scale, sample[keys.IMAGE_SIZE]))
        yield record.image_id, detections, (time.perf_counter() - start) * 1e3
    if problems.warnings:
        logging.warning("input problems (%d images skipped): %s", problems.images_skipped, dict(problems.warnings))


def parts_main():
    """The part-parsing oracle; returns the exit code."""
    part_set = part_sets.part_set(FLAGS.part_set)
    labels_dir = FLAGS.part_labels or parts_evaluation.default_part_labels_dir(FLAGS.annotations)
    run = parts_oracle.parsing_function(parts_decode.DecodeOptions(matcher=FLAGS.matcher))
    times = []

    def parse(record, sample):
        maps, scale = parts_oracle.oracle_maps(sample, FLAGS.max_side, part_set)
        start = time.perf_counter()
        detections = {key: value.numpy() for key, value in run(maps, scale, sample[keys.IMAGE_SIZE]).items()}
        times.append((time.perf_counter() - start) * 1e3)
        print(f"image {record.image_id}: {int(detections[keys.NUM_DETECTIONS])} persons, {times[-1]:.0f} ms",
              file=sys.stderr)
        return detections

    problems = coco.ProblemCounter()
    try:
        metrics, _ = parts_evaluation.evaluate(FLAGS.annotations, FLAGS.images, labels_dir, part_set, parse, problems)
    except coco.AnnotationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if problems.warnings:
        logging.warning("input problems: %s", dict(problems.warnings))
    print(json.dumps({**metrics, "median_decode_ms": round(statistics.median(times[1:] or times or [0.0]), 1),
                      "max_side": FLAGS.max_side, "matcher": FLAGS.matcher}))
    print(json.dumps({key: metrics[key] for key in ("APp_50", "APp_vol", "PCP50", "mIoU")}))
    return 0


def main(argv):
    del argv
    if FLAGS.task == "parts":
        return parts_main()
    with open(FLAGS.annotations) as f:
        ground_truth = json.load(f)
    evaluator = Evaluator(ground_truth, output_dir=FLAGS.output_dir, evaluator=FLAGS.evaluator)
    times = []
    for image_id, detections, milliseconds in oracle_detections(
            FLAGS.annotations, FLAGS.images, FLAGS.output_stride, FLAGS.max_side, FLAGS.decode_stride,
            FLAGS.mask_resolution, FLAGS.complete_tree):
        evaluator.add(image_id, detections)
        times.append(milliseconds)
        print(f"image {image_id}: {int(detections[keys.NUM_DETECTIONS])} detections, {milliseconds:.0f} ms",
              file=sys.stderr)
    metrics = evaluator.results()
    decode_ms = statistics.median(times[1:] or times) if times else 0.0  # the first run traces
    print(json.dumps({"keypoints": metrics["keypoints"], "segmentation": metrics.get("segmentation", {}),
                      "images_decoded": len(times), "median_decode_ms": round(decode_ms, 1),
                      "output_stride": FLAGS.output_stride, "max_side": FLAGS.max_side,
                      "decode_stride": min(FLAGS.decode_stride or FLAGS.output_stride, FLAGS.output_stride),
                      "mask_resolution": FLAGS.mask_resolution,
                      "complete_tree": FLAGS.complete_tree}))
    print(json.dumps({"keypoints_AP": metrics["keypoints"]["AP"],
                      "segm_AP": metrics.get("segmentation", {}).get("AP", 0.0),
                      "images": len(ground_truth["images"])}))


if __name__ == "__main__":
    app.run(main)
