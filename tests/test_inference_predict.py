"""inference/predict.py by hand: image ids and overlay names (the script's runs: test_predict.py)."""

import os

from personlab_tf.inference import predict


def test_image_ids_are_the_file_numbers_when_all_are_distinct_numbers():
    assert predict.image_ids(["a/000000000139.jpg", "b/785.png"]) == [139, 785]
    assert predict.image_ids(["a/7.jpg", "b/7.png"]) == [1, 2]          # the same number twice
    assert predict.image_ids(["a/7.jpg", "b/x.png"]) == [1, 2]


def test_overlay_names_never_collide(tmp_path):
    taken = {os.path.realpath(str(tmp_path / "a.jpg.png"))}                  # an input named like an overlay
    first = predict.overlay_paths(str(tmp_path), "a.jpg", ["", "_parts"], taken)
    second = predict.overlay_paths(str(tmp_path), "a.jpg", ["", "_parts"], taken)
    assert first == {"": str(tmp_path / "a.jpg-2.png"), "_parts": str(tmp_path / "a.jpg-2_parts.png")}
    assert second == {"": str(tmp_path / "a.jpg-3.png"), "_parts": str(tmp_path / "a.jpg-3_parts.png")}
