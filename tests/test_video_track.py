"""video/track.py by hand: the outputs' names (the command's runs: test_track_video.py)."""

import pytest

from personlab_tf.video import track


def test_outputs_are_named_after_the_video_and_never_replace_it(tmp_path):
    paths = track.output_paths(str(tmp_path / "clip.mp4"), str(tmp_path / "out"))
    assert paths["overlay"] == str(tmp_path / "out" / "clip_tracked.mp4")
    assert set(paths) == set(track.RESULT_FILES) | {"overlay", "output_dir"}
    with pytest.raises(ValueError, match="would replace the input"):
        track.output_paths(str(tmp_path / "frames.json"), str(tmp_path))
