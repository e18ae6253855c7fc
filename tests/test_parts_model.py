"""The part-parsing network and its losses (personlab_tf/tasks/parts/model.py, layers.py, losses.py)."""

import io
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys, skeleton
from personlab_tf.skeleton import Skeleton
from personlab_tf.data import coco_format
from personlab_tf.tasks.parts import losses, part_sets
from personlab_tf.tasks.parts.layers import warp_to_finer
from personlab_tf.tasks.parts.model import PREDICTION_KEYS, PartParsingModel, PartsNetwork, build_model

SIZE = 65      # 32 n + 1: grids of 17, 9, 5, 3 cells at strides 4, 8, 16, 32
LIMBS = skeleton.COCO17.limbs


def tiny_model(part_stride=4, keypoints=skeleton.COCO17, **network):
    return build_model(PartsNetwork("resnet_tiny", width=16, freeze_batch_norm=False, **network),
                       part_sets.SYNTHETIC.num_classes, keypoints, radius=8.0, part_stride=part_stride)


def images(seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, 255, (2, SIZE, SIZE, 3)), tf.uint8)


def test_output_shapes_and_the_pixel_field():
    model = tiny_model()
    outputs = model(images())
    assert set(outputs) == set(PREDICTION_KEYS)
    assert outputs[keys.Prediction.PART_LOGITS].shape == (2, 17, 17, part_sets.SYNTHETIC.num_classes)
    assert outputs[keys.Prediction.HEATMAP_LOGITS].shape == (2, 17, 17, 17)
    assert outputs[keys.Prediction.SHORT_OFFSETS].shape == (2, 17, 17, 17, 2)
    assert outputs[keys.Prediction.LIMB_LOGITS].shape == (2, 17, 17, len(LIMBS))
    for stride, cells in ((4, 17), (8, 9), (16, 5), (32, 3)):
        assert outputs[keys.Prediction.projection(stride)].shape == (2, cells, cells, 2)
    np.testing.assert_allclose(outputs[keys.Prediction.PROJECTION_FIELD], 4.0 * outputs[keys.Prediction.projection(4)], rtol=1e-6)


def test_a_stride_2_part_head_adds_one_decoder_stage_over_the_stem():
    model = tiny_model(part_stride=2)
    outputs = model(images())
    assert outputs[keys.Prediction.PART_LOGITS].shape == (2, 33, 33, part_sets.SYNTHETIC.num_classes)
    assert outputs[keys.Prediction.HEATMAP_LOGITS].shape == (2, 17, 17, 17)
    assert model.get_layer("part_decoder_sepconv1") is not None
    assert model.get_config()["part_stride"] == 2
    # The backbone's weights are the stride-4 model's: the same checkpoints and ImageNet files load.
    assert [w.shape for w in model.backbone.weights] == [w.shape for w in tiny_model().backbone.weights]
    with pytest.raises(ValueError, match="part stride 8"):
        tiny_model(part_stride=8)


def test_zero_flow_warp_is_aligned_upsampling_and_the_flow_moves_the_samples():
    coarse = tf.constant(np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1))
    still = warp_to_finer(coarse, tf.zeros([1, 5, 5, 2])).numpy()[0, ..., 0]
    # Fine cell p reads coarse p / 2: even cells are the coarse values, odd ones their means.
    np.testing.assert_allclose(still[::2, ::2], coarse.numpy()[0, ..., 0])
    np.testing.assert_allclose(still[0, 1], 0.5)
    np.testing.assert_allclose(still[1, 1], 2.0)
    moved = warp_to_finer(coarse, tf.fill([1, 5, 5, 2], 2.0)).numpy()[0, ..., 0]   # +2 fine cells = +1 coarse
    np.testing.assert_allclose(moved[0, 0], coarse.numpy()[0, 1, 1, 0])


def test_gradients_reach_the_flow_and_the_coarse_field_through_the_warping():
    model = tiny_model()
    with tf.GradientTape() as tape:
        field = model(images(), training=True)[keys.Prediction.projection(4)]
        loss = tf.reduce_sum(tf.square(field - 1.0))
    variables = {v.path: v for v in model.trainable_variables}
    gradients = dict(zip(variables, tape.gradient(loss, list(variables.values()))))
    for name in ("dspf_flow2/kernel", "dspf_field5/kernel", "dspf_residual3/kernel"):
        (path,) = [p for p in gradients if p.endswith(name)]
        assert gradients[path] is not None and float(tf.reduce_sum(tf.abs(gradients[path]))) > 0, name


def test_uncertainty_total_formula():
    terms = [tf.constant(2.0), tf.constant(0.5)]
    log_variances = tf.constant([0.0, math.log(4.0)])
    expected = 0.5 * 2.0 + 0.0 + 0.5 * 0.5 / 4.0 + 0.5 * math.log(4.0)
    assert float(losses.uncertainty_total(terms, log_variances)) == pytest.approx(expected)


def empty_targets(batch=2, keypoints=skeleton.COCO17):
    """Targets with nothing valid: every term must be 0, not NaN."""
    grid, k, limbs = 17, keypoints.num_keypoints, len(keypoints.limbs)
    out = {keys.Map.PART_CLASSES: tf.zeros([batch, grid, grid], tf.int32), keys.Map.PART_WEIGHTS: tf.zeros([batch, grid, grid]),
           keys.Map.HEATMAPS: tf.zeros([batch, grid, grid, k]), keys.Map.HEATMAP_WEIGHTS: tf.zeros([batch, grid, grid, k]),
           keys.Map.SHORT_OFFSETS: tf.zeros([batch, grid, grid, k, 2]), keys.Map.SHORT_WEIGHTS: tf.zeros([batch, grid, grid, k]),
           keys.Map.LIMB_HEATMAPS: tf.zeros([batch, grid, grid, limbs]),
           keys.Map.LIMB_WEIGHTS: tf.zeros([batch, grid, grid, limbs]),
           keys.Map.MATCH_POINTS: tf.zeros([batch, 4, k, 2]), keys.Map.MATCH_LABELLED: tf.zeros([batch, 4, k], tf.bool)}
    for stride, cells in ((4, 17), (8, 9), (16, 5), (32, 3)):
        out[keys.Map.projection(stride)] = tf.zeros([batch, cells, cells, 2])
        out[keys.Map.projection_weights(stride)] = tf.zeros([batch, cells, cells])
    return out


def test_class_balanced_part_weights():
    labels = tf.constant([[[0, 0, 0, 1], [0, 2, 2, 1]]])            # one image: 4 background, 2 + 2 parts
    weights = tf.constant([[[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0]]])
    np.testing.assert_array_equal(losses.class_balanced_weights(labels, weights, 3, 0.0), weights)
    balanced = losses.class_balanced_weights(labels, weights, 3, 1.0).numpy()
    # Every class present weighs 1 in total; the unweighted cell counts for nothing.
    np.testing.assert_allclose(balanced, [[[0.25, 0.25, 0.25, 0.5], [0.25, 1.0, 0.0, 0.5]]])
    half = losses.class_balanced_weights(labels, weights, 3, 0.5).numpy()
    np.testing.assert_allclose(half[0, 0], [0.5, 0.5, 0.5, 2 ** -0.5])


def test_empty_valid_sets_give_zero_losses():
    model = tiny_model(matching_loss=True)
    terms = model.compute_losses(model(images()), empty_targets())
    for key in losses.loss_keys(True):
        assert float(terms[key]) == 0.0, key
    assert np.isfinite(float(terms[keys.Loss.TOTAL]))


def test_matching_loss_trains_the_limb_heatmaps():
    # Two persons' left shoulder -> left elbow limbs; the loss must push the limb logits.
    points = np.zeros([1, 2, 17, 2], np.float32)
    labelled = np.zeros([1, 2, 17], bool)
    points[0, 0, [5, 7]] = [(8, 8), (8, 40)]
    points[0, 1, [5, 7]] = [(40, 8), (40, 40)]
    labelled[0, :, [5, 7]] = True
    logits = tf.Variable(tf.zeros([1, 17, 17, len(LIMBS)]))
    with tf.GradientTape() as tape:
        loss = losses.matching_loss(logits, tf.constant(points), tf.constant(labelled), 4, LIMBS)
    gradient = tape.gradient(loss, logits).numpy()
    assert np.isfinite(float(loss)) and float(loss) > 0
    arm = LIMBS.index((5, 7))
    assert np.abs(gradient[..., arm]).sum() > 0
    others = [index for index in range(len(LIMBS)) if index != arm]
    assert np.abs(gradient[..., others]).sum() == 0


def test_heads_and_losses_follow_the_skeleton():
    """MHP v2's 16 joints: 16 heatmap and offset channels, its 18 limbs' logits, its limbs in the matching
    loss and the config; empty targets of its shapes give zero losses."""
    mhp = skeleton.MHP_V2
    model = tiny_model(keypoints=mhp, matching_loss=True)
    outputs = model(images())
    assert outputs[keys.Prediction.HEATMAP_LOGITS].shape == (2, 17, 17, 16)
    assert outputs[keys.Prediction.SHORT_OFFSETS].shape == (2, 17, 17, 16, 2)
    assert outputs[keys.Prediction.LIMB_LOGITS].shape == (2, 17, 17, len(mhp.limbs))
    config = model.get_config()
    assert Skeleton.from_config(config["skeleton"]) == mhp and model.skeleton.limbs == mhp.limbs
    assert PartParsingModel.from_config(json.loads(json.dumps(config))).get_config() == config
    terms = model.compute_losses(outputs, empty_targets(keypoints=mhp))
    assert all(float(terms[key]) == 0.0 for key in losses.loss_keys(True))


def test_task_records_and_restores_its_skeleton():
    from personlab_tf.tasks.parts.task import PartsTask
    task = PartsTask(network=PartsNetwork("resnet_tiny", width=16, freeze_batch_norm=False), skeleton=skeleton.MHP_V2)
    config = json.loads(json.dumps(task.config()))
    assert config["skeleton"]["name"] == "mhp_v2"
    assert PartsTask.from_config(config).skeleton == skeleton.MHP_V2
    assert task.with_inference(max_side=513).skeleton == skeleton.MHP_V2
    del config["skeleton"]                       # a SavedModel recorded before skeletons were: COCO's
    assert PartsTask.from_config(config).skeleton == skeleton.COCO17
    assert PartsTask().skeleton == skeleton.COCO17
    model = task.build_model(inference=True)
    assert model.get_layer("limb_head").filters == 18 and model.get_layer("heatmap_head").filters == 16
    assert task.build_detector(model.inference_model()).output_specs()[keys.Detection.KEYPOINTS][0][1:] == [16, 2]


def test_fit_lowers_every_task_loss_on_real_targets(tmp_path):
    """Each term itself falls, not only the uncertainty-weighted total (which the log-variances alone can
    lower): the terms of the same batch before and after 40 steps."""
    import keras

    from personlab_tf.data import augment, synthetic, synthetic_scene, writer
    from personlab_tf.train import callbacks
    from personlab_tf.tasks.parts.targets import PartsData
    from personlab_tf.tasks.parts.task import PartsTask
    keras.utils.set_random_seed(0)
    data = tmp_path / "data"
    synthetic.generate_dataset(str(data), 2, seed=0, min_side=96, max_side=128, scene=synthetic_scene.PARTS_SCENE)
    writer.convert(str(data / coco_format.ANNOTATIONS_FILE), str(data / coco_format.IMAGES_DIR), str(tmp_path / "r"),
                   part_labels_dir=str(data / coco_format.PART_LABELS_DIR), num_part_classes=9)
    task = PartsTask(data=PartsData(crop_size=SIZE, disk_radius=8.0),
                     box=augment.BoxOptions(min_scale=1.0, max_scale=1.0, max_translation=0.0, flip_probability=0.0))
    dataset = task.build_dataset(writer.shard_paths(str(tmp_path / "r"), 1), 2, True, seed=0)
    model = tiny_model(matching_loss=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate(dataset, steps=1, verbose=0, return_dict=True)
    assert set(model.learned_values().values()) == {0.0}
    progress = io.StringIO()
    model.fit(dataset, steps_per_epoch=40, epochs=1, verbose=0, shuffle=False,
              callbacks=[callbacks.Progress(40, 20, stream=progress)])
    after = model.evaluate(dataset, steps=1, verbose=0, return_dict=True)
    assert set(losses.loss_keys(True)) < set(after)
    for key in (keys.Loss.PART, keys.Loss.PROJECTION, keys.Loss.HEATMAP, keys.Loss.LIMB):
        assert after[key] < 0.5 * before[key], (key, before[key], after[key])
    # The log-variances learn: each s_i starts at 0 and follows its gradient (1 - exp(-s_i) L_i) / 2, about
    # the learning rate per Adam step; its optimum log L_i moves as the terms fall (here L_part 8.2 -> 0.5,
    # L_projection 34 -> 0.8), so a term's s_i can turn back, but none stays within 0.01 (3 steps) of 0;
    # one that does not train (frozen, or cut from the total) stays at exactly 0.
    learned = model.learned_values()
    assert sorted(learned) == sorted(f"log_variance/{k.removesuffix('_loss')}" for k in losses.loss_keys(True))
    assert min(abs(value) for value in learned.values()) > 0.01, learned
    last = progress.getvalue().strip().splitlines()[-1]
    assert last.startswith("step 40/40") and f"log_variance/part={learned['log_variance/part']:.4f}" in last


@pytest.mark.parametrize("variant", ["none", "direct", "coarse_to_fine", "residual"])
def test_projection_field_variants_of_table_4(variant):
    """The DSPF ablations: the outputs each variant predicts and the loss terms it trains."""
    from personlab_tf.tasks.parts.model import prediction_keys
    model = tiny_model(projection_field=variant)
    outputs = model(images())
    assert set(outputs) == set(model.prediction_keys) == set(prediction_keys(variant))
    assert set(model.inference_model()(images())) == set(prediction_keys(variant))
    levels = {"none": (), "direct": (4,)}.get(variant, (4, 8, 16, 32))
    assert [s for s in (4, 8, 16, 32) if keys.Prediction.projection(s) in outputs] == list(levels)
    field = outputs[keys.Prediction.PROJECTION_FIELD].numpy()
    assert field.shape == (2, 17, 17, 2)
    if variant == "none":
        assert not field.any()
    else:
        np.testing.assert_allclose(field, 4.0 * outputs[keys.Prediction.projection(4)].numpy(), rtol=1e-6)
    targets = empty_targets()
    targets[keys.Map.projection_weights(4)] = tf.ones([2, 17, 17])       # error |f_4 - 0| at every cell
    terms = model.compute_losses(outputs, targets)
    assert (keys.Loss.PROJECTION in terms) == (variant != "none")
    assert (keys.Loss.PROJECTION in model.loss_trackers) == (variant != "none")
    if variant != "none":
        # The mean over the levels predicted; the coarser levels' weights are 0, so their terms are 0.
        error = np.abs(outputs[keys.Prediction.projection(4)].numpy()).sum(-1).mean()
        np.testing.assert_allclose(float(terms[keys.Loss.PROJECTION]), error / len(levels), rtol=1e-4)
    assert model.get_config()["network"]["projection_field"] == variant


def test_without_flow_the_warped_field_is_the_residual_variants():
    """The flow convolution starts at zero, where Eq. 6's warp is plain aligned upsampling: with the same
    weights the paper's model and the "residual" row of Table 4 give the same fields."""
    warped, residual = tiny_model(), tiny_model(projection_field="residual")
    shared = {layer.name: layer for layer in warped.layers}
    for layer in residual.layers:
        if layer.weights:
            layer.set_weights(shared[layer.name].get_weights())
    first, second = warped(images()), residual(images())
    for stride in (4, 8, 16, 32):
        np.testing.assert_allclose(first[keys.Prediction.projection(stride)].numpy(),
                                   second[keys.Prediction.projection(stride)].numpy(), rtol=1e-5, atol=1e-4)
    assert not any("flow" in layer.name for layer in residual.layers)
    with pytest.raises(ValueError, match="projection_field 'bogus'"):
        PartsNetwork(projection_field="bogus")


def test_a_network_without_a_field_exports_and_decodes(tmp_path):
    """projection_field 'none' (Table 4's ablation): the detector decodes it, every pixel projecting onto
    itself, and its SavedModel gives the eager detector's outputs."""
    from personlab_tf.inference import serving
    from personlab_tf.tasks.parts.detector import PartsInference
    from personlab_tf.tasks.parts.task import PartsTask
    task = PartsTask(network=PartsNetwork("resnet_tiny", width=16, freeze_batch_norm=False, projection_field="none"),
                     inference=PartsInference(max_side=65))
    detector = task.build_detector(task.build_model(inference=True).inference_model())
    image = np.random.default_rng(0).integers(0, 255, (50, 60, 3)).astype(np.uint8)
    eager = serving.detect_image(detector, tf.constant(image))
    assert eager[keys.Detection.INSTANCE_PART_MAPS].shape[-2:] == (50, 60)
    serving.export(detector, str(tmp_path / "none"), {"task": task.name})
    served = tf.saved_model.load(str(tmp_path / "none")).signatures[serving.SERVING_IMAGE](
        images=tf.constant(image[np.newaxis]))
    for key, value in eager.items():
        np.testing.assert_allclose(served[key][0].numpy(), value.numpy(), atol=1e-4, err_msg=key)
