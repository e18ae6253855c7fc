"""Two logical CPUs under MirroredStrategy give the one-device gradients and updates (loss scaling).

TensorFlow must be configured before it initialises, so the check runs in a subprocess: this file is
also the script (`python tests/test_model_training.py` prints one JSON line of discrepancies).
"""

import json
import os
import subprocess
import sys

import pytest

GLOBAL_BATCH = 2


def _check():
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from personlab_tf import keys
    from personlab_tf.tasks.personlab.model import PersonLabNetwork, build_model
    from personlab_tf.skeleton import COCO17

    from model_fixtures import random_images, random_targets

    keras.utils.set_random_seed(0)
    images = random_images(GLOBAL_BATCH, 65)
    targets = random_targets(GLOBAL_BATCH, 9)
    # Very different numbers of valid positions per sample (so per replica): a per-replica mean would differ.
    for key in (keys.Map.HEATMAP_WEIGHTS, keys.Map.SHORT_WEIGHTS, keys.Map.MID_WEIGHTS, keys.Map.LONG_WEIGHTS):
        targets[key][0, 2:] = 0.0
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(GLOBAL_BATCH)

    single = build_model(COCO17, PersonLabNetwork("resnet_tiny", 16))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = build_model(COCO17, PersonLabNetwork("resnet_tiny", 16))
    mirrored.set_weights(single.get_weights())

    def gradients(model, batch_images, batch_targets):
        with tf.GradientTape() as tape:
            losses = model.compute_losses(model(batch_images, training=True), batch_targets)
        return tape.gradient(losses[keys.Loss.TOTAL], model.trainable_variables), losses

    single_grads, single_losses = gradients(single, *next(iter(dataset)))

    @tf.function
    def distributed_gradients(batch):
        grads, losses = strategy.run(lambda x, y: gradients(mirrored, x, y), args=batch)
        return strategy.reduce("SUM", grads, axis=None), strategy.reduce("SUM", losses, axis=None)

    mirrored_grads, mirrored_losses = distributed_gradients(next(iter(strategy.experimental_distribute_dataset(dataset))))

    def relative_error(a, b):
        return max(float(np.abs(np.asarray(x) - np.asarray(y)).max() / (np.abs(np.asarray(x)).max() + 1e-12))
                   for x, y in zip(a, b))

    report = {"replicas": strategy.num_replicas_in_sync,
              "gradients": relative_error(single_grads, mirrored_grads),
              "losses": relative_error(list(single_losses.values()),
                                       [mirrored_losses[k] for k in single_losses])}
    # One fit step of plain SGD on each: same weight updates and same reported losses.
    histories, updates = [], []
    for model in (single, mirrored):
        before = model.get_weights()
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        histories.append(model.fit(dataset, epochs=1, shuffle=False, verbose=0).history)
        updates.append([a - b for a, b in zip(model.get_weights(), before)])
    report["fit_updates"] = relative_error(*updates)
    report["fit_losses"] = relative_error([v[0] for v in histories[0].values()],
                                          [histories[1][k][0] for k in histories[0]])
    print(json.dumps(report))


@pytest.mark.slow
def test_two_replicas_match_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    # A per-replica mean (no global normalisation) is off by ~1 on every entry.
    for key in ("gradients", "losses", "fit_losses"):
        assert report[key] < 1e-4, report
    assert report["fit_updates"] < 1e-3, report  # differences of float32 weights: rounding ~1e-7 / lr


if __name__ == "__main__":
    _check()
