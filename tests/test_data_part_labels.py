"""Part label maps through create_tfrecords.py and the decoder (personlab_tf/data/part_labels.py)."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from personlab_tf import keys, skeleton
from personlab_tf.data import coco_format, decoder, part_labels, synthetic, writer
from personlab_tf.data import record_format as rf
from personlab_tf.tasks.parts import part_sets

from test_create_tfrecords import REPO, TF_NATIVE_LOG, parse_shards

NUM_IMAGES = 4


@pytest.fixture()
def data(tmp_path):
    """A small synthetic dataset: (directory, COCO json dict)."""
    synthetic.generate_dataset(str(tmp_path / "data"), NUM_IMAGES, seed=2, min_side=160, max_side=200)
    return tmp_path / "data", json.loads((tmp_path / "data" / coco_format.ANNOTATIONS_FILE).read_text())


def convert(data, tmp_path, **kwargs):
    prefix = str(tmp_path / "records" / "train")
    summary = writer.convert(str(data / coco_format.ANNOTATIONS_FILE), str(data / coco_format.IMAGES_DIR), prefix,
                             num_part_classes=part_sets.SYNTHETIC.num_classes, **kwargs)
    return summary, parse_shards(writer.shard_paths(prefix, 1))


def label_file(data, image_id):
    return data / coco_format.PART_LABELS_DIR / f"{image_id:012d}.png"


def test_records_carry_the_part_maps(data, tmp_path):
    path, coco = data
    summary, records = convert(path, tmp_path, part_labels_dir=str(path / coco_format.PART_LABELS_DIR))
    persons = [a for a in coco["annotations"] if not a["iscrowd"]]
    assert summary[writer.PERSONS_WITH_PARTS] == len(persons) and summary[writer.WARNINGS] == {}
    for record in records:
        labels = rf.unpack_part_labels_numpy(record[rf.IMAGE_PART_LABELS], record[rf.IMAGE_HEIGHT],
                                             record[rf.IMAGE_WIDTH])
        np.testing.assert_array_equal(labels, np.asarray(Image.open(label_file(path, record[rf.IMAGE_ID]))))
        np.testing.assert_array_equal(record[rf.PERSON_HAS_PARTS], 1 - record[rf.PERSON_IS_CROWD])


def test_without_part_labels_the_features_are_empty_and_decode_as_zeros(data, tmp_path):
    path, _ = data
    summary, records = convert(path, tmp_path)
    assert writer.PERSONS_WITH_PARTS not in summary
    assert all(record[rf.IMAGE_PART_LABELS] == b"" and not record[rf.PERSON_HAS_PARTS].any() for record in records)
    serialized = next(iter(tf.data.TFRecordDataset(writer.shard_paths(str(tmp_path / "records" / "train"), 1))))
    sample = decoder.decode_example(serialized, skeleton.COCO17.num_keypoints, with_parts=True)
    assert sample[keys.Sample.PART_LABELS].shape == sample[keys.Sample.IMAGE].shape[:2]
    assert not np.any(sample[keys.Sample.PART_LABELS]) and not np.any(sample[keys.Sample.HAS_PARTS])
    assert keys.Sample.PART_LABELS not in decoder.decode_example(serialized, skeleton.COCO17.num_keypoints)


def rgb_png(shape):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros(shape + (3,), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("breakage, kind", [
    ("missing", part_labels.MISSING_PART_LABELS),
    ("garbage", part_labels.CORRUPT_PART_LABELS),
    ("rgb", part_labels.CORRUPT_PART_LABELS),
    ("small", part_labels.CORRUPT_PART_LABELS),
    ("out_of_range", part_labels.PART_LABEL_OUT_OF_RANGE),
])
def test_a_bad_part_map_writes_its_image_without_parts(data, tmp_path, breakage, kind):
    path, coco = data
    broken = label_file(path, 1)
    labels = np.asarray(Image.open(broken))
    if breakage == "missing":
        os.remove(broken)
    elif breakage == "garbage":
        broken.write_bytes(b"not a png")
    elif breakage == "rgb":
        broken.write_bytes(rgb_png(labels.shape))
    elif breakage == "small":
        part_labels.write_png(str(broken), labels[:-1])
    else:
        part_labels.write_png(str(broken), np.where(labels > 0, part_sets.SYNTHETIC.num_classes, 0))
    summary, records = convert(path, tmp_path, part_labels_dir=str(path / coco_format.PART_LABELS_DIR))
    assert summary[writer.WARNINGS] == {kind: 1}
    assert summary[writer.IMAGES_WRITTEN] == len(records) and not summary[writer.IMAGES_SKIPPED]
    by_id = {int(record[rf.IMAGE_ID]): record for record in records}
    assert by_id[1][rf.IMAGE_PART_LABELS] == b"" and not by_id[1][rf.PERSON_HAS_PARTS].any()
    others = [a for a in coco["annotations"] if a["image_id"] != 1 and not a["iscrowd"]]
    assert summary[writer.PERSONS_WITH_PARTS] == len(others)


def test_annotations_say_which_persons_have_parts(data, tmp_path):
    path, coco = data
    first = next(a for a in coco["annotations"] if not a["iscrowd"])
    first["has_parts"] = 0
    second = next(a for a in coco["annotations"] if not a["iscrowd"] and a is not first)
    second["has_parts"] = "yes"
    (path / coco_format.ANNOTATIONS_FILE).write_text(json.dumps(coco))
    summary, records = convert(path, tmp_path, part_labels_dir=str(path / coco_format.PART_LABELS_DIR))
    assert summary[writer.WARNINGS] == {"malformed_annotation": 1}
    flags = {int(i): int(f) for record in records for i, f in zip(record[rf.PERSON_ID], record[rf.PERSON_HAS_PARTS])}
    assert flags[first["id"]] == 0 and second["id"] not in flags


def run_script(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "create_tfrecords.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def test_script_with_part_labels(data, tmp_path):
    path, _ = data
    common = ["--annotations", str(path / coco_format.ANNOTATIONS_FILE), "--images", str(path / coco_format.IMAGES_DIR),
              "--output", str(tmp_path / "out" / "train")]
    result = run_script(*common, "--part_labels", str(path / coco_format.PART_LABELS_DIR), "--part_set", "synthetic")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])[writer.PERSONS_WITH_PARTS] > 0
    for extra, message in ((["--part_labels", str(path / coco_format.PART_LABELS_DIR)], "go together"),
                           (["--part_labels", str(tmp_path / "nowhere"), "--part_set", "synthetic"], "does not exist")):
        result = run_script(*common, *extra)
        lines = [line for line in result.stderr.strip().splitlines() if not TF_NATIVE_LOG.match(line)]
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
