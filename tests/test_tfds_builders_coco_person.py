"""The tfds builder `coco_person`, built offline from the real samples linked into temporary COCO trees."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from pycocotools import mask as mask_utils

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco, coco_format, synthetic
from personlab_tf.evaluation import ground_truth
from personlab_tf.tfds_builders import coco_person
from personlab_tf.tfds_builders.coco_person import features, layout

import coco_samples

SPLITS = (layout.TRAIN, layout.VALIDATION)


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
    """The dataset built from both samples (train sample as train, val sample as validation)."""
    root = tmp_path_factory.mktemp("coco_person")
    coco_samples.make_sample_tree(root / "coco")
    return coco_person.prepare(root / "coco", root / "tfds")


def _examples(builder, split):
    """{image id: numpy example} of a split, images left encoded."""
    dataset = builder.as_dataset(split=split, decoders={features.IMAGE: tfds.decode.SkipDecoding()})
    return {int(example[features.IMAGE_ID]): example for example in tfds.as_numpy(dataset)}


def test_builds_both_splits_offline(builder):
    assert builder.name == "coco_person"
    assert set(builder.info.splits) == set(SPLITS)
    assert builder.info.splits[layout.TRAIN].num_examples == 36
    assert builder.info.splits[layout.VALIDATION].num_examples == 4
    assert builder.skipped_splits == {}
    # COCO's skeleton, stated in the metadata and the description.
    assert builder.skeleton == skeleton_lib.COCO17
    assert builder.info.metadata[coco_person.SKELETON]["name"] == "coco17"
    assert "Keypoints: skeleton coco17 (17 keypoints), nose, left_eye" in builder.info.description
    assert builder.info.features[features.PERSONS][features.KEYPOINTS].shape == (17, 3)
    # Once prepared, evaluate.py can open it by name from the data directory (importing the package
    # registers the builder).
    again = tfds.builder("coco_person", data_dir=Path(builder.data_dir).parents[1])
    assert again.info.splits[layout.VALIDATION].num_examples == 4
    assert again.skeleton == skeleton_lib.COCO17


@pytest.mark.parametrize("split", SPLITS)
def test_examples_round_trip(builder, split):
    """Image bytes, sizes and every person field equal the JSON; masks equal `annToMask`."""
    original = coco_samples.load_sample(split)
    coco = coco_samples.coco_object(original)
    examples = _examples(builder, split)
    assert set(examples) == {image["id"] for image in original["images"]}
    for image_id, example in examples.items():
        image = coco.imgs[image_id]
        assert example[features.FILE_NAME].decode() == image["file_name"]
        assert (example[features.HEIGHT], example[features.WIDTH]) == (image["height"], image["width"])
        with open(coco_samples.sample_images_dir(split) / image["file_name"], "rb") as f:
            assert example[features.IMAGE] == f.read()  # stored as is, not re-encoded
        persons = example[features.PERSONS]
        annotations = coco.imgToAnns[image_id]
        assert persons[features.ANNOTATION_ID].tolist() == [a["id"] for a in annotations]
        for n, annotation in enumerate(annotations):
            np.testing.assert_array_equal(
                persons[features.KEYPOINTS][n], np.reshape(annotation["keypoints"], (17, 3)))
            assert persons[features.BBOX][n].tolist() == annotation["bbox"]  # float64: exact
            assert persons[features.AREA][n] == annotation["area"]
            assert persons[features.IS_CROWD][n] == bool(annotation["iscrowd"])
            assert persons[features.NUM_KEYPOINTS][n] == annotation["num_keypoints"]
            rle = {"size": persons[features.SEGMENTATION_SIZE][n].tolist(),
                   "counts": persons[features.SEGMENTATION_COUNTS][n]}
            np.testing.assert_array_equal(mask_utils.decode(rle), coco.annToMask(annotation))


def test_crowd_regions_are_kept(builder):
    examples = _examples(builder, layout.TRAIN)
    crowd = sum(int(e[features.PERSONS][features.IS_CROWD].sum()) for e in examples.values())
    assert crowd == 5  # the train sample's crowd regions (RLE in the JSON)


def test_image_decodes_through_tfds(builder):
    for example in tfds.as_numpy(builder.as_dataset(split=layout.VALIDATION).take(1)):
        assert example[features.IMAGE].shape == (example[features.HEIGHT], example[features.WIDTH], 3)
        assert example[features.IMAGE].dtype == np.uint8


def test_only_validation_skips_train_with_a_message(tmp_path, caplog):
    coco_samples.make_sample_tree(tmp_path / "coco", splits=(layout.VALIDATION,))
    with caplog.at_level(logging.WARNING):
        builder = coco_person.prepare(tmp_path / "coco", tmp_path / "tfds")
    assert set(builder.info.splits) == {layout.VALIDATION}
    expected = os.path.join(tmp_path / "coco", "annotations", "person_keypoints_train2017.json")
    assert expected in builder.skipped_splits[layout.TRAIN]
    assert "split 'train' skipped" in caplog.text and expected in caplog.text


def test_tree_without_any_split_names_the_expected_paths(tmp_path):
    manual_dir = tmp_path / "coco"
    (manual_dir / "annotations").mkdir(parents=True)
    (manual_dir / "README.txt").write_text("not COCO")
    with pytest.raises(FileNotFoundError) as error:
        coco_person.prepare(manual_dir, tmp_path / "tfds")
    message = str(error.value)
    for split in SPLITS:
        for path in layout.split_paths(str(manual_dir), split):
            assert path in message


def test_empty_manual_dir_names_the_expected_layout(tmp_path):
    (tmp_path / "coco").mkdir()
    with pytest.raises(AssertionError, match="person_keypoints_val2017.json"):
        coco_person.prepare(tmp_path / "coco", tmp_path / "tfds")


def test_images_without_people_kept_in_validation_only(tmp_path):
    """COCO evaluates every val image; the training split keeps only images with people."""
    dataset = coco_samples.load_sample(layout.VALIDATION)
    first = dataset["images"][0]
    dataset["images"].append(dict(first, id=999999))  # same file, no annotation
    annotations_path = tmp_path / "with_empty.json"
    annotations_path.write_text(json.dumps(dataset))
    images_dir = coco_samples.sample_images_dir(layout.VALIDATION)
    for split in SPLITS:
        layout.arrange_coco_tree(tmp_path / "coco", split, annotations_path, images_dir)
    builder = coco_person.prepare(tmp_path / "coco", tmp_path / "tfds")
    validation = _examples(builder, layout.VALIDATION)
    assert len(validation) == 5 and len(validation[999999][features.PERSONS][features.ANNOTATION_ID]) == 0
    assert set(_examples(builder, layout.TRAIN)) == {image["id"] for image in dataset["images"][:-1]}


def test_synthetic_dataset_arranged_as_a_tree(tmp_path):
    """The demo's path: make_synthetic_coco output -> arrange_coco_tree -> tfds -> exact ground truth."""
    out = tmp_path / "synthetic"
    summary = synthetic.generate_dataset(str(out), num_images=4, seed=5, min_side=128, max_side=160)
    assert summary["crowd_regions"] > 0 and summary["persons_with_keypoints"] > 0  # both kinds covered
    layout.arrange_coco_tree(tmp_path / "coco", "val", out / coco_format.ANNOTATIONS_FILE,
                             out / coco_format.IMAGES_DIR)
    builder = coco_person.prepare(tmp_path / "coco", tmp_path / "tfds")
    rebuilt = coco_samples.coco_object(ground_truth.load_ground_truth(builder, layout.VALIDATION))
    original = coco_samples.coco_object(json.loads((out / coco_format.ANNOTATIONS_FILE).read_text()))
    assert sorted(rebuilt.getImgIds()) == sorted(original.getImgIds()) == [1, 2, 3, 4]
    assert sorted(rebuilt.getAnnIds()) == sorted(original.getAnnIds())
    for annotation_id in original.getAnnIds():
        new, old = rebuilt.anns[annotation_id], original.anns[annotation_id]
        for key in ("iscrowd", "num_keypoints", "area", "bbox"):
            assert new[key] == old[key]
        # Keypoints are float32 (COCO's are integers, exact); the synthetic ones have 2 decimals.
        np.testing.assert_array_equal(new["keypoints"], np.float32(old["keypoints"]))
        np.testing.assert_array_equal(rebuilt.annToMask(rebuilt.anns[annotation_id]),
                                      original.annToMask(original.anns[annotation_id]))


def test_arrange_coco_tree_refuses_bad_input(tmp_path):
    json_path = coco_samples.sample_json_path(layout.VALIDATION)
    images_dir = coco_samples.sample_images_dir(layout.VALIDATION)
    with pytest.raises(ValueError, match="unknown split"):
        layout.arrange_coco_tree(tmp_path, "test", json_path, images_dir)
    with pytest.raises(FileNotFoundError):
        layout.arrange_coco_tree(tmp_path, "val", tmp_path / "missing.json", images_dir)
    layout.arrange_coco_tree(tmp_path, "val", json_path, images_dir)
    assert os.path.islink(tmp_path / "val2017")
    with pytest.raises(FileExistsError):
        layout.arrange_coco_tree(tmp_path, layout.VALIDATION, json_path, images_dir)


# ---------------------------------------------------------------- faults: degenerate polygons, build record, stale data

def arranged(tmp_path, dataset, name="val.json"):
    """A COCO tree at tmp_path/coco whose validation split is `dataset` (a COCO dict) with the val sample's
    images; returns the tree."""
    path = tmp_path / name
    path.write_text(json.dumps(dataset))
    layout.arrange_coco_tree(tmp_path / "coco", layout.VALIDATION, path,
                             coco_samples.sample_images_dir(layout.VALIDATION))
    return tmp_path / "coco"


def test_degenerate_polygons_are_dropped_as_the_records_drop_them(tmp_path):
    dataset = coco_samples.load_sample(layout.VALIDATION)
    first, second = dataset["annotations"][0], dataset["annotations"][1]
    first["segmentation"] = [[10.0, 10.0, 30.0, 12.0]] + first["segmentation"]  # 2 points first: taken for a box
    second["segmentation"] = second["segmentation"] + [[5.0, 5.0, 9.0, 7.0]]     # 2 points after a polygon
    original = coco_samples.coco_object(dataset)
    with pytest.raises(TypeError):  # the fault: pycocotools takes the first for a box, and fails
        original.annToMask(original.anns[first["id"]])
    builder = coco_person.prepare(arranged(tmp_path, dataset), tmp_path / "tfds")
    rebuilt = coco_samples.coco_object(ground_truth.load_ground_truth(builder, layout.VALIDATION))
    intact = coco_samples.coco_object(coco_samples.load_sample(layout.VALIDATION))
    for annotation in (first, second):
        expected = intact.annToMask(intact.anns[annotation["id"]])
        np.testing.assert_array_equal(rebuilt.annToMask(rebuilt.anns[annotation["id"]]), expected)
    assert builder.info.metadata[layout.VALIDATION][coco_person.WARNINGS] == {"degenerate_polygon": 2}


def test_the_build_record_keeps_the_images_skipped_and_the_annotations_fingerprint(tmp_path):
    dataset = coco_samples.load_sample(layout.VALIDATION)
    dataset["images"].append(dict(dataset["images"][0], id=999, file_name="missing.jpg"))
    manual_dir = arranged(tmp_path, dataset)
    coco_person.prepare(manual_dir, tmp_path / "tfds")
    cached = tfds.builder("coco_person", data_dir=tmp_path / "tfds")  # a later run, from the data directory alone
    assert cached.info.metadata[layout.VALIDATION] == {
        coco_person.ANNOTATIONS_SHA256: coco_person.annotations_fingerprint(tmp_path / "val.json"),
        coco_person.IMAGES_SKIPPED: 1, coco_person.SKIPPED_IMAGE_IDS: [999], coco_person.WARNINGS: {"missing_image": 1}}


def test_a_dataset_built_from_other_annotations_is_refused(tmp_path):
    dataset = coco_samples.load_sample(layout.VALIDATION)
    manual_dir = arranged(tmp_path, dataset)
    builder = coco_person.prepare(manual_dir, tmp_path / "tfds")
    before = {path.name: path.read_bytes() for path in Path(builder.data_dir).iterdir()}
    del dataset["annotations"][0]
    (tmp_path / "val.json").write_text(json.dumps(dataset))  # the annotations the tree links to have changed
    with pytest.raises(coco_person.StaleDatasetError, match=r"split 'validation' was built from an annotations file "
                                                            r"of SHA-256 \w+, .*val2017.json has \w+. Delete"):
        coco_person.prepare(manual_dir, tmp_path / "tfds")
    assert {path.name: path.read_bytes() for path in Path(builder.data_dir).iterdir()} == before


def test_a_dataset_of_another_skeleton(tmp_path):
    """Synthetic crowdpose data: prepare takes the file's skeleton, stores [14, 3] keypoints, names it; the data
    directory reopens with it and refuses another; a build told another skeleton than the file's fails."""
    crowdpose = skeleton_lib.CROWDPOSE
    out = tmp_path / "synthetic"
    synthetic.generate_dataset(str(out), num_images=2, seed=5, min_side=96, max_side=128, skeleton=crowdpose)
    layout.arrange_coco_tree(tmp_path / "coco", "val", out / coco_format.ANNOTATIONS_FILE, out / coco_format.IMAGES_DIR)
    assert coco_person.manual_skeleton(str(tmp_path / "coco")) == crowdpose
    builder = coco_person.prepare(tmp_path / "coco", tmp_path / "tfds")
    assert builder.skeleton == crowdpose
    assert builder.info.features[features.PERSONS][features.KEYPOINTS].shape == (14, 3)
    assert "skeleton crowdpose (14 keypoints), left_shoulder" in builder.info.description
    original = json.loads((out / coco_format.ANNOTATIONS_FILE).read_text())
    by_id = {a["id"]: a for a in original["annotations"]}
    examples = _examples(builder, layout.VALIDATION)
    assert len(examples) == 2 and by_id
    for example in examples.values():
        persons = example[features.PERSONS]
        for n, annotation_id in enumerate(persons[features.ANNOTATION_ID]):
            np.testing.assert_array_equal(persons[features.KEYPOINTS][n],
                                          np.float32(by_id[annotation_id]["keypoints"]).reshape(14, 3))

    again = tfds.builder("coco_person", data_dir=tmp_path / "tfds")  # the recorded skeleton
    assert again.skeleton == crowdpose and coco_person.recorded_skeleton(tmp_path / "tfds") == crowdpose
    assert again.info.metadata[coco_person.SKELETON] == json.loads(json.dumps(crowdpose.to_config()))
    assert coco_person.prepare(tmp_path / "coco", tmp_path / "tfds").skeleton == crowdpose  # reused
    with pytest.raises(coco_person.StaleDatasetError, match=r"skeleton mismatch: .* holds crowdpose \(14 keypoints\), "
                                                            r"the builder holds coco17 \(17 keypoints\)"):
        coco_person.Builder(data_dir=tmp_path / "tfds", skeleton=skeleton_lib.COCO17)
    with pytest.raises(coco.AnnotationError, match="skeleton mismatch"):
        coco_person.prepare(tmp_path / "coco", tmp_path / "other", skeleton=skeleton_lib.COCO17)
