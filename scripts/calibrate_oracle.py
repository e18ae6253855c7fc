"""Measures a trained PersonLab network's maps against the targets, for the realistic oracle (docs/decoding.md).

  python scripts/calibrate_oracle.py --model_dir outputs/demo/model --annotations VAL/person_keypoints.json \
      --images VAL/images [--max_side 641] [--gin_file ...] [--max_images N] [--offset_extent 2]
      [--measure oracle [--noise_seed 0]]

`--measure oracle` measures the realistic oracle's own maps (tasks/personlab/oracle.py with the MapNoise
defaults, before refinement) in the same way instead of the network's: the check that the noise model
reproduces the network's figures (docs/decoding.md). The run's gin still gives the task and its radius.

The measurements and the fit are tasks/personlab/calibration.py's. The tables go to stderr; the last stdout
line holds the measurements and the fitted MapNoise as JSON (its fields are the gin bindings of
tasks/personlab/noise.py's MapNoise that reproduce it).
"""

import dataclasses
import json
import sys

from absl import app, flags

from personlab_tf import config, errors, keys, registry
from personlab_tf.data import coco_problems
from personlab_tf.inference import export
from personlab_tf.tasks.personlab import calibration, noise as noise_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "The trained run (its newest checkpoint).", required=True)
flags.DEFINE_multi_string("gin_file", [], "Gin files of the run (default: its operative config).")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
flags.DEFINE_string("annotations", None, "COCO JSON of the images to measure on.", required=True)
flags.DEFINE_string("images", None, "Directory of its images.", required=True)
flags.DEFINE_integer("max_side", 641, "Larger side of the frame (the export's --max_side).")
flags.DEFINE_integer("max_images", None, "Measure only the first N images with people.")
flags.DEFINE_enum("measure", "network", ["network", "oracle"], "Whose maps to measure: the trained network's, "
                  "or the realistic oracle's (the check of the noise model).")
flags.DEFINE_integer("noise_seed", 0, "With --measure oracle: the seed of the oracle's degradation.")
flags.DEFINE_float("offset_extent", noise_lib.MapNoise.offset_extent, "Short- and mid-range offsets are measured "
                   "out to this many R from each keypoint (the targets' disks widened; MapNoise.offset_extent).")


def main(argv):
    del argv
    try:
        registry.parse_gin(config.run_gin_files(FLAGS.model_dir, FLAGS.gin_file), FLAGS.gin_bindings)
        task = config.experiment().with_inference(max_side=FLAGS.max_side, output_stride=calibration.OUTPUT_STRIDE)
        if FLAGS.measure == "network":
            model, _ = export.restore_inference_model(calibration.raw_task(task), FLAGS.model_dir)
            network = task.build_detector(model.inference_model())
    except (IOError, ValueError) as error:
        print(f"error: {errors.one_line(error)}", file=sys.stderr)
        return 1
    radius, extent = task.data.disk_radius, FLAGS.offset_extent
    statistics = calibration.Statistics(radius)
    problems = coco_problems.ProblemCounter()
    count = 0
    for image in task.evaluation_images(FLAGS.annotations, FLAGS.images, None, problems):
        if image.record.keypoints.shape[0] == 0:
            continue
        if FLAGS.max_images is not None and count >= FLAGS.max_images:
            break
        sample, made, wide, keypoints, labelled = calibration.image_targets(image.record, task.skeleton,
                                                                            FLAGS.max_side, radius, extent)
        if FLAGS.measure == "network":
            maps, _ = network.frame_maps(sample[keys.Sample.IMAGE], FLAGS.max_side)
            predicted = {key: value[0].numpy() for key, value in maps.items()}
        else:
            predicted = calibration.oracle_maps(image.record, task.skeleton, FLAGS.max_side, radius,
                                                FLAGS.noise_seed)
        statistics.add(made, wide, predicted, keypoints, labelled)
        count += 1
    tables = statistics.tables()
    print(json.dumps(tables, indent=1), file=sys.stderr)
    try:
        fitted = statistics.fit(extent, tables)
    except ValueError as error:
        print(f"error: {errors.one_line(error)}", file=sys.stderr)
        return 1
    print(json.dumps({"measure": FLAGS.measure, "images": count, "radius": radius, "max_side": FLAGS.max_side,
                      "measured": tables, "fitted": dataclasses.asdict(fitted)}))
    return 0


if __name__ == "__main__":
    app.run(main)
