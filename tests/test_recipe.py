"""The paper's recipe cannot silently go wrong (docs/training.md): its values are pinned, a frozen-batch-norm
network does not start from random weights, and `weights_path='imagenet'` takes the Keras-applications weights
from the Keras cache (downloaded where the network allows)."""

import dataclasses
import time

import gin
import keras
import numpy as np
import pytest

from personlab_tf.skeleton import COCO17
from personlab_tf import config, registry
from personlab_tf.model import resnet
from personlab_tf.tasks.personlab import noise
from personlab_tf.tasks.personlab.model import PersonLabNetwork, build_model
from personlab_tf.train import optimizer as optimizer_lib

from inference_fixtures import REPO, script_error
from model_fixtures import write_applications_h5


def parsed(name, *bindings):
    """(task, train bindings, optimizer) of a shipped gin file."""
    gin.clear_config()
    try:
        registry.parse_gin([str(REPO / "gin" / name)], ["TRAIN_FILES = 'records/x-*'", *bindings])
        return (config.experiment(), {key: gin.query_parameter(f"train.{key}") for key in
                                      ("num_steps", "global_batch_size", "strategy")},
                optimizer_lib.build_optimizer(num_steps=gin.query_parameter("train.num_steps")))
    finally:
        gin.clear_config()


# §4.1's loss weights, keyed by loss name.
PAPER_LOSS_WEIGHTS = {"heatmap_loss": 4.0, "segmentation_loss": 2.0, "short_offset_loss": 1.0, "mid_offset_loss": 0.25,
                      "long_offset_loss": 0.125}


@pytest.mark.parametrize("name, backbone, imputed", [
    ("personlab_resnet101.gin", "resnet101", True), ("personlab_resnet152.gin", "resnet152", True),
    ("personlab_resnet101_keypoints.gin", "resnet101", False), ("personlab_resnet152_keypoints.gin", "resnet152", False)])
def test_the_paper_values_are_pinned(name, backbone, imputed):
    """PersonLab §4.1: loss weights, SGD 0.9 at a constant 1e-3, Polyak averaging, batch 8 over 8 GPUs, 801 crops,
    1M steps, output stride 16 in training and 8 in evaluation, R = 32, refinement twice each; imputed keypoints
    for the segmentation tables (§3.3, Tables 2, 3, 7, 9), none for the keypoint tables (Tables 1, 4-8, Appendix
    A.4); and the project's own choices for what the paper leaves open: the auxiliary terms weigh as the main
    ones, losses are per-image means averaged over the images (docs/model.md)."""
    task, train, optimizer = parsed(name)
    assert task.options.network.backbone == backbone and task.options.network.freeze_batch_norm
    assert task.options.data.use_imputed_keypoints is imputed
    assert dataclasses.asdict(task.options.network.loss_weights) == PAPER_LOSS_WEIGHTS and task.options.network.auxiliary_heads
    assert task.options.network.auxiliary_loss_weight == 1.0 and task.options.network.loss_averaging == "image"
    assert task.options.network.output_stride == 16 and task.options.inference.output_stride == 8
    assert task.options.network.refine_mid_steps == 2 and task.options.network.refine_long_steps == (2, 2)
    assert task.options.data.crop_size == 801 and task.options.data.target_stride == 8 and task.options.data.disk_radius == 32.0
    assert (task.options.box.min_scale, task.options.box.max_scale, task.options.box.flip_probability) == (0.5, 1.5, 0.5)
    assert train == {"num_steps": 1_000_000, "global_batch_size": 8, "strategy": "mirrored"}
    assert isinstance(optimizer, keras.optimizers.SGD) and float(optimizer.momentum) == pytest.approx(0.9)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert optimizer.use_ema and optimizer.ema_momentum == pytest.approx(0.9999)
    assert task.options.inference.max_side == 1401 and task.options.decoding.rejection_radius == 10.0


def test_the_decoding_constants_are_pinned():
    """PersonLab §3.2-3.4 (docs/decoding.md): seeds are local maxima of the Hough scores above 0.01 in 3 x 3
    windows at most 512, rejected within r = 10 px of a same-type keypoint of an earlier person; Eq. 3's
    expected-OKS scores at cell centres; soft-NMS (Eq. 4) with a 10-px radius (hard OKS-NMS at 0.5 when chosen);
    20 detections; masks (Eq. 6) p_S >= 0.5 and embedding distance <= 0.25; the project's choices for its
    tables: seeds at their cells (no centroid refinement), decoding on the stride-4 grid with hybrid masks, the
    pyramid 601-2401 merged with weights (docs/inference.md)."""
    task, _, _ = parsed("personlab_resnet101.gin")
    decoding, inference = task.options.decoding, task.options.inference
    assert (decoding.seed_threshold, decoding.seed_window, decoding.max_seeds) == (0.01, 3, 512)
    assert decoding.rejection_radius == 10.0 and not decoding.refine_seeds
    assert (decoding.scoring, decoding.oks_cells) == ("expected_oks", "centre")
    assert (decoding.nms, decoding.nms_radius, decoding.oks_threshold) == ("soft", 10.0, 0.5)
    assert decoding.max_detections == 20 and decoding.kappas is None   # the skeleton's 2 sigma_k
    assert (decoding.segmentation_threshold, decoding.mask_threshold) == (0.5, 0.25)
    assert (inference.decode_stride, inference.mask_resolution) == (4, "hybrid")
    assert inference.pyramid == (601, 1201, 1801, 2401) and inference.weighted_merge and not inference.multi_scale


def test_the_part_parsers_paper_values_are_pinned():
    """Second paper §4.1: SGD momentum 0.9, weight decay 1e-5, 5e-2 then 5e-3, batch norm frozen at the
    ImageNet statistics, flips, scales [0.5, 2], rotations in [-10, 10] degrees and colour jitter (values of
    the released code: brightness and saturation 0.4, hue 0.1, no contrast); the DSPF of Table 4's last row;
    the second stage adds the matching loss at a fixed 1e-4."""
    task, train, optimizer = parsed("parts_resnet101.gin")
    assert task.options.network.backbone == "resnet101" and task.options.network.freeze_batch_norm and task.options.network.width == 256
    assert task.options.network.projection_field == "warped" and not task.options.network.matching_loss
    assert (task.options.box.min_scale, task.options.box.max_scale, task.options.box.flip_probability, task.options.box.max_rotation) == (
        0.5, 2.0, 0.5, 10.0)
    assert (task.options.color.brightness, task.options.color.contrast, task.options.color.saturation, task.options.color.hue) == (0.4, 0.0, 0.4, 0.1)
    assert isinstance(optimizer, keras.optimizers.SGD) and float(optimizer.momentum) == pytest.approx(0.9)
    assert optimizer.weight_decay == pytest.approx(1e-5)
    schedule = optimizer._learning_rate       # the schedule itself (`learning_rate` is its current value)
    assert [float(schedule(step)) for step in (0, 100_001)] == pytest.approx([0.05, 0.005])
    second, _, second_optimizer = parsed("parts_resnet101_matching.gin")
    assert second.options.network.matching_loss and float(second_optimizer.learning_rate) == pytest.approx(1e-4)
    assert (second.options.box, second.options.color) == (task.options.box, task.options.color)


def test_a_frozen_network_without_weights_is_refused_in_one_line(tmp_path):
    start = time.time()
    last = script_error("train.py", "--gin_file", str(REPO / "gin" / "personlab_resnet101.gin"), "--model_dir",
                        str(tmp_path / "run"))
    assert last.startswith("error: PersonLabNetwork.weights_path is not set")
    assert "PersonLabNetwork.allow_random_init = True" in last
    assert time.time() - start < 60
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("ckpt-*"))


def test_allowing_random_init_or_training_batch_norm_passes():
    PersonLabNetwork(allow_random_init=True).check_initialisation()
    PersonLabNetwork(freeze_batch_norm=False).check_initialisation()
    PersonLabNetwork(weights_path="imagenet").check_initialisation()


@pytest.mark.slow
def test_imagenet_weights_come_from_the_keras_cache(tmp_path, monkeypatch):
    """A file placed in the Keras cache is used as it is (here a locally written .h5 of ResNet-50's topology)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    source = resnet.build_resnet("resnet50", 32)
    for weight in source.weights[:6]:
        weight.assign(np.full(weight.shape, 0.25, np.float32))
    path = tmp_path / "keras" / "models" / resnet.imagenet_weights_file("resnet50")
    path.parent.mkdir(parents=True)
    write_applications_h5(source, str(path))
    model = build_model(COCO17, PersonLabNetwork("resnet50", weights_path=resnet.IMAGENET, auxiliary_heads=False))
    for expected, loaded in zip(source.weights, model.backbone.weights):
        np.testing.assert_array_equal(loaded.numpy(), expected.numpy())


def test_without_the_file_and_without_network_the_error_says_where_to_place_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    expected = str(tmp_path / "keras" / "models" / resnet.imagenet_weights_file("resnet101"))
    with pytest.raises(FileNotFoundError, match=f"place the file at {expected}"):
        resnet.imagenet_weights("resnet101")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        resnet.imagenet_weights("resnet_tiny")


def test_the_demo_recipe_is_pinned():
    """gin/demo.gin, the configuration of docs/demo.md's tables: resnet_tiny from scratch at output stride 16
    with batch norm training, 257 crops and R scaled to 12, box scales 0.35-1.0, Adam 2e-3 on a cosine,
    Polyak 0.99, batch 8, 6000 steps, compiled refinement, pooled loss averaging, the paper's loss weights and
    imputed keypoints."""
    task, train, optimizer = parsed("demo.gin")
    network = task.options.network
    assert (network.backbone, network.output_stride, network.freeze_batch_norm) == ("resnet_tiny", 16, False)
    assert network.auxiliary_heads and network.auxiliary_loss_weight == 1.0 and network.jit_refinement
    assert network.loss_averaging == "pooled" and dataclasses.asdict(network.loss_weights) == PAPER_LOSS_WEIGHTS
    assert (task.options.data.crop_size, task.options.data.target_stride, task.options.data.disk_radius) == (257, 8, 12.0)
    assert task.options.data.use_imputed_keypoints and (task.options.box.min_scale, task.options.box.max_scale) == (0.35, 1.0)
    assert train == {"num_steps": 6000, "global_batch_size": 8, "strategy": "one_device"}
    assert isinstance(optimizer, keras.optimizers.Adam) and optimizer.ema_momentum == pytest.approx(0.99)
    schedule = optimizer._learning_rate
    assert [float(schedule(step)) for step in (0, 3000, 6000)] == pytest.approx([2e-3, 1e-3, 0.0], abs=1e-9)


def test_the_realistic_oracle_at_coco_scale_is_pinned():
    """docs/decoding.md §6: the COCO-scale oracle is the paper's single-scale inference (1401 px, output stride 8,
    R = 32) with the calibrated map noise at the fitted severity 0.75 (the paper's keypoint AP 0.665 on
    coco_train_sample); the calibrated noise itself (severity 1) stays MapNoise's default."""
    assert noise.MapNoise().severity == 1.0
    gin.clear_config()
    try:
        registry.parse_gin([str(REPO / "gin" / "realistic_oracle_coco.gin")], [])
        task = config.experiment()
        assert (task.options.inference.max_side, task.options.inference.output_stride, task.options.data.disk_radius) == (1401, 8, 32.0)
        assert noise.MapNoise().severity == 0.75
    finally:
        gin.clear_config()
