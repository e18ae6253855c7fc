"""Training checkpoint -> model with the Polyak (EMA) weights -> SavedModel (scripts/export_saved_model.py)."""

import dataclasses
import os

import gin

from personlab_tf import config
from personlab_tf.constants import DISK_RADIUS
from personlab_tf.inference import detector as detector_lib, serving
from personlab_tf.model import personlab
from personlab_tf.parts import decode as parts_decode, detector as parts_detector, model as parts_model
from personlab_tf.train import checkpoints

OPERATIVE_CONFIG = "operative_config.gin"  # written next to the checkpoints by train.trainer


def restore_averaged(model, model_dir):
    """Restores the newest checkpoint of `model_dir` into `model` and writes the EMA weights into it.

    The optimizer comes from the gin builder (`build_optimizer`), so the gin configuration of the training
    run must be parsed first. The checkpoint holds the raw weights and, in the optimizer, their Polyak
    averages, which `checkpoints.use_averaged_weights` writes into the model.

    Returns:
      the checkpoint path.

    Raises:
      FileNotFoundError: `model_dir` has no checkpoint.
    """
    optimizer = personlab.build_optimizer()
    checkpoint = checkpoints.build_checkpoint(model, optimizer)
    path = checkpoints.restore_latest(checkpoint, model_dir)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {model_dir}")
    checkpoints.use_averaged_weights(model, optimizer)
    return path


def restore_averaged_model(model_dir, output_stride):
    """The PersonLab model of the newest checkpoint of `model_dir`, rebuilt at `output_stride` (the weights
    do not depend on it), with the EMA weights (`restore_averaged`).

    Returns:
      (PersonLabModel, checkpoint path).
    """
    model = personlab.build_model(output_stride=output_stride)
    return model, restore_averaged(model, model_dir)


def training_task():
    """The `train.task` of the parsed gin configuration ("personlab" if unbound)."""
    return config.query_value("train.task", "personlab")


@gin.configurable
def decoding_options(radius=None, scoring="expected_oks", nms="soft"):
    """Decoding settings taken from gin at export and evaluation time.

    Args:
      radius: disk radius R of Hough voting and Eq. 3; None (default): the training targets'
        `build_dataset.disk_radius` (so a run's operative config, which records only what training
        used, exports as trained); a value other than that one is refused at export.
      scoring: "expected_oks" (Eq. 3) or "hough"; nms: "soft" (Eq. 4) or "hard" (OKS-NMS): the four
        configurations of the paper's Table 5.

    Returns:
      dict of keyword arguments of personlab_tf.decode.decode.
    """
    return {"radius": trained_disk_radius() if radius is None else float(radius), "scoring": scoring, "nms": nms}


def trained_disk_radius():
    """The disk radius of the training targets in the parsed gin configuration (32 px if unbound)."""
    return float(config.query_value("build_dataset.disk_radius", DISK_RADIUS))


def default_gin_files(model_dir, gin_files):
    """The gin files to parse: the given ones, else the training run's operative config if it exists."""
    if gin_files:
        return list(gin_files)
    operative = os.path.join(model_dir, OPERATIVE_CONFIG)
    return [operative] if os.path.exists(operative) else []


def export_parts_checkpoint(model_dir, export_dir, max_side=parts_detector.MAX_SIDE):
    """The part-parsing counterpart of `export_checkpoint`: EMA weights, parts.detector.PartsDetector with
    the gin `parts_decode_options` and the training targets' disk radius, SavedModel with both signatures.

    Returns:
      dict summary: checkpoint path, step, export_dir, max_side, decoding options.
    """
    model = parts_model.build_parts_model()
    path = restore_averaged(model, model_dir)
    radius = float(config.query_value("build_parts_dataset.disk_radius", DISK_RADIUS))
    options = parts_decode.parts_decode_options(radius=radius)
    serving.export(parts_detector.PartsDetector(model.inference_model(), max_side, options), export_dir)
    return {"export_dir": export_dir, "checkpoint": path, "step": checkpoints.checkpoint_step(path), "task": "parts",
            "max_side": max_side, "decode_options": dataclasses.asdict(options),
            "signatures": [serving.SERVING_DEFAULT, serving.SERVING_IMAGE]}


def export_checkpoint(model_dir, export_dir, output_stride=8, max_side=detector_lib.MAX_SIDE, multi_scale=False,
                      **detector_options):
    """Restores the newest checkpoint with its EMA weights and saves the SavedModel (serving.py).

    Args:
      model_dir: training directory with the checkpoints (gin already parsed).
      export_dir: SavedModel directory to write.
      output_stride: os the model is rebuilt at (8 for evaluation, as the paper).
      max_side: larger side of the single-scale frame (and the common frame of multi-scale).
      multi_scale: use the pyramid detector.PYRAMID, maps merged before decoding.
      **detector_options: decode_stride, mask_resolution and decoding options of detector.Detector;
        `decoding_options()` (gin) fills the ones not given.

    Returns:
      dict summary: checkpoint path, step, export_dir, output_stride, max_side, scales.
    """
    options = {**decoding_options(), **detector_options}
    if options["radius"] != trained_disk_radius():
        raise ValueError(f"decoding radius {options['radius']} differs from the training targets' disk radius "
                         f"{trained_disk_radius()}: bind decoding_options.radius to it")
    model, path = restore_averaged_model(model_dir, output_stride)
    scales = detector_lib.PYRAMID if multi_scale else None
    detector = detector_lib.Detector(model.inference_model(), output_stride, max_side, scales, **options)
    serving.export(detector, export_dir)
    return {"export_dir": export_dir, "checkpoint": path, "step": checkpoints.checkpoint_step(path),
            "output_stride": output_stride, "max_side": max_side, "scales": list(scales) if scales else None,
            "decode_stride": detector.decode_stride, "mask_resolution": detector.mask_resolution,
            "radius": options["radius"],
            "signatures": [serving.SERVING_DEFAULT, serving.SERVING_IMAGE]}
