"""scripts/oracle_eval.py for both tasks: ground-truth maps through the inference path reach the documented
figures (PersonLab on the real COCO sample, docs/inference.md; part parsing on synthetic scenes, docs/parts.md)."""

import json
import os

import numpy as np
import pytest

from personlab_tf.skeleton import COCO17
from personlab_tf.data import coco_format, synthetic, synthetic_scene
from personlab_tf.tasks.parts import metrics, part_sets, submission
from personlab_tf.tasks.personlab import oracle

from inference_fixtures import run_script
from sample_factory import SHARED_DATA
from test_parts_submission import cihp_region_ap


def test_complete_skeleton_places_unlabelled_keypoints_between_their_neighbours():
    keypoints = np.zeros([3, 17, 3], np.float32)
    keypoints[0, 5] = (0, 10, 2)     # left shoulder
    keypoints[0, 6] = (20, 10, 1)    # right shoulder (occluded counts as labelled)
    keypoints[0, 9] = (0, 50, 2)     # left wrist; the left elbow (7) is missing
    keypoints[1, 0] = (7, 7, 2)      # a crowd region: left as it is
    completed = oracle.complete_skeleton(keypoints, [False, True, False], COCO17.tree)
    np.testing.assert_allclose(completed[0, 0, :2], (10, 10))          # nose: mean of both shoulders
    np.testing.assert_allclose(completed[0, 7, :2], (0, 30))           # elbow: between shoulder and wrist
    np.testing.assert_allclose(completed[0, 1, :2], (10, 10))          # eye: from the nose, next round
    assert (completed[0, :, 2] > 0).all()
    np.testing.assert_array_equal(completed[0, [5, 6, 9]], keypoints[0, [5, 6, 9]])  # labels unchanged
    np.testing.assert_array_equal(completed[1:], keypoints[1:])        # crowd, and a person without labels


@pytest.mark.slow
def test_personlab_oracle_on_the_coco_val_sample():
    """docs/decoding.md: keypoint AP 1.000 and segmentation AP 0.524 at the defaults (1401 px, output stride 8,
    decode stride 4, hybrid masks)."""
    folder = SHARED_DATA / "coco_val_sample"
    _, summary = run_script("oracle_eval.py", "--task", "personlab", "--annotations",
                            str(folder / "person_keypoints.json"), "--images", str(folder / "images"))
    assert summary["images"] == 4 and summary["images_skipped"] == 0
    assert summary["keypoints_AP"] >= 0.99
    assert summary["segm_AP"] == pytest.approx(0.524, abs=0.02)


@pytest.mark.slow
def test_parts_oracle_of_synthetic_scenes(tmp_path):
    """docs/parts.md: every person parsed from the ground-truth maps; with --output_dir, the submission files
    (docs/parts.md "Submission formats"), whose CIHP files read as test_inst_part_ap.py reads them give the
    reported AP^r, and the keypoint AP in metrics.json."""
    data, output = tmp_path / "val", tmp_path / "eval"
    synthetic.generate_dataset(str(data), 4, seed=1, scene=synthetic_scene.PARTS_SCENE)
    _, summary = run_script("oracle_eval.py", "--task", "parts", "--annotations",
                            str(data / coco_format.ANNOTATIONS_FILE), "--images", str(data / coco_format.IMAGES_DIR),
                            "--output_dir", str(output))
    assert {"APp_50", "APp_vol", "PCP50", "mIoU", "images"} <= set(summary) and summary["images"] == 4
    assert summary["APp_50"] >= 0.9 and summary["PCP50"] >= 0.9 and summary["mIoU"] >= 0.9
    names = [f"{image_id:012d}" for image_id in range(1, 5)]
    lines = (output / submission.MHP_DIR / submission.MHP_RESULTS_FILE).read_text().splitlines()
    assert [line.split()[0] for line in lines] == names
    for folder in (submission.MHP_SEG_DIR, submission.MHP_TAG_DIR):
        assert sorted(os.listdir(output / submission.MHP_DIR / folder)) == [name + ".png" for name in names]
    found = json.loads((output / "metrics.json").read_text())
    assert found["pose_AP50"] >= 0.9
    cihp = output / submission.CIHP_DIR
    for t in metrics.THRESHOLDS:
        ap = cihp_region_ap(cihp / submission.CIHP_PREDICTIONS_DIR, cihp / submission.CIHP_TRUTH_DIR,
                            part_sets.SYNTHETIC.num_classes, t)
        assert found["APr"][str(t)] == pytest.approx(ap, abs=1e-6), t
