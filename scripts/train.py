"""Trains the task of a gin configuration (PersonLab or part parsing: `experiment.task`).

  python scripts/train.py --gin_file gin/smoke.gin --model_dir /tmp/smoke \
      [--gin_bindings "TRAIN_FILES='records/train-*'"] [--num_steps N]

Killing the job and running the same command again resumes from the last checkpoint at the same step.
The last stdout line is a JSON summary (`model_dir` and the last loss terms); an error ends with one line on stderr
and exit code 1 (docs/operations.md).
"""

from absl import flags

from personlab_tf import cli, errors
from personlab_tf.train import trainer

FLAGS = flags.FLAGS
cli.define_gin_flags()
flags.DEFINE_string("model_dir", None, "Directory of checkpoints, summaries and the operative config.", required=True)
flags.DEFINE_integer("num_steps", None, "Total training steps (overrides train.num_steps).")


def main():
    try:
        cli.parse_gin(bindings=[] if FLAGS.num_steps is None else [f"train.num_steps = {FLAGS.num_steps}"])
    except (IOError, ValueError) as error:
        raise ValueError(f"bad gin configuration: {errors.one_line(error)}") from None
    # OSError / ValueError: no or damaged data, unusable options or checkpoints, a changed configuration.
    return {"model_dir": FLAGS.model_dir, "losses": trainer.train(FLAGS.model_dir)}


if __name__ == "__main__":
    cli.run(main)
