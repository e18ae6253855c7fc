"""The command-line layer every script shares (docs/operations.md): the gin flags, the inference overrides,
building a task for inference and restoring its network, the one-line error and the JSON last line.

A script is a thin main over library functions:

    FLAGS = flags.FLAGS
    cli.define_gin_flags()
    cli.define_inference_flags()          # scripts that build a model for inference
    flags.DEFINE_string("model_dir", ...)

    def main() -> dict:
        task = cli.inference_task(FLAGS.model_dir)
        ...
        return summary                    # printed as the last stdout line, one JSON object

    if __name__ == "__main__":
        cli.run(main)

`run` turns the errors a user can cause (a missing or unreadable file, bad gin or options, a malformed
annotation file: `USER_ERRORS`) into "error: <one line>" on stderr and exit code 1, without a traceback.
Importing this module does not load TensorFlow (the scripts that write data need none, and TensorFlow's start-up
lines would precede their one-line errors): the functions that build a task import it when called.
"""

import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple, Type

import numpy as np
from absl import app, flags, logging

from personlab_tf import errors, skeleton
from personlab_tf.data.coco import AnnotationError

if TYPE_CHECKING:
    from personlab_tf.task import Detector, Task

FLAGS = flags.FLAGS
# What a user's input or configuration can raise (the scripts' one-line errors); anything else is a bug and
# keeps its traceback.
USER_ERRORS: Tuple[Type[BaseException], ...] = (IOError, ValueError, AnnotationError, app.UsageError)
# The inference options a command line may override, the same set wherever a model is built for inference
# from a run (export_saved_model.py, evaluate.py --model_dir); a flag that does not apply to the task is an
# error (Task.with_inference). calibrate_oracle.py fixes the frame and stride it measures at instead.
INFERENCE_FLAGS = ("max_side", "output_stride", "multi_scale", "decode_stride", "mask_resolution")


def define_gin_flags(what: str = "Gin files, applied in order",
                     example: str = "PersonLabInference.max_side = 801") -> None:
    """--gin_file (repeatable) and --gin_bindings (repeatable); `what` describes the files, `example` is a
    binding the command's help shows."""
    flags.DEFINE_multi_string("gin_file", [], f"{what}.")
    flags.DEFINE_multi_string("gin_bindings", [], f"Gin bindings applied after the files, e.g. \"{example}\" "
                              "(strings quoted).")


def define_inference_flags(when: str = "") -> None:
    """The INFERENCE_FLAGS, each None (the task's gin-configured option) unless given; `when` prefixes their
    help (e.g. "With --model_dir: ")."""
    flags.DEFINE_integer("max_side", None, f"{when}Larger side of the resized image (single scale).")
    flags.DEFINE_integer("output_stride", None, f"{when}PersonLab: output stride of the network (8, 16 or 32).")
    flags.DEFINE_bool("multi_scale", None, f"{when}PersonLab: pyramid 601, 1201, 1801, 2401, maps merged before "
                      "decoding.")
    flags.DEFINE_integer("decode_stride", None, f"{when}PersonLab: stride of Hough voting, decoding and masks on the "
                         "grid (divides the output stride); default: the output stride.")
    flags.DEFINE_enum("mask_resolution", None, ["grid", "image", "hybrid"],
                      f"{when}PersonLab: where Eq. 6 runs: on the decoding grid, on the original pixels, or on the grid "
                      "with the person pixels decided at the original pixels (docs/inference.md).")


def inference_overrides() -> Dict[str, Any]:
    """{option: value} of the INFERENCE_FLAGS that the script defines (`define_inference_flags`, or a flag of
    the same name of its own) and the command line gives."""
    return {name: FLAGS[name].value for name in INFERENCE_FLAGS if name in FLAGS and FLAGS[name].value is not None}


def task_of_gin(files: Sequence[str], bindings: Sequence[str], task_name: Optional[str] = None,
                annotations: Optional[str] = None) -> "Task":
    """The task of gin `files` and `bindings` (registry.parse_gin), or of `task_name` with gin defaults, with the
    skeleton of the `annotations` JSON when one is given and gin binds none (skeleton.bind_annotations_skeleton).

    Raises:
      ValueError: no task bound and none named, or gin's errors; IOError: a gin file does not exist.
    """
    from personlab_tf import config, registry
    bindings = list(bindings)
    if task_name:
        bindings.append(f"experiment.task = @{registry.task_class(task_name).__name__}()")
    registry.parse_gin(files, bindings)
    if annotations:
        logging.info("skeleton from %s", skeleton.bind_annotations_skeleton(annotations))
    try:
        task = config.experiment()
    except RuntimeError:
        raise ValueError("no task: the gin configuration binds no experiment.task (give a gin file that does, e.g. "
                         "a run's operative config, or --task where the command has it)") from None
    logging.info("skeleton %s", task.skeleton.describe())
    return task


def parse_gin(model_dir: Optional[str] = None, bindings: Sequence[str] = ()) -> None:
    """Parses --gin_file (by default, with a `model_dir`, the run's operative config) then --gin_bindings and
    `bindings` (registry.parse_gin: IOError / ValueError)."""
    from personlab_tf import registry
    registry.parse_gin(run_gin_files(model_dir), [*FLAGS.gin_bindings, *bindings])


def run_gin_files(model_dir: Optional[str]) -> Sequence[str]:
    """--gin_file, or by default, with a `model_dir`, the run's operative config (config.run_gin_files)."""
    from personlab_tf import config
    return config.run_gin_files(model_dir, FLAGS.gin_file) if model_dir else FLAGS.gin_file


def inference_task(model_dir: Optional[str] = None, annotations: Optional[str] = None,
                   **overrides: Any) -> "Task":
    """The task of the command line's gin configuration (`run_gin_files`, --gin_bindings; `task_of_gin`), with
    the skeleton of the `annotations` JSON when it is given, and its inference options overridden by the
    command line's INFERENCE_FLAGS, then by `overrides`; ValueError naming an option that does not apply."""
    task = task_of_gin(run_gin_files(model_dir), FLAGS.gin_bindings, annotations=annotations)
    return task.with_inference(**{**inference_overrides(), **overrides})


def restored_detector(task: "Task", model_dir: str) -> Tuple["Detector", str]:
    """(the task's detector over its network rebuilt for inference with the EMA weights of the newest
    checkpoint of `model_dir`, that checkpoint's path); FileNotFoundError without one."""
    from personlab_tf.inference import export
    model, path = export.restore_inference_model(task, model_dir)
    return task.build_detector(model.inference_model()), path


def print_summary(summary: Dict[str, Any]) -> None:
    """Prints `summary` as one JSON line on stdout (numpy scalars as floats): the scripts' last line."""
    print(json.dumps(summary, default=lambda value: float(np.asarray(value))), flush=True)


def report_error(error: BaseException) -> int:
    """Prints "error: <one line>" (errors.one_line) on stderr; returns the exit code, 1."""
    print(f"error: {errors.one_line(error)}", file=sys.stderr, flush=True)
    return 1


def run(main: Callable[..., Optional[Dict[str, Any]]], also: Tuple[Type[BaseException], ...] = (),
        arguments: bool = False) -> None:
    """absl's app.run of a script's `main()` (`main(positional arguments)` when `arguments`, e.g. benchmark.py's
    mode): its summary printed as the last stdout line (`print_summary`; None prints nothing), USER_ERRORS and
    the errors `also` names (e.g. tf.errors.OpError of a damaged video or SavedModel) as one line on stderr with
    exit code 1."""
    def absl_main(argv: Sequence[str]) -> int:
        if len(argv) > 1 and not arguments:
            return report_error(app.UsageError(f"unexpected arguments {' '.join(argv[1:])} (flags are --name=value)"))
        try:
            summary = main(list(argv[1:])) if arguments else main()
        except USER_ERRORS + tuple(also) as error:
            return report_error(error)
        if summary is not None:
            print_summary(summary)
        return 0

    app.run(absl_main)
