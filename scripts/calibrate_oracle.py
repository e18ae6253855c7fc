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

from absl import flags

from personlab_tf import cli
from personlab_tf.tasks.personlab import calibration, noise as noise_lib

FLAGS = flags.FLAGS
cli.define_gin_flags("Gin files of the run (default: its operative config)")
flags.DEFINE_string("model_dir", None, "The trained run (its newest checkpoint).", required=True)
flags.DEFINE_string("annotations", None, "COCO JSON of the images to measure on.", required=True)
flags.DEFINE_string("images", None, "Directory of its images.", required=True)
flags.DEFINE_integer("max_side", 641, "Larger side of the frame (the export's --max_side); the maps are measured "
                     "at output stride 8 (calibration.OUTPUT_STRIDE).")
flags.DEFINE_integer("max_images", None, "Measure only the first N images with people.")
flags.DEFINE_enum("measure", "network", ["network", "oracle"], "Whose maps to measure: the trained network's, "
                  "or the realistic oracle's (the check of the noise model).")
flags.DEFINE_integer("noise_seed", 0, "With --measure oracle: the seed of the oracle's degradation.")
flags.DEFINE_float("offset_extent", noise_lib.MapNoise.offset_extent, "Short- and mid-range offsets are measured "
                   "out to this many R from each keypoint (the targets' disks widened; MapNoise.offset_extent).")


def main():
    task = cli.inference_task(FLAGS.model_dir, max_side=FLAGS.max_side, output_stride=calibration.OUTPUT_STRIDE)
    detector = None
    if FLAGS.measure == "network":
        detector, _ = cli.restored_detector(calibration.raw_task(task), FLAGS.model_dir)
    statistics, count = calibration.measure(task, FLAGS.annotations, FLAGS.images, FLAGS.max_side, detector,
                                            FLAGS.max_images, FLAGS.offset_extent, FLAGS.noise_seed)
    tables = statistics.tables()
    print(json.dumps(tables, indent=1), file=sys.stderr)
    fitted = statistics.fit(FLAGS.offset_extent, tables)
    return {"measure": FLAGS.measure, "images": count, "radius": task.options.data.disk_radius,
            "max_side": FLAGS.max_side, "measured": tables, "fitted": dataclasses.asdict(fitted)}


if __name__ == "__main__":
    cli.run(main)
