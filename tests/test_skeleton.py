"""Keypoint sets as data (personlab_tf/skeleton.py, docs/skeletons.md): the built-in skeletons, a user's own from a
COCO file, the tree derived from a declared graph, and the skeleton travelling with records, evaluation ground
truth and SavedModels."""

import json

import numpy as np
import pytest
import tensorflow as tf

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco, coco_problems, pipeline, synthetic, synthetic_scene, writer
from personlab_tf import keys
from personlab_tf.inference import overlay, serving
from personlab_tf.skeleton import BUILTIN, COCO17, CROWDPOSE, MHP_V2, PASCAL_PERSON_PART, Skeleton

from inference_fixtures import exported_model, run_script, script_error
from sample_factory import SHARED_DATA

# A user's own skeleton: 5 points of the synthetic figures, a category that is not a person.
OWN_NAMES = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
OWN_CATEGORY = {"id": 7, "name": "figure", "supercategory": "figure", "keypoints": OWN_NAMES,
                "skeleton": [[1, 2], [1, 3], [1, 4], [1, 5], [2, 3], [4, 5]]}


def own_skeleton_file(folder):
    """A COCO-format file that declares only the user's own skeleton (no images)."""
    path = folder / "figure_skeleton.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [OWN_CATEGORY]}))
    return path


# ------------------------------------------------------------------------------------------ the definitions
def test_coco17_is_the_papers_tree_and_cocos_sigmas():
    assert COCO17.keypoints[:3] == ("nose", "left_eye", "right_eye") and COCO17.num_keypoints == 17
    assert COCO17.root == 0 and COCO17.tree[:4] == ((0, 1), (1, 3), (0, 2), (2, 4)) and len(COCO17.tree) == 16
    assert COCO17.num_edges == 32 and COCO17.directed_edges[16] == (1, 0)   # child -> parent edges second
    assert COCO17.sigmas[0] == pytest.approx(0.026) and COCO17.sigmas[-1] == pytest.approx(0.089)
    assert COCO17.flip_permutation == (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
    assert len(COCO17.limbs) == 18 and (5, 6) in COCO17.limbs and (11, 12) in COCO17.limbs


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_skeleton_is_a_tree_with_mirrored_pairs(name):
    skeleton = BUILTIN[name]
    assert len(skeleton.tree) == skeleton.num_keypoints - 1 and len(skeleton.sigmas) == skeleton.num_keypoints
    for a, b in skeleton.flip_pairs:   # a pair differs only by left / right
        assert skeleton.keypoints[a].replace("left", "right") == skeleton.keypoints[b]
    permutation = skeleton.flip_permutation
    assert all(permutation[permutation[k]] == k for k in range(skeleton.num_keypoints))
    assert Skeleton.from_config(json.loads(json.dumps(skeleton.to_config()))) == skeleton


def test_builtin_layouts():
    """CrowdPose's 14 and MHP v2's 16 in their datasets' orders (docs/skeletons.md gives the sources)."""
    assert CROWDPOSE.num_keypoints == 14 and CROWDPOSE.keypoints[12:] == ("top_head", "neck")
    assert MHP_V2.keypoints[:7] == ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
                                    "pelvis")
    assert MHP_V2.keypoints[9] == "head_top" and MHP_V2.sigmas[9] == pytest.approx(0.026)
    assert len(MHP_V2.limbs) == 18 and MHP_V2.limbs[0] == (9, 8)        # the released code's 18 limbs, head first
    assert PASCAL_PERSON_PART.num_keypoints == 14 and PASCAL_PERSON_PART.keypoints[:2] == ("head", "neck")


@pytest.mark.parametrize("tree, problem", [
    (((0, 1), (1, 2)), "has 3 edges, not 2"),
    (((0, 1), (2, 3), (1, 2)), "does not grow the tree"),
    (((0, 1), (1, 2), (2, 0)), "does not grow the tree"),
])
def test_a_tree_that_is_not_one_is_refused(tree, problem):
    with pytest.raises(ValueError, match=problem):
        skeleton_lib.make_skeleton("bad", ["a", "b", "c", "d"], tree, [0.05] * 4)


def test_sigmas_must_fit_the_keypoints():
    with pytest.raises(ValueError, match="needs 3 positive sigmas"):
        skeleton_lib.make_skeleton("bad", ["a", "b", "c"], ((0, 1), (0, 2)), [0.05, 0.05])


def test_flip_pairs_and_colours_follow_the_names():
    names = ["Nose", "Left-Eye", "Right-Eye", "left_paw", "tail"]
    assert skeleton_lib.derived_flip_pairs(names) == ((1, 2),)
    assert skeleton_lib.derived_colors(names) == (skeleton_lib.CENTRE_COLOR, skeleton_lib.LEFT_COLOR,
                                                  skeleton_lib.RIGHT_COLOR, skeleton_lib.LEFT_COLOR,
                                                  skeleton_lib.CENTRE_COLOR)


def test_the_tree_of_a_declared_graph():
    """A path 0-1-2-3-4 with a chord 1-3: 1, 2 and 3 are each 2 edges from their farthest keypoint, so the
    lowest, 1, is the root; breadth first from it with neighbours in index order (0, 2, 3, then 3's 4); a
    keypoint the graph does not reach (5) hangs from the root."""
    tree = skeleton_lib.spanning_tree(6, [(0, 1), (1, 2), (2, 3), (3, 4), (1, 3)])
    assert tree == ((1, 0), (1, 2), (1, 3), (3, 4), (1, 5))
    assert skeleton_lib.spanning_tree(5, [(0, 1), (1, 2), (2, 3), (3, 4)]) == ((2, 1), (2, 3), (1, 0), (3, 4))
    assert skeleton_lib.spanning_tree(3, [(0, 1), (1, 2)], root=0) == ((0, 1), (1, 2))


def test_a_coco_category_gives_its_skeleton():
    own = skeleton_lib.from_category(OWN_CATEGORY, "test")
    assert own.name == "figure" and own.category_id == 7 and own.num_keypoints == 5
    assert own.root == 0 and own.tree == ((0, 1), (0, 2), (0, 3), (0, 4))      # the head is the centre
    assert own.sigmas == (skeleton_lib.DEFAULT_SIGMA,) * 5
    assert own.flip_pairs == ((1, 2), (3, 4))
    coco_names = dict(OWN_CATEGORY, keypoints=list(COCO17.keypoints), skeleton=[[16, 14], [14, 12]])
    assert skeleton_lib.from_category(coco_names, "test") is COCO17                  # names of a built-in one
    chosen = skeleton_lib.from_category(OWN_CATEGORY, "test", tree=((1, 0), (0, 2), (0, 3), (0, 4)),
                                        sigmas=(0.1,) * 5)
    assert chosen.root == 1 and chosen.sigmas == (0.1,) * 5
    with pytest.raises(ValueError, match="not a pair of 1-based indices"):
        skeleton_lib.from_category(dict(OWN_CATEGORY, skeleton=[[0, 1]]), "test")


def test_keypoint_skeleton_binds_a_name_or_a_file(tmp_path):
    assert skeleton_lib.keypoint_skeleton() is COCO17
    assert skeleton_lib.keypoint_skeleton(name="mhp_v2") is MHP_V2
    assert skeleton_lib.keypoint_skeleton(annotations=str(own_skeleton_file(tmp_path))).name == "figure"
    with pytest.raises(ValueError, match="unknown skeleton 'coco18'"):
        skeleton_lib.keypoint_skeleton(name="coco18")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    with pytest.raises(ValueError, match="bare.json: no category declares keypoints"):
        skeleton_lib.keypoint_skeleton(annotations=str(bare))
    with pytest.raises(ValueError, match="cannot read a COCO JSON"):
        skeleton_lib.keypoint_skeleton(annotations=str(tmp_path / "missing.json"))
    assert skeleton_lib.keypoint_skeleton(name="mhp_v2", annotations=str(own_skeleton_file(tmp_path))).name == "figure"


# ------------------------------------------------------------------------------------------ data and records
@pytest.fixture(scope="module")
def crowdpose_scenes(tmp_path_factory):
    """Three small synthetic scenes annotated with CrowdPose's keypoints: (folder, annotations path)."""
    folder = tmp_path_factory.mktemp("crowdpose")
    synthetic.generate_dataset(str(folder), 3, seed=5, min_side=160, max_side=200, skeleton=CROWDPOSE)
    return folder, folder / "person_keypoints.json"


def test_records_say_which_skeleton_they_hold(crowdpose_scenes, tmp_path):
    folder, annotations = crowdpose_scenes
    summary = writer.convert(str(annotations), str(folder / "images"), str(tmp_path / "train"), num_shards=2)
    assert summary[writer.SKELETON] == "crowdpose"
    assert set(pipeline.records_skeletons(str(tmp_path / "train-*")).values()) == {"crowdpose"}
    pipeline.check_records_skeleton(str(tmp_path / "train-*"), CROWDPOSE)
    with pytest.raises(ValueError, match=r"records .* hold skeleton 'crowdpose', the configuration holds coco17 "
                                         r"\(17 keypoints\) \(bind keypoint_skeleton.name = 'crowdpose'\)"):
        pipeline.check_records_skeleton(str(tmp_path / "train-*"), COCO17)


def test_a_file_of_another_skeleton_is_refused_before_any_work(crowdpose_scenes, tmp_path):
    folder, annotations = crowdpose_scenes
    with pytest.raises(coco.AnnotationError, match=r"skeleton mismatch: .* declares crowdpose \(14 keypoints\), "
                                                   r"the task .* holds mhp_v2 \(16 keypoints\)"):
        writer.convert(str(annotations), str(folder / "images"), str(tmp_path / "train"), skeleton=MHP_V2)
    assert not list(tmp_path.iterdir())


def test_the_evaluation_ground_truth_is_validated_like_the_records(tmp_path):
    """One annotation with 10 keypoints and one 2-point polygon in a COCO-17 file: both are handled as the
    records handle them (the first skipped and counted, the polygon dropped), never given raw to COCOeval."""
    data = json.loads((SHARED_DATA / "coco_val_sample" / "person_keypoints.json").read_text())
    people = [a for a in data["annotations"] if a["num_keypoints"] > 0]
    people[0]["keypoints"] = people[0]["keypoints"][:30]
    people[1]["segmentation"].append([10.0, 10.0, 20.0, 20.0])
    problems = coco_problems.ProblemCounter()
    truth = coco.ground_truth(coco.parse_dataset(data, "test", problems))
    assert problems.warnings == {coco_problems.MALFORMED_ANNOTATION: 1, coco_problems.DEGENERATE_POLYGON: 1}
    assert len(truth["annotations"]) == len(data["annotations"]) - 1
    kept = {a["id"]: a for a in truth["annotations"]}[people[1]["id"]]
    assert kept["segmentation"] == people[1]["segmentation"][:-1]
    untouched = {a["id"]: a for a in truth["annotations"]}[people[2]["id"]]
    assert untouched["keypoints"] == people[2]["keypoints"] and untouched["bbox"] == people[2]["bbox"]
    assert truth["categories"] == [COCO17.category_entry()]


def test_oracle_eval_summarises_a_file_with_bad_annotations(tmp_path):
    folder = SHARED_DATA / "coco_val_sample"
    data = json.loads((folder / "person_keypoints.json").read_text())
    people = [a for a in data["annotations"] if a["num_keypoints"] > 0]
    people[0]["keypoints"] = people[0]["keypoints"][:30]
    people[1]["segmentation"].append([10.0, 10.0, 20.0, 20.0])
    annotations = tmp_path / "person_keypoints.json"
    annotations.write_text(json.dumps(data))
    _, summary = run_script("oracle_eval.py", "--task", "personlab", "--annotations", str(annotations),
                            "--images", str(folder / "images"), "--gin_bindings", "PersonLabInference.max_side = 401")
    assert summary["skeleton"] == "coco17" and summary["images"] == 4
    assert summary["keypoints_AP"] == pytest.approx(1.0)


def test_a_savedmodel_refuses_annotations_of_another_skeleton(crowdpose_scenes):
    folder, annotations = crowdpose_scenes
    _, export_dir, _ = exported_model("personlab")
    error = script_error("evaluate.py", "--saved_model", export_dir, "--annotations", str(annotations),
                         "--images", str(folder / "images"))
    assert "skeleton mismatch" in error and "crowdpose (14 keypoints)" in error and "coco17 (17 keypoints)" in error


def test_pictures_draw_the_skeletons_tree_and_colours():
    own = skeleton_lib.from_category(OWN_CATEGORY, "test")
    image = np.zeros((60, 60, 3), np.uint8)
    detections = {keys.Detection.KEYPOINTS: np.array([[[30, 10], [10, 30], [50, 30], [20, 50], [40, 50]]], float),
                  keys.Detection.KEYPOINT_SCORES: np.ones((1, 5)), keys.Detection.INSTANCE_SCORES: np.ones(1),
                  keys.Detection.NUM_DETECTIONS: np.array(1)}
    picture = overlay.draw_detections(image, detections, own)
    assert tuple(picture[30, 10]) == skeleton_lib.LEFT_COLOR and tuple(picture[30, 50]) == skeleton_lib.RIGHT_COLOR
    assert tuple(picture[10, 30]) == skeleton_lib.CENTRE_COLOR
    assert tuple(picture[20, 20]) == tuple(overlay.PALETTE[0])         # the tree edge head -> left hand, midway


# ------------------------------------------------------------------------------------------ the ordinary commands
@pytest.mark.parametrize("name", ["mhp_v2"])
def test_a_builtin_skeleton_trains_exports_and_evaluates(tmp_path, name):
    """Records, 2 training steps (the gin binding names the skeleton), export and evaluation with the ordinary
    commands; the SavedModel's outputs have the skeleton's K. Every built-in skeleton takes this path; it runs
    for MHP v2 (16 keypoints, the part parser's): CrowdPose and PASCAL-Person-Part differ only in the
    definitions checked above, and a user's own skeleton runs it in tests/test_docs.py (the suite's time:
    no test retrains what another trained)."""
    data = tmp_path / "data"
    synthetic.generate_dataset(str(data), 3, seed=2, min_side=160, max_side=200, skeleton=BUILTIN[name],
                               scene=synthetic_scene.SCENES["parts"])
    annotations, images = str(data / "person_keypoints.json"), str(data / "images")
    _, records = run_script("create_tfrecords.py", "--annotations", annotations, "--images", images,
                            "--output", str(tmp_path / "records" / "train"))
    assert records["skeleton"] == name
    run_script("train.py", "--gin_file", "gin/smoke.gin", "--model_dir", str(tmp_path / "model"), "--num_steps", "2",
               "--gin_bindings", f"TRAIN_FILES='{tmp_path / 'records' / 'train-*'}'",
               "--gin_bindings", f"keypoint_skeleton.name = '{name}'", "--gin_bindings", "train.strategy = 'one_device'")
    _, export = run_script("export_saved_model.py", "--model_dir", str(tmp_path / "model"), "--export_dir",
                           str(tmp_path / "export"), "--max_side", "161")
    assert export["config"]["skeleton"]["name"] == name
    _, summary = run_script("evaluate.py", "--saved_model", str(tmp_path / "export"), "--annotations", annotations,
                            "--images", images, "--output_dir", str(tmp_path / "evaluation"))
    assert summary["skeleton"] == name and summary["images_evaluated"] == 3
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures[serving.SERVING_DEFAULT]
    outputs = serve(**{serving.INPUT_NAME: tf.constant([(data / "images" / "000000000001.jpg").read_bytes()])})
    assert outputs[keys.Detection.KEYPOINTS].shape == (1, 20, BUILTIN[name].num_keypoints, 2)
