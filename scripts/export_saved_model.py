"""Exports the newest checkpoint of a training run as a SavedModel (DESIGN §6, docs/inference.md).

    python scripts/export_saved_model.py --model_dir runs/r101 --export_dir exports/r101 \
        [--gin_file gin/personlab_resnet101.gin] [--gin_bindings ...] [--max_side 1401] \
        [--output_stride 8] [--multi_scale]

The model is built from the gin configuration (by default the run's `operative_config.gin`),
rebuilt at `--output_stride`, restored from the newest checkpoint, and given the Polyak (EMA)
averages of the weights. A part-parsing run (`train.task = 'parts'`) exports the part parser instead
(single scale; --output_stride, --multi_scale, --decode_stride and --mask_resolution do not apply;
decoding settings: gin `parts_decode_options`). Signatures: `serving_default` (encoded images [B] string) and
`serving_image` (uint8 [B, H, W, 3]). Auxiliary heads are not exported. The last stdout line is a JSON
summary.
"""

import json
import sys

from absl import app, flags

from personlab_tf import config
from personlab_tf.inference import detector, export

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training directory holding the checkpoints.", required=True)
flags.DEFINE_string("export_dir", None, "SavedModel directory to write.", required=True)
flags.DEFINE_multi_string("gin_file", [], "Gin files of the run (default: model_dir/operative_config.gin).")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
flags.DEFINE_integer("max_side", detector.MAX_SIDE, "Larger side of the resized image (single scale).")
flags.DEFINE_integer("output_stride", 8, "Output stride of the exported network (8, 16 or 32).")
flags.DEFINE_bool("multi_scale", False, "Multi-scale pyramid 601, 1201, 1801, 2401, maps merged before decoding.")
flags.DEFINE_integer("decode_stride", detector.DECODE_STRIDE,
                     "Stride of Hough voting, decoding and masks on the grid (divides os); default: os.")
flags.DEFINE_enum("mask_resolution", detector.MASK_RESOLUTION, detector.MASK_RESOLUTIONS,
                  "Where Eq. 6 runs: on the decoding grid or on the original pixels.")


def main(argv):
    del argv
    try:
        config.parse_gin(export.default_gin_files(FLAGS.model_dir, FLAGS.gin_file), FLAGS.gin_bindings)
        if export.training_task() == "parts":
            summary = export.export_parts_checkpoint(FLAGS.model_dir, FLAGS.export_dir, FLAGS.max_side)
        else:
            summary = export.export_checkpoint(FLAGS.model_dir, FLAGS.export_dir, FLAGS.output_stride,
                                               FLAGS.max_side, FLAGS.multi_scale, decode_stride=FLAGS.decode_stride,
                                               mask_resolution=FLAGS.mask_resolution)
    except (IOError, ValueError) as error:  # no checkpoint (FileNotFoundError), bad gin or options
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    app.run(main)
