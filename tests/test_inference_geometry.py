"""Inference geometry and map resampling: frame sizes, the pixel round trip, grids between frames, masks back
to the original image."""

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import keys
from personlab_tf.data import augment
from personlab_tf.inference import geometry, maps


@pytest.mark.parametrize("size, max_side, stride, frame", [
    ((425, 640), 1401, 8, (929, 1401)),    # f = 1400 / 639; 424 f = 928.9 -> 929 pixels = 116 * 8 + 1
    ((425, 640), 1401, 16, (929, 1409)),   # 1400 is not a multiple of 16: padded to 1409
    ((640, 480), 801, 8, (801, 601)),      # f = 800 / 639; 479 f = 599.7 -> 600 pixels, padded to 601
    ((529, 801), 801, 16, (529, 801)),     # f = 1: nothing to resize or pad
    ((1, 1), 129, 8, (1, 1)),
])
def test_frame_sizes(size, max_side, stride, frame):
    scale = geometry.resize_scale(tf.constant(size), max_side)
    assert tuple(geometry.frame_size(tf.constant(size), scale, stride).numpy()) == frame
    cells = geometry.grid_size(tf.constant(frame), stride).numpy()
    np.testing.assert_array_equal((cells - 1) * stride + 1, frame)  # corner aligned: no partial cell


def test_larger_side_spans_max_side_corner_to_corner():
    scale = float(geometry.resize_scale(tf.constant([425, 640]), 1401))
    assert scale == pytest.approx(1400 / 639)
    np.testing.assert_allclose(geometry.to_frame(tf.constant([[0.0, 0.0], [639.0, 424.0]]), scale).numpy(),
                               [[0, 0], [1400, 424 * 1400 / 639]], rtol=1e-6)


def test_a_dot_lands_where_its_coordinates_say():
    """Pixel centres at integer coordinates in both images: the warped dot's centroid is f (x, y)."""
    image = np.zeros([40, 60, 3], np.uint8)
    image[23, 17] = 255
    scale = geometry.resize_scale(tf.constant([40, 60]), 121)  # f = 120 / 59
    frame = geometry.resize_image(image, scale, geometry.frame_size(tf.constant([40, 60]), scale, 8)).numpy()
    weight = frame[..., 0]
    rows, cols = np.indices(weight.shape)
    centroid = np.array([np.sum(cols * weight), np.sum(rows * weight)]) / weight.sum()
    np.testing.assert_allclose(centroid, geometry.to_frame(np.array([17.0, 23.0]), float(scale)), atol=0.02)
    np.testing.assert_allclose(geometry.to_original(centroid, float(scale)), [17, 23], atol=0.01)
    assert frame.shape == (81, 121, 3) and not frame[-1].any()  # padding at the bottom is zero


def test_frame_map_is_a_crop_map_of_the_training_code():
    scale = tf.constant(2.5)
    points = tf.constant([[[10.0, 4.0], [0.0, 0.0]]])
    np.testing.assert_allclose(augment.image_to_crop_points(points, geometry.crop_to_image(scale)).numpy(),
                               geometry.to_frame(points, scale).numpy())


def test_resampling_reproduces_linear_fields_between_frames():
    """An offset field equal to the frame position of each cell stays so on the new grid (bilinear is exact
    on linear fields), offsets rescaled to the new frame's pixels."""
    source_scale, source_stride, target_scale, target_stride = 1.5, 8, 2.0, 4
    rows, cols = np.mgrid[0:12, 0:15].astype(np.float32)
    positions = np.stack([cols, rows], -1) * source_stride                      # [12, 15, 2] frame-1 pixels
    field = {keys.Map.SHORT_OFFSETS: tf.constant(positions[np.newaxis, :, :, np.newaxis]),
             keys.Map.HEATMAPS: tf.ones([1, 12, 15, 17])}
    cells = tf.constant([20, 25])
    out = maps.resample_maps(field, source_scale, source_stride, target_scale, target_stride, cells,
                             (keys.Map.SHORT_OFFSETS,))
    target_rows, target_cols = np.mgrid[0:20, 0:25].astype(np.float32)
    expected = np.stack([target_cols, target_rows], -1) * target_stride          # frame-2 pixels
    np.testing.assert_allclose(out[keys.Map.SHORT_OFFSETS][0, :, :, 0].numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(out[keys.Map.HEATMAPS].numpy(), 1.0)  # probabilities are not rescaled


def test_resampling_outside_the_source_grid_reads_zero():
    out = maps.resample(tf.ones([1, 3, 3, 1]), tf.constant(1.0), tf.constant([5, 5]))[0, ..., 0].numpy()
    assert out[:3, :3].all() and not out[3:].any() and not out[:, 3:].any()


def test_masks_go_back_to_the_original_pixels():
    """Grid masks True from cell column 3 on, and on one cell: original pixels are True from the midpoint
    of the cells, e.g. from frame x = 2.5 s, i.e. x = 2.5 s / f."""
    stride, scale = 8, 3.0
    grid = np.zeros([3, 6, 7], bool)
    grid[0, :, 3:] = True
    grid[2, 2, 4] = True
    out = maps.masks_to_original(tf.constant(grid), tf.constant(scale), stride, tf.constant([14, 16])).numpy()
    assert out.shape == (3, 14, 16) and not out[1].any()
    rows, columns = np.indices((14, 16))
    np.testing.assert_array_equal(out[0], columns >= 2.5 * stride / scale)     # x >= 6.67
    # Bilinear >= 0.5 around one cell at (x, y) = (4, 2) s / f: the pixels where (1 - |du|)(1 - |dv|) >= 0.5.
    du, dv = np.abs(columns * scale / stride - 4), np.abs(rows * scale / stride - 2)
    np.testing.assert_array_equal(out[2], (du < 1) & (dv < 1) & ((1 - du) * (1 - dv) >= 0.5))
