"""Oracle frames: a sample's ground truth placed on its inference frame, where the tasks' oracles make
their training targets as if predicted (tasks/*/oracle.py, scripts/oracle_eval.py).

The frame is the one the detector would see (inference/geometry.py): the image resized so that its larger
side is `max_side`, padded to n m + 1 pixels (m = the frame multiple of the task's network). The targets are
made on the square of the frame's larger side, whose top-left part is the frame; `FrameGrid.crop` keeps
that part. Coordinates: pixel centres at integer coordinates, (x, y) order.
"""

import dataclasses
from typing import Dict

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import augment
from personlab_tf.inference import geometry


def frame_sample(sample: Dict[str, tf.Tensor], scale: tf.Tensor) -> Dict[str, tf.Tensor]:
    """A decoded sample (data/decoder.py) with its keypoints moved to frame pixels.

    Masks stay packed at image resolution: the target code samples them through
    keys.Sample.CROP_TO_IMAGE, here the frame-to-image map x = u / f.
    """
    crop_map = geometry.crop_to_image(scale)
    keypoints = sample[keys.Sample.KEYPOINTS]
    points = augment.image_to_crop_points(keypoints[..., :2], crop_map)
    return dict(sample, **{keys.Sample.KEYPOINTS: tf.concat([points, keypoints[..., 2:]], axis=-1),
                           keys.Sample.CROP_TO_IMAGE: crop_map})


@dataclasses.dataclass(frozen=True)
class FrameGrid:
    """A sample on its inference frame, and the grid of stride `stride` over it.

    Attributes:
      sample: the sample in frame pixels (`frame_sample`).
      scale: f of the frame.
      side: side of the square the targets are made on (the frame's larger side).
      rows, columns: cells of the frame's grid.
    """

    sample: Dict[str, tf.Tensor]
    scale: tf.Tensor
    side: int
    rows: int
    columns: int

    def crop(self, maps: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Maps [side', side', ...] on the square's grid -> the frame's [rows, columns, ...] part."""
        return {key: value[:self.rows, :self.columns] for key, value in maps.items()}


def frame_grid(sample: Dict[str, tf.Tensor], max_side: int, multiple: int, stride: int) -> FrameGrid:
    """The `FrameGrid` of a decoded sample: frame of larger side `max_side` padded to n multiple + 1."""
    image_size = sample[keys.Sample.ORIGINAL_SIZE]
    scale = geometry.resize_scale(image_size, max_side)
    frame = geometry.frame_size(image_size, scale, multiple).numpy()
    rows, columns = (int(n) for n in geometry.grid_size(frame, stride))
    return FrameGrid(frame_sample(sample, scale), scale, int(frame.max()), rows, columns)
