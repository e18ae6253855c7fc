"""personlab_tf: PersonLab (ECCV 2018) in TensorFlow 2 / Keras 3."""

from setuptools import find_packages, setup

setup(
    name="personlab_tf",
    version="0.1.0",
    description="PersonLab bottom-up pose estimation and person instance segmentation in TF2/Keras 3",
    packages=find_packages(include=["personlab_tf", "personlab_tf.*"]),
    python_requires=">=3.11",  # numpy 2.4 and scipy 1.17 need 3.11
    install_requires=[
        "tensorflow-cpu==2.21.0",
        "keras==3.15.1",
        "gin-config==0.5.0",
        "absl-py==2.5.1",
        "numpy==2.4.6",
        "pillow==13.0.0",
        "opencv-python-headless==5.0.0.93",
        "pycocotools==2.0.11",
        "tensorflow-datasets==4.9.10",
        "tqdm==4.70.1",
        "tensorboard==2.21.0",
        # Video (docs/video.md): PyAV's wheel carries FFmpeg's libraries and codecs (no system ffmpeg);
        # the tracker's optimal assignment (scipy) and the tracking metrics (py-motmetrics).
        "av==18.1.0",
        "scipy==1.17.1",
        "motmetrics==1.4.0",
    ],
    extras_require={
        # GPU machines: `pip install -e .[gpu]`, then replace tensorflow-cpu's files with the GPU build's
        # (docs/training.md, On a multi-GPU machine): both wheels install the `tensorflow` module.
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
        "fast_eval": ["faster-coco-eval==1.8.0"],
        "test": ["pytest==9.2.0", "pytest-xdist==3.8.0", "faster-coco-eval==1.8.0"],
    },
)
