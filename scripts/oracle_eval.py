"""Oracle evaluation: ground-truth maps through the inference path and the task's metrics.

    python scripts/oracle_eval.py --annotations person_keypoints.json --images images/ \
        [--task personlab|parts] [--gin_file ...] [--gin_bindings ...] [--part_labels DIR]

Every image of the JSON is read as training reads it (data/coco.py -> data/coco_records.py -> data/decoder.py); its
training targets are made on the inference frame the detector would see, at the network's output stride,
and decoded exactly as the network's maps (tasks/*/oracle.py): the upper bound of the decoder and the
end-to-end check of targets, geometry, decoding and evaluation. The task's options come from gin
(`--gin_file` of a run, or the defaults; `--task` picks the task when no gin file binds one), e.g.
PersonLab's frame and strides with `--gin_bindings "PersonLabInference.max_side = 1401"`. Images without
people (PersonLab) get no detections but count, as in COCO; unreadable ones are skipped with a warning and
counted. The last stdout line is the task's headline with `images` and `median_image_ms` (targets and decoding
of one image); the line
before it holds every metric.
"""

import json
import statistics
import sys
import time

from absl import flags, logging

from personlab_tf import cli, registry
from personlab_tf.data import coco, coco_problems
from personlab_tf.evaluation import EVALUATORS, PYCOCOTOOLS

FLAGS = flags.FLAGS
cli.define_gin_flags("Gin files configuring the task (e.g. a run's operative config)")
flags.DEFINE_string("annotations", None, "COCO person keypoints JSON.", required=True)
flags.DEFINE_string("images", None, "Directory of the JSON's images.", required=True)
flags.DEFINE_enum("task", None, sorted(registry.TASKS), "The task, when no gin file binds experiment.task.")
flags.DEFINE_string("part_labels", None, "Part parsing: part label PNGs (default: part_labels beside the JSON).")
flags.DEFINE_enum("evaluator", PYCOCOTOOLS, EVALUATORS, "COCO evaluation backend (PersonLab).")
flags.DEFINE_string("output_dir", None, "Optional directory for the results and metrics files.")
flags.DEFINE_enum("map_noise", "none", ["none", "realistic"], "Perfect maps, or maps degraded the way a trained "
                  "network errs (PersonLab: tasks/personlab/noise.py MapNoise, calibrated; docs/decoding.md).")
flags.DEFINE_integer("noise_seed", 0, "With --map_noise realistic: the seed of the degradation.")


def main():
    problems = coco_problems.ProblemCounter()
    task = cli.task_of_gin(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.task, FLAGS.annotations)
    ground_truth = coco.ground_truth(coco.load_dataset(FLAGS.annotations, coco_problems.ProblemCounter(),
                                                       skeleton=task.skeleton))
    evaluator = task.evaluator(ground_truth, FLAGS.output_dir, FLAGS.evaluator)
    times = []
    for image in task.evaluation_images(FLAGS.annotations, FLAGS.images, FLAGS.part_labels, problems):
        start = time.perf_counter()
        detections = task.oracle_detections(image.record, None if FLAGS.map_noise == "none" else FLAGS.noise_seed)
        times.append((time.perf_counter() - start) * 1e3)
        evaluator.add(image, detections)
        print(f"image {image.image_id}: {int(detections['num_detections'])} detections, {times[-1]:.0f} ms",
              file=sys.stderr)
    if problems.warnings:
        logging.warning("input problems (%d images skipped): %s", problems.images_skipped, dict(problems.warnings))
    results = evaluator.results()
    image_ms = round(statistics.median(times[1:] or times), 1) if times else 0.0  # the first run traces
    print(json.dumps({"task": task.name, "metrics": results, "map_noise": FLAGS.map_noise,
                      "noise_seed": FLAGS.noise_seed, "config": task.config()}))
    return {**evaluator.headline(results), "images": len(times), "images_skipped": problems.images_skipped,
            "skeleton": task.skeleton.name, "median_image_ms": image_ms}


if __name__ == "__main__":
    cli.run(main)
