"""Inputs and weight files for the network tests: random images, random PersonLab targets, and a model's
weights written as a Keras-applications `.h5`."""

import h5py
import numpy as np

from personlab_tf import keys
from personlab_tf.skeleton import COCO17

K, E = COCO17.num_keypoints, COCO17.num_edges


def random_images(batch=1, size=65, seed=0):
    """[batch, size, size, 3] uint8 images of uniform random pixels."""
    return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3)).astype(np.uint8)


def random_targets(batch, cells, seed=0):
    """Random batched targets on a cells x cells target grid (heatmaps/segmentation in {0, 1})."""
    rng = np.random.default_rng(seed)

    def binary(*shape):
        return (rng.uniform(size=(batch, cells, cells) + shape) < 0.3).astype(np.float32)

    def offsets(n):
        return rng.uniform(-32, 32, (batch, cells, cells, n, 2)).astype(np.float32)

    return {keys.Map.HEATMAPS: binary(K), keys.Map.HEATMAP_WEIGHTS: np.ones((batch, cells, cells, K), np.float32),
            keys.Map.SHORT_OFFSETS: offsets(K), keys.Map.SHORT_WEIGHTS: binary(K),
            keys.Map.MID_OFFSETS: offsets(E), keys.Map.MID_WEIGHTS: binary(E),
            keys.Map.SEGMENTATION: binary(1), keys.Map.SEGMENTATION_WEIGHTS: np.ones((batch, cells, cells, 1), np.float32),
            keys.Map.LONG_OFFSETS: offsets(K), keys.Map.LONG_WEIGHTS: binary(K)}


def write_applications_h5(model, path, extra_layer=None):
    """Writes `model`'s weights in the legacy Keras layout of the keras.applications `.h5` files."""
    layers = [(layer.name, [(w.name, np.asarray(w)) for w in layer.weights]) for layer in model.layers]
    if extra_layer:
        layers.append(extra_layer)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name, _ in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for name, weights in layers:
            group = f.create_group(name)
            names = [f"{name}/{weight_name}:0" for weight_name, _ in weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for n, (_, value) in zip(names, weights):
                group.create_dataset(n, data=value)
