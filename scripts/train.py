"""Trains the task of a gin configuration (PersonLab or part parsing: `experiment.task`).

  python scripts/train.py --gin_file gin/smoke.gin --model_dir /tmp/smoke \
      [--gin_bindings "TRAIN_FILES='records/train-*'"] [--num_steps N]

Killing the job and running the same command again resumes from the last checkpoint at the same step.
The last stdout line is a JSON summary (`model_dir` and the last loss terms); an error ends with one line on stderr
and exit code 1 (docs/operations.md).
"""

import json
import sys

from absl import app, flags

from personlab_tf import errors, registry
from personlab_tf.train import trainer

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin configuration files, applied in order.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings overriding the files, e.g. \"train.num_steps = 10\".")
flags.DEFINE_string("model_dir", None, "Directory of checkpoints, summaries and the operative config.")
flags.DEFINE_integer("num_steps", None, "Total training steps (overrides train.num_steps).")
flags.mark_flag_as_required("model_dir")


def main(argv):
    del argv
    bindings = list(FLAGS.gin_bindings)
    if FLAGS.num_steps is not None:
        bindings.append(f"train.num_steps = {FLAGS.num_steps}")
    try:
        registry.parse_gin(FLAGS.gin_file, bindings)
    except (IOError, ValueError) as error:
        print(f"error: bad gin configuration: {errors.one_line(error)}", file=sys.stderr)
        return 1
    try:
        losses = trainer.train(FLAGS.model_dir)
    except (OSError, ValueError) as error:  # no or damaged data, unusable options or checkpoints, changed config
        print(f"error: {errors.one_line(error)}", file=sys.stderr)
        return 1
    print(json.dumps({"model_dir": FLAGS.model_dir, "losses": losses}))
    return 0


if __name__ == "__main__":
    app.run(main)
