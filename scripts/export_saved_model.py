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

from absl import flags

from personlab_tf import cli
from personlab_tf.inference import export, serving

FLAGS = flags.FLAGS
cli.define_gin_flags("Gin files of the run (default: model_dir/operative_config.gin)")
cli.define_inference_flags()
flags.DEFINE_string("model_dir", None, "Training directory holding the checkpoints.", required=True)
flags.DEFINE_string("export_dir", None, "SavedModel directory to write.", required=True)
flags.DEFINE_integer("max_pixels", serving.DEFAULT_MAX_PIXELS,
                     "The largest image (height x width) the SavedModel accepts; larger ones are an "
                     "InvalidArgument error (docs/operations.md).", lower_bound=1)


def main():
    task = cli.inference_task(FLAGS.model_dir)
    return export.export_checkpoint(task, FLAGS.model_dir, FLAGS.export_dir, FLAGS.max_pixels)


if __name__ == "__main__":
    cli.run(main)
