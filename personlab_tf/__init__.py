"""personlab_tf: a TensorFlow 2 / Keras 3 reproduction of PersonLab (Papandreou et al., ECCV 2018)."""

__version__ = "0.1.0"
