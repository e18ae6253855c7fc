"""The oracle: ground-truth maps through refinement, decoding and COCO evaluation reach the acceptance AP."""

import numpy as np
import pytest

from personlab_tf.inference import oracle
from inference_fixtures import run_script
from sample_factory import SHARED_DATA


def test_complete_skeleton_places_unlabelled_keypoints_between_their_neighbours():
    keypoints = np.zeros([3, 17, 3], np.float32)
    keypoints[0, 5] = (0, 10, 2)     # left shoulder
    keypoints[0, 6] = (20, 10, 1)    # right shoulder (occluded counts as labelled)
    keypoints[0, 9] = (0, 50, 2)     # left wrist; the left elbow (7) is missing
    keypoints[1, 0] = (7, 7, 2)      # a crowd region: left as it is
    completed = oracle.complete_skeleton(keypoints, [False, True, False])
    np.testing.assert_allclose(completed[0, 0, :2], (10, 10))          # nose: mean of both shoulders
    np.testing.assert_allclose(completed[0, 7, :2], (0, 30))           # elbow: between shoulder and wrist
    np.testing.assert_allclose(completed[0, 1, :2], (10, 10))          # eye: from the nose, next round
    assert (completed[0, :, 2] > 0).all()
    np.testing.assert_array_equal(completed[0, [5, 6, 9]], keypoints[0, [5, 6, 9]])  # labels unchanged
    np.testing.assert_array_equal(completed[1:], keypoints[1:])        # crowd, and a person without labels


@pytest.mark.slow
def test_oracle_ap_on_the_coco_val_sample():
    folder = SHARED_DATA / "coco_val_sample"
    _, summary = run_script("oracle_eval.py", "--annotations", str(folder / "person_keypoints.json"),
                            "--images", str(folder / "images"))
    assert summary["images"] == 4
    assert summary["keypoints_AP"] >= 0.9
    assert 0.0 < summary["segm_AP"] <= 1.0
