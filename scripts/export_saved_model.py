"""Exports the newest checkpoint of a training run as a SavedModel of its task (docs/inference.md).

    python scripts/export_saved_model.py --model_dir runs/r101 --export_dir exports/r101 \
        [--gin_file gin/personlab_resnet101.gin] [--gin_bindings ...] [--max_side 1401] \
        [--output_stride 8] [--multi_scale] [--decode_stride S] [--mask_resolution grid|image|hybrid] [--max_pixels N]

The task and its options come from the gin configuration (by default the run's `operative_config.gin`);
the flags given override the task's inference options (PersonLab: all of them; part parsing:
--max_side only; a flag that does not apply to the task is an error). The network is rebuilt as exported
(PersonLab: at --output_stride), restored from the newest checkpoint and given the Polyak (EMA) averages
of the weights. Signatures: `serving_default` (encoded images [B] string) and `serving_image` (uint8
[B, H, W, 3]); images above --max_pixels pixels are refused (InvalidArgument); the SavedModel records its task,
its options and that limit (`metadata()`). Auxiliary heads are not
exported. The last stdout line is a JSON summary.
"""

import json
import sys

from absl import app, flags

from personlab_tf import config, errors, registry
from personlab_tf.inference import export, serving

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training directory holding the checkpoints.", required=True)
flags.DEFINE_string("export_dir", None, "SavedModel directory to write.", required=True)
flags.DEFINE_multi_string("gin_file", [], "Gin files of the run (default: model_dir/operative_config.gin).")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
flags.DEFINE_integer("max_side", None, "Larger side of the resized image (single scale).")
flags.DEFINE_integer("output_stride", None, "PersonLab: output stride of the exported network (8, 16 or 32).")
flags.DEFINE_bool("multi_scale", None, "PersonLab: pyramid 601, 1201, 1801, 2401, maps merged before decoding.")
flags.DEFINE_integer("decode_stride", None,
                     "PersonLab: stride of Hough voting, decoding and masks on the grid (divides os); default: os.")
flags.DEFINE_enum("mask_resolution", None, ["grid", "image", "hybrid"],
                  "PersonLab: where Eq. 6 runs: on the decoding grid, on the original pixels, or on the grid "
                  "with the person pixels decided at the original pixels (docs/inference.md).")
flags.DEFINE_integer("max_pixels", serving.DEFAULT_MAX_PIXELS,
                     "The largest image (height x width) the SavedModel accepts; larger ones are an "
                     "InvalidArgument error (docs/operations.md).", lower_bound=1)

INFERENCE_FLAGS = ("max_side", "output_stride", "multi_scale", "decode_stride", "mask_resolution")


def main(argv):
    del argv
    overrides = {name: FLAGS[name].value for name in INFERENCE_FLAGS if FLAGS[name].value is not None}
    try:
        registry.parse_gin(config.run_gin_files(FLAGS.model_dir, FLAGS.gin_file), FLAGS.gin_bindings)
        task = config.experiment().with_inference(**overrides)
        summary = export.export_checkpoint(task, FLAGS.model_dir, FLAGS.export_dir, FLAGS.max_pixels)
    except (IOError, ValueError) as error:  # no or unusable checkpoints, bad gin or options
        print(f"error: {errors.one_line(error)}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    app.run(main)
