"""The paper's recipe cannot silently go wrong (docs/training.md): its values are pinned, a frozen-batch-norm
network does not start from random weights, and `weights_path='imagenet'` takes the Keras-applications weights
from the Keras cache (downloaded where the network allows)."""

import time

import gin
import keras
import numpy as np
import pytest

from personlab_tf.skeleton import COCO17
from personlab_tf import config, registry
from personlab_tf.model import resnet
from personlab_tf.tasks.personlab.model import PersonLabNetwork, build_model
from personlab_tf.train import optimizer as optimizer_lib

from inference_fixtures import REPO, script_error
from test_model_resnet import _write_applications_h5


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


@pytest.mark.parametrize("name, backbone", [("personlab_resnet101.gin", "resnet101"),
                                            ("personlab_resnet152.gin", "resnet152")])
def test_the_paper_values_are_pinned(name, backbone):
    """PersonLab §4.1: loss weights, SGD 0.9 at a constant 1e-3, Polyak averaging, batch 8 over 8 GPUs, 801 crops,
    1M steps, output stride 16 in training and 8 in evaluation, R = 32, refinement twice each."""
    task, train, optimizer = parsed(name)
    assert task.network.backbone == backbone and task.network.freeze_batch_norm
    assert task.network.loss_weights == (4.0, 2.0, 1.0, 0.25, 0.125) and task.network.auxiliary_heads
    assert task.network.output_stride == 16 and task.inference.output_stride == 8
    assert task.network.refine_mid_steps == 2 and task.network.refine_long_steps == (2, 2)
    assert task.data.crop_size == 801 and task.data.target_stride == 8 and task.data.disk_radius == 32.0
    assert (task.box.min_scale, task.box.max_scale, task.box.flip_probability) == (0.5, 1.5, 0.5)
    assert train == {"num_steps": 1_000_000, "global_batch_size": 8, "strategy": "mirrored"}
    assert isinstance(optimizer, keras.optimizers.SGD) and float(optimizer.momentum) == pytest.approx(0.9)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert optimizer.use_ema and optimizer.ema_momentum == pytest.approx(0.9999)
    assert task.inference.max_side == 1401 and task.decoding.rejection_radius == 10.0


def test_the_part_parsers_paper_values_are_pinned():
    """Second paper §4.1: SGD momentum 0.9, weight decay 1e-5, 5e-2 then 5e-3, batch norm frozen at the
    ImageNet statistics, flips, scales [0.5, 2], rotations in [-10, 10] degrees and colour jitter (values of
    the released code: brightness and saturation 0.4, hue 0.1, no contrast); the DSPF of Table 4's last row;
    the second stage adds the matching loss at a fixed 1e-4."""
    task, train, optimizer = parsed("parts_resnet101.gin")
    assert task.network.backbone == "resnet101" and task.network.freeze_batch_norm and task.network.width == 256
    assert task.network.projection_field == "warped" and not task.network.matching_loss
    assert (task.box.min_scale, task.box.max_scale, task.box.flip_probability, task.box.max_rotation) == (
        0.5, 2.0, 0.5, 10.0)
    assert (task.color.brightness, task.color.contrast, task.color.saturation, task.color.hue) == (0.4, 0.0, 0.4, 0.1)
    assert isinstance(optimizer, keras.optimizers.SGD) and float(optimizer.momentum) == pytest.approx(0.9)
    assert optimizer.weight_decay == pytest.approx(1e-5)
    schedule = optimizer._learning_rate       # the schedule itself (`learning_rate` is its current value)
    assert [float(schedule(step)) for step in (0, 100_001)] == pytest.approx([0.05, 0.005])
    second, _, second_optimizer = parsed("parts_resnet101_matching.gin")
    assert second.network.matching_loss and float(second_optimizer.learning_rate) == pytest.approx(1e-4)
    assert (second.box, second.color) == (task.box, task.color)


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
    _write_applications_h5(source, str(path))
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
