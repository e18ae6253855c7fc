"""COCO person annotations -> sharded TFRecords.

Covers personlab_tf.data.coco, personlab_tf.data.writer and scripts/create_tfrecords.py.
"""

import copy
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from personlab_tf.skeleton import COCO17
from personlab_tf.data import coco, coco_problems, writer
from personlab_tf.data import record_format as rf

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "create_tfrecords.py"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN = DATA / "coco_train_sample"
VAL = DATA / "coco_val_sample"
JSON_NAME = "person_keypoints.json"
IMAGES_NAME = "images"
K = COCO17.num_keypoints

# COCO JSON field names used by the tests.
ID, IMAGE_ID, IS_CROWD = "id", "image_id", "iscrowd"
KEYPOINTS, SEGMENTATION, BBOX = "keypoints", "segmentation", "bbox"
SIZE, COUNTS = "size", "counts"  # of an RLE segmentation

# The small datasets below start from one real image: val2017 40083 (500 x 333) and its 3 persons,
# 2 of them with keypoints, one polygon each.
BASE_IMAGE_ID = 40083
BASE_FILE = "000000040083.jpg"
BASE_HEIGHT, BASE_WIDTH = 333, 500
BASE_PERSONS = 3
BASE_ANNOTATED = 2
EXTRA_ID = 1  # annotation id of a person added by a test
# TensorFlow's native (absl) log lines, which some CPUs get at import whatever TF_CPP_MIN_LOG_LEVEL says.
TF_NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


def parse_shards(paths):
    """Records of the shards parsed with FEATURE_SPEC: numpy values, keypoints [N, K, 3], bbox [N, 4],
    masks unpacked to [N, H, W] bool."""
    records = []
    for serialized in tf.data.TFRecordDataset([str(p) for p in paths]):
        parsed = tf.io.parse_single_example(serialized, rf.FEATURE_SPEC)
        record = {k: (v.values if isinstance(v, tf.SparseTensor) else v).numpy() for k, v in parsed.items()}
        n, h, w = len(record[rf.PERSON_ID]), record[rf.IMAGE_HEIGHT], record[rf.IMAGE_WIDTH]
        record[rf.PERSON_KEYPOINTS] = record[rf.PERSON_KEYPOINTS].reshape(n, K, 3)
        record[rf.PERSON_BBOX] = record[rf.PERSON_BBOX].reshape(n, 4)
        record[rf.PERSON_MASKS] = rf.unpack_masks_numpy(record[rf.PERSON_MASKS], n, h, w)
        records.append(record)
    return records


def write_json(path, value):
    """Writes `value` as JSON; returns the path."""
    path.write_text(json.dumps(value))
    return path


def convert(annotations, images, tmp_path, num_shards=1, imputed=None):
    """Runs `writer.convert` into tmp_path; returns (summary, parsed records of all shards)."""
    prefix = str(tmp_path / "out" / "records")
    summary = writer.convert(str(annotations), str(images), prefix, num_shards, imputed and str(imputed))
    return summary, parse_shards(writer.shard_paths(prefix, num_shards))


def person_index(records):
    """{annotation id: (record, person index)} over all records."""
    return {int(i): (r, n) for r in records for n, i in enumerate(r[rf.PERSON_ID])}


def run_script(*args):
    """Runs scripts/create_tfrecords.py from the repo root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)


def check_against_coco(records, annotations_path, images_dir):
    """Every json person is written once, and every field equals the json / pycocotools / the file."""
    api = COCO(str(annotations_path))
    written_ids = [int(i) for r in records for i in r[rf.PERSON_ID]]
    assert sorted(written_ids) == sorted(api.anns)
    for record in records:
        info = api.imgs[int(record[rf.IMAGE_ID])]
        assert record[rf.IMAGE_FILENAME].decode() == info["file_name"]
        assert (record[rf.IMAGE_HEIGHT], record[rf.IMAGE_WIDTH]) == (info["height"], info["width"])
        assert record[rf.IMAGE_ENCODED] == (Path(images_dir) / info["file_name"]).read_bytes()
        assert list(record[rf.PERSON_ID]) == api.getAnnIds(imgIds=info[ID])
        for n, annotation_id in enumerate(record[rf.PERSON_ID]):
            ann = api.anns[int(annotation_id)]
            json_keypoints = np.asarray(ann[KEYPOINTS], np.float32).reshape(K, 3)
            np.testing.assert_array_equal(record[rf.PERSON_KEYPOINTS][n], json_keypoints)
            assert record[rf.PERSON_IS_CROWD][n] == ann[IS_CROWD]
            labelled = np.any(json_keypoints[:, 2] > 0)
            assert labelled == (ann["num_keypoints"] > 0)
            assert record[rf.PERSON_ANNOTATED][n] == labelled
            assert record[rf.PERSON_AREA][n] == np.float32(ann["area"])
            np.testing.assert_array_equal(record[rf.PERSON_BBOX][n], np.float32(ann[BBOX]))
            np.testing.assert_array_equal(record[rf.PERSON_MASKS][n], api.annToMask(ann).astype(bool))
    return api


@pytest.fixture(scope="module")
def train_conversion(tmp_path_factory):
    """The train sample converted into 3 shards: (summary, records)."""
    return convert(TRAIN / JSON_NAME, TRAIN / IMAGES_NAME, tmp_path_factory.mktemp("train"), num_shards=3)


def test_train_sample_converts_without_loss(train_conversion):
    summary, records = train_conversion
    assert summary == {
        writer.IMAGES_WRITTEN: 36, writer.PERSONS: 172, writer.CROWD_REGIONS: 5, writer.ANNOTATED_PERSONS: 86,
        writer.IMPUTED_PERSONS: 0, writer.SHARDS: 3, writer.IMAGES_WITHOUT_PEOPLE: 0,
        writer.IMAGES_SKIPPED: 0, writer.WARNINGS: {}, writer.STALE_SHARDS_REMOVED: [], writer.SKELETON: "coco17",
    }
    assert len(records) == 36


def test_train_sample_records_equal_json_and_pycocotools(train_conversion):
    _, records = train_conversion
    api = check_against_coco(records, TRAIN / JSON_NAME, TRAIN / IMAGES_NAME)
    crowd = [(r, n) for r in records for n in np.flatnonzero(r[rf.PERSON_IS_CROWD])]
    assert len(crowd) == 5
    for record, n in crowd:  # uncompressed RLE regions, compared above; they are not empty
        assert isinstance(api.anns[int(record[rf.PERSON_ID][n])][SEGMENTATION][COUNTS], list)
        assert record[rf.PERSON_MASKS][n].any()
        assert not record[rf.PERSON_ANNOTATED][n]


def test_val_sample(tmp_path):
    summary, records = convert(VAL / JSON_NAME, VAL / IMAGES_NAME, tmp_path)
    assert summary[writer.IMAGES_WRITTEN] == 4
    assert summary[writer.PERSONS] == 14
    assert summary[writer.ANNOTATED_PERSONS] == 12
    assert summary[writer.WARNINGS] == {}
    check_against_coco(records, VAL / JSON_NAME, VAL / IMAGES_NAME)


def test_shards_hold_every_image_exactly_once(train_conversion, tmp_path):
    _, all_records = train_conversion
    prefix = str(tmp_path / "train")
    summary = writer.convert(str(TRAIN / JSON_NAME), str(TRAIN / IMAGES_NAME), prefix, 4)
    paths = sorted(Path(tmp_path).glob("train-*"))
    assert [str(p) for p in paths] == writer.shard_paths(prefix, 4)
    assert paths[2].name == "train-00002-of-00004.tfrecord"
    ids = [[int(r[rf.IMAGE_ID]) for r in parse_shards([p])] for p in paths]
    assert [len(shard) for shard in ids] == [9, 9, 9, 9]  # round robin
    assert sorted(sum(ids, [])) == sorted(int(r[rf.IMAGE_ID]) for r in all_records)
    assert summary[writer.SHARDS] == 4


def test_more_shards_than_images_writes_empty_shards(tmp_path):
    summary, records = convert(VAL / JSON_NAME, VAL / IMAGES_NAME, tmp_path, num_shards=6)
    paths = writer.shard_paths(str(tmp_path / "out" / "records"), 6)
    assert [len(parse_shards([p])) for p in paths] == [1, 1, 1, 1, 0, 0]
    assert len(records) == summary[writer.IMAGES_WRITTEN] == 4


def test_zero_shards_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        writer.write_shards([], str(tmp_path / "x"), 0)


# ---------------------------------------------------------------- imputed keypoints


def test_imputed_keypoints(tmp_path):
    unlabelled_id, labelled_id = 1202706, 198196  # persons of val image 40083: bbox 275,126,11,68 / labelled
    keypoints = np.zeros((K, 3), np.float32)
    keypoints[0] = (280, 130, 1)
    keypoints[5] = (282.5, 150, 1)
    keypoints[16] = (278, 190, 1)
    entries = [
        {ID: unlabelled_id, KEYPOINTS: keypoints.ravel().tolist()},
        {ID: 999999999, KEYPOINTS: keypoints.ravel().tolist()},
        {ID: labelled_id, KEYPOINTS: keypoints.ravel().tolist()},
        {ID: 460541, KEYPOINTS: keypoints.ravel().tolist()[:50]},
        {ID: 508900, KEYPOINTS: ["a"] * (3 * K)},
        {KEYPOINTS: keypoints.ravel().tolist()},
    ]
    imputed = write_json(tmp_path / "imputed.json", entries)
    summary, records = convert(VAL / JSON_NAME, VAL / IMAGES_NAME, tmp_path, imputed=imputed)
    assert summary[writer.WARNINGS] == {
        coco_problems.IMPUTED_UNKNOWN_ID: 1, coco_problems.IMPUTED_FOR_LABELLED_PERSON: 1,
        coco_problems.IMPUTED_MALFORMED: 3}
    assert summary[writer.IMPUTED_PERSONS] == 1
    assert summary[writer.ANNOTATED_PERSONS] == 12 + 1
    assert summary[writer.PERSONS] == 14
    persons = person_index(records)
    record, n = persons[unlabelled_id]
    assert record[rf.PERSON_ANNOTATED][n] == 1
    assert record[rf.PERSON_IMPUTED][n] == 1
    assert record[rf.PERSON_IMPUTED].sum() == 1
    np.testing.assert_array_equal(record[rf.PERSON_KEYPOINTS][n], keypoints)
    record, n = persons[labelled_id]
    assert record[rf.PERSON_IMPUTED][n] == 0
    api = COCO(str(VAL / JSON_NAME))
    labelled_keypoints = np.float32(api.anns[labelled_id][KEYPOINTS])
    np.testing.assert_array_equal(record[rf.PERSON_KEYPOINTS][n].ravel(), labelled_keypoints)
    record, n = persons[508900]  # the malformed entry left it unannotated
    assert record[rf.PERSON_ANNOTATED][n] == 0


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({ID: 1})],
                         ids=["missing", "invalid", "not_a_list"])
def test_unusable_imputed_file_raises(tmp_path, content):
    path = tmp_path / "imputed.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(coco.AnnotationError, match=str(path)):
        convert(VAL / JSON_NAME, VAL / IMAGES_NAME, tmp_path, imputed=path)


# ---------------------------------------------------------------- bad inputs


class SmallDataset:
    """A COCO dataset in a temp dir made from val image 40083 and its persons; edit, then `convert`."""

    def __init__(self, root):
        full = json.loads((VAL / JSON_NAME).read_text())
        self.root = root
        self.jpeg = (VAL / IMAGES_NAME / BASE_FILE).read_bytes()
        self.files = {BASE_FILE: self.jpeg}
        self.images = [i for i in full["images"] if i[ID] == BASE_IMAGE_ID]
        self.annotations = [a for a in full["annotations"] if a[IMAGE_ID] == BASE_IMAGE_ID]
        self.categories = full["categories"]

    def person(self, annotation_id=EXTRA_ID, image_id=BASE_IMAGE_ID, **changes):
        """A copy of the first (labelled, one-polygon) base person with a new id and `changes`."""
        person = copy.deepcopy(self.annotations[0])
        person.update(id=annotation_id, image_id=image_id, **changes)
        return person

    def add_image(self, image_id, file_name, data, people=1, height=BASE_HEIGHT, width=BASE_WIDTH):
        """Adds an image entry (file `data`, None for no file) with `people` copies of the base person."""
        self.images.append({ID: image_id, "file_name": file_name, "height": height, "width": width})
        if data is not None:
            self.files[file_name] = data
        for n in range(people):
            self.annotations.append(self.person(annotation_id=1000 * image_id + n, image_id=image_id))

    def write(self):
        """Writes the JSON and the images; returns (annotations path, images dir)."""
        images_dir = self.root / IMAGES_NAME
        images_dir.mkdir(exist_ok=True)
        for name, data in self.files.items():
            (images_dir / name).write_bytes(data)
        data = {"images": self.images, "annotations": self.annotations, "categories": self.categories}
        return write_json(self.root / JSON_NAME, data), images_dir

    def convert(self, **kwargs):
        """Writes and converts; returns (summary, records)."""
        return convert(*self.write(), self.root, **kwargs)


@pytest.fixture
def small(tmp_path):
    return SmallDataset(tmp_path)


def expected_summary(warnings=None, written=1, persons=BASE_PERSONS, annotated=BASE_ANNOTATED, skipped=0,
                     without_people=0, crowd=0):
    """The summary of a one-shard conversion of a small dataset."""
    return {
        writer.IMAGES_WRITTEN: written, writer.PERSONS: persons, writer.CROWD_REGIONS: crowd,
        writer.ANNOTATED_PERSONS: annotated, writer.IMPUTED_PERSONS: 0, writer.SHARDS: 1,
        writer.IMAGES_WITHOUT_PEOPLE: without_people, writer.IMAGES_SKIPPED: skipped,
        writer.WARNINGS: warnings or {}, writer.STALE_SHARDS_REMOVED: [], writer.SKELETON: "coco17",
    }


def truncated_jpeg(dataset):
    return dataset.jpeg[: len(dataset.jpeg) // 2]


def random_bytes(_):
    return np.random.default_rng(0).bytes(5000)


def gif(dataset):
    output = io.BytesIO()
    Image.open(io.BytesIO(dataset.jpeg)).save(output, format="GIF")
    return output.getvalue()


@pytest.mark.parametrize("kind,make_bytes", [
    (coco_problems.CORRUPT_IMAGE, truncated_jpeg),
    (coco_problems.CORRUPT_IMAGE, random_bytes),
    (coco_problems.UNSUPPORTED_IMAGE_FORMAT, gif),
], ids=["truncated_jpeg", "random_bytes", "gif"])
def test_unreadable_image_is_skipped(small, kind, make_bytes):
    small.add_image(2, "bad.jpg", make_bytes(small))
    summary, records = small.convert()
    assert summary == expected_summary({kind: 1}, skipped=1)
    assert [r[rf.IMAGE_ID] for r in records] == [BASE_IMAGE_ID]


def test_missing_image_file_is_skipped(small):
    small.add_image(2, "absent.jpg", None)
    summary, records = small.convert()
    assert summary == expected_summary({coco_problems.MISSING_IMAGE: 1}, skipped=1)
    assert [r[rf.IMAGE_ID] for r in records] == [BASE_IMAGE_ID]


def test_size_mismatch_is_skipped(small):
    small.add_image(2, "copy.jpg", small.jpeg, height=BASE_HEIGHT + 1)
    summary, _ = small.convert()
    assert summary == expected_summary({coco_problems.SIZE_MISMATCH: 1}, skipped=1)


def test_malformed_image_entry_is_skipped(small):
    small.add_image(2, "copy.jpg", small.jpeg)
    del small.images[-1]["height"]
    summary, _ = small.convert()
    # Its person then refers to an unknown image id.
    assert summary == expected_summary({coco_problems.MALFORMED_IMAGE: 1, coco_problems.MALFORMED_ANNOTATION: 1},
                                       skipped=1)


def test_image_without_people_is_not_written(small):
    small.add_image(2, "copy.jpg", small.jpeg, people=0)
    summary, records = small.convert()
    assert summary == expected_summary(without_people=1)
    assert len(records) == 1


def test_empty_annotation_list_writes_nothing_and_says_why(small):
    small.annotations = []
    with pytest.raises(writer.NothingWrittenError, match="of the 1 valid images in .*, 1 have no person and 0 were "
                                                         "skipped"):
        small.convert()
    assert not list(small.root.rglob("*.tfrecord*"))


def test_non_person_category_is_ignored(small):
    small.annotations.append(small.person(category_id=2))
    summary, records = small.convert()
    assert summary == expected_summary({coco_problems.NON_PERSON_CATEGORY: 1})
    assert EXTRA_ID not in person_index(records)


def with_item(key, index, value):
    """A change to a person: person[key][index] = value."""
    def change(person):
        person[key][index] = value
    return change


def with_field(key, value):
    """A change to a person: person[key] = value."""
    def change(person):
        person[key] = value
    return change


def without_field(key):
    """A change to a person: del person[key]."""
    def change(person):
        del person[key]
    return change


MALFORMED = {
    "keypoints_length_50": lambda p: p.update(keypoints=p[KEYPOINTS][:50]),
    "keypoint_string": with_item(KEYPOINTS, 0, "12"),
    "keypoint_null": with_item(KEYPOINTS, 3, None),
    "keypoint_nan": with_item(KEYPOINTS, 3, float("nan")),
    "visibility_3": with_item(KEYPOINTS, 2, 3),
    "keypoints_missing": without_field(KEYPOINTS),
    "segmentation_missing": without_field(SEGMENTATION),
    "segmentation_string": with_field(SEGMENTATION, "abc"),
    "polygon_string": lambda p: p[SEGMENTATION][0].__setitem__(0, "x"),
    "rle_wrong_size": with_field(SEGMENTATION, {SIZE: [10, 10], COUNTS: [100]}),
    "rle_short_counts": with_field(SEGMENTATION, {SIZE: [BASE_HEIGHT, BASE_WIDTH], COUNTS: [5, 3]}),
    "rle_negative_count": with_field(
        SEGMENTATION, {SIZE: [BASE_HEIGHT, BASE_WIDTH], COUNTS: [-5, BASE_HEIGHT * BASE_WIDTH + 5]}),
    "rle_bad_string": with_field(SEGMENTATION, {SIZE: [BASE_HEIGHT, BASE_WIDTH], COUNTS: "0~~"}),
    "rle_short_string": with_field(SEGMENTATION, {SIZE: [BASE_HEIGHT, BASE_WIDTH], COUNTS: "52"}),
    "bbox_three_numbers": with_field(BBOX, [1, 2, 3]),
    "bbox_missing": without_field(BBOX),
    "bbox_negative_height": with_item(BBOX, 3, -1),
    "area_string": with_field("area", "large"),
    "unknown_image_id": with_field(IMAGE_ID, 12345),
    "id_string": with_field(ID, "1"),
    "id_beyond_int64": with_field(ID, 2**63),
    "keypoint_beyond_float": with_item(KEYPOINTS, 0, 10**400),
    "iscrowd_2": with_field(IS_CROWD, 2),
    "duplicate_id": with_field(ID, 198196),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_annotation_skips_the_person(small, change):
    person = small.person()
    change(person)
    small.annotations.append(person)
    summary, records = small.convert()
    assert summary == expected_summary({coco_problems.MALFORMED_ANNOTATION: 1})
    assert sorted(person_index(records)) == sorted(a[ID] for a in small.annotations[:BASE_PERSONS])


def test_annotation_that_is_not_an_object(small):
    small.annotations.append([1, 2, 3])
    summary, _ = small.convert()
    assert summary == expected_summary({coco_problems.MALFORMED_ANNOTATION: 1})


def test_degenerate_polygon_is_dropped(small):
    good = small.annotations[0][SEGMENTATION][0]
    small.annotations.append(small.person(segmentation=[[10, 10, 20, 20], good, [1, 2, 3, 4, 5, 6, 7]]))
    summary, records = small.convert()
    assert summary == expected_summary({coco_problems.DEGENERATE_POLYGON: 2}, persons=4, annotated=3)
    persons = person_index(records)
    record, n = persons[EXTRA_ID]
    np.testing.assert_array_equal(record[rf.PERSON_MASKS][n], record[rf.PERSON_MASKS][persons[198196][1]])


def test_person_without_polygons_keeps_keypoints(small):
    small.annotations.append(small.person(segmentation=[[0, 0, 10, 10, 20, 20]]))  # collinear: zero area
    summary, records = small.convert()
    warnings = {coco_problems.DEGENERATE_POLYGON: 1, coco_problems.EMPTY_SEGMENTATION: 1}
    assert summary == expected_summary(warnings, persons=4, annotated=3)
    record, n = person_index(records)[EXTRA_ID]
    assert not record[rf.PERSON_MASKS][n].any()
    np.testing.assert_array_equal(record[rf.PERSON_KEYPOINTS][n].ravel(), small.annotations[0][KEYPOINTS])
    assert record[rf.PERSON_ANNOTATED][n] == 1


def test_crowd_region_without_polygons_is_dropped(small):
    small.annotations.append(small.person(iscrowd=1, segmentation=[[1, 1, 5, 5]], keypoints=[0] * (3 * K)))
    summary, records = small.convert()
    assert summary == expected_summary({coco_problems.DEGENERATE_POLYGON: 1, coco_problems.EMPTY_SEGMENTATION: 1})
    assert EXTRA_ID not in person_index(records)


def test_compressed_rle_crowd_region(small):
    mask = np.zeros((BASE_HEIGHT, BASE_WIDTH), np.uint8)
    mask[100:150, 30:90] = 1
    mask[200:210, 400:] = 1
    counts = mask_utils.encode(np.asfortranarray(mask))[COUNTS].decode("ascii")
    segmentation = {SIZE: [BASE_HEIGHT, BASE_WIDTH], COUNTS: counts}
    small.annotations.append(small.person(iscrowd=1, segmentation=segmentation, keypoints=[0] * (3 * K)))
    summary, records = small.convert()
    assert summary == expected_summary(persons=4, crowd=1)
    record, n = person_index(records)[EXTRA_ID]
    np.testing.assert_array_equal(record[rf.PERSON_MASKS][n], mask.astype(bool))
    assert record[rf.PERSON_IS_CROWD][n] == 1 and record[rf.PERSON_ANNOTATED][n] == 0


def test_keypoint_outside_image_is_unlabelled(small):
    person = small.person()
    person[KEYPOINTS][0:3] = [BASE_WIDTH, 10, 2]  # x > W - 0.5
    person[KEYPOINTS][3:6] = [-0.5, BASE_HEIGHT - 0.5, 2]  # on the border: inside
    person[KEYPOINTS][6:9] = [10, -1, 1]  # y < -0.5
    small.annotations.append(person)
    summary, records = small.convert()
    assert summary == expected_summary({coco_problems.KEYPOINT_OUTSIDE_IMAGE: 2}, persons=4, annotated=3)
    record, n = person_index(records)[EXTRA_ID]
    expected = np.float32(person[KEYPOINTS]).reshape(K, 3)
    expected[[0, 2]] = 0
    np.testing.assert_array_equal(record[rf.PERSON_KEYPOINTS][n], expected)


def test_imputed_for_crowd_is_ignored_and_outside_keypoints_dropped(small):
    unlabelled_id = 1202706  # base person without keypoints
    small.annotations.append(small.person(iscrowd=1, keypoints=[0] * (3 * K)))
    keypoints = np.zeros((K, 3), np.float32)
    keypoints[0] = (280, 130, 2)
    keypoints[1] = (280, BASE_HEIGHT + 4, 2)  # outside
    entries = [{ID: unlabelled_id, KEYPOINTS: keypoints.ravel().tolist()},
               {ID: EXTRA_ID, KEYPOINTS: keypoints.ravel().tolist()}]
    summary, records = small.convert(imputed=write_json(small.root / "imputed.json", entries))
    warnings = {coco_problems.IMPUTED_FOR_CROWD: 1, coco_problems.KEYPOINT_OUTSIDE_IMAGE: 1}
    expected = expected_summary(warnings, persons=4, annotated=3, crowd=1)
    expected[writer.IMPUTED_PERSONS] = 1
    assert summary == expected
    record, n = person_index(records)[unlabelled_id]
    keypoints[1] = 0
    np.testing.assert_array_equal(record[rf.PERSON_KEYPOINTS][n], keypoints)
    record, n = person_index(records)[EXTRA_ID]
    assert not record[rf.PERSON_KEYPOINTS][n].any() and not record[rf.PERSON_ANNOTATED][n]


@pytest.mark.parametrize("content,message", [
    ("{\"images\": [", "not valid JSON"),
    ("[]", "has no 'images' and 'annotations' lists"),
    ("{\"images\": []}", "has no 'images' and 'annotations' lists"),
])
def test_unusable_annotations_file_raises(tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(coco.AnnotationError, match=message) as error:
        convert(path, VAL / IMAGES_NAME, tmp_path)
    assert str(path) in str(error.value)


def test_missing_images_dir_raises(tmp_path):
    with pytest.raises(coco.AnnotationError, match="no_images"):
        convert(VAL / JSON_NAME, tmp_path / "no_images", tmp_path)


# ---------------------------------------------------------------- the script


def test_script_prints_summary_as_last_line(small):
    small.add_image(2, "absent.jpg", None)
    small.add_image(3, "truncated.jpg", truncated_jpeg(small))
    small.add_image(4, "empty.jpg", small.jpeg, people=0)
    small.annotations.append(small.person(segmentation=[small.annotations[0][SEGMENTATION][0], [1, 2, 3, 4]]))
    outside = small.person(annotation_id=2)
    outside[KEYPOINTS][0:3] = [BASE_WIDTH + 3, 10, 2]
    small.annotations.append(outside)
    small.annotations.append(small.person(annotation_id=3, bbox=None))
    annotations, images = small.write()
    prefix = small.root / "script" / "train"
    result = run_script("--annotations", str(annotations), "--images", str(images), "--output", str(prefix),
                        "--num_shards", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    warnings = {coco_problems.MISSING_IMAGE: 1, coco_problems.CORRUPT_IMAGE: 1, coco_problems.DEGENERATE_POLYGON: 1,
                coco_problems.KEYPOINT_OUTSIDE_IMAGE: 1, coco_problems.MALFORMED_ANNOTATION: 1}
    expected = expected_summary(warnings, persons=5, annotated=4, skipped=2, without_people=1)
    expected[writer.SHARDS] = 2
    assert summary == expected
    assert f"[{coco_problems.MISSING_IMAGE}] image id 2 (absent.jpg)" in result.stderr
    records = parse_shards(writer.shard_paths(str(prefix), 2))
    assert sorted(person_index(records)) == sorted([1, 2, *(a[ID] for a in small.annotations[:BASE_PERSONS])])


@pytest.mark.parametrize("broken", ["missing", "invalid"])
def test_script_fails_cleanly_on_unusable_annotations(tmp_path, broken):
    path = tmp_path / "annotations.json"
    if broken == "invalid":
        path.write_text("{oops")
    result = run_script("--annotations", str(path), "--images", str(VAL / IMAGES_NAME),
                        "--output", str(tmp_path / "out" / "x"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.strip().splitlines() if not TF_NATIVE_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error:") and str(path) in lines[0]


# ---------------------------------------------------------------- reruns: stale shards, nothing to write


def test_a_rerun_with_another_shard_count_replaces_the_earlier_shards(tmp_path):
    prefix = str(tmp_path / "out" / "records")
    first = writer.convert(str(VAL / JSON_NAME), str(VAL / IMAGES_NAME), prefix, 4)
    assert first[writer.STALE_SHARDS_REMOVED] == []
    others = [tmp_path / "out" / "records-extra.tfrecord", tmp_path / "out" / "records2-00000-of-00001.tfrecord"]
    for other in others:
        other.write_bytes(b"not ours")
    summary = writer.convert(str(VAL / JSON_NAME), str(VAL / IMAGES_NAME), prefix, 2)
    assert summary[writer.STALE_SHARDS_REMOVED] == writer.shard_paths(prefix, 4)
    shards = sorted(str(path) for path in (tmp_path / "out").glob("records-*-of-*"))
    assert shards == writer.shard_paths(prefix, 2)  # a training glob records-* reads each image once
    assert len(parse_shards(shards)) == 4
    assert all(other.read_bytes() == b"not ours" for other in others)


def test_a_conversion_that_writes_no_image_fails_in_one_line_and_keeps_the_shards(tmp_path):
    prefix = tmp_path / "out" / "records"
    writer.convert(str(VAL / JSON_NAME), str(VAL / IMAGES_NAME), str(prefix), 2)
    before = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()}
    wrong_images = tmp_path / "elsewhere"
    wrong_images.mkdir()
    result = run_script("--annotations", str(VAL / JSON_NAME), "--images", str(wrong_images), "--output", str(prefix),
                        "--num_shards", "3")
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no image to write to {prefix}-*: of the 4 valid images")
    assert "4 were skipped (missing_image: 4)" in last
    assert {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()} == before
