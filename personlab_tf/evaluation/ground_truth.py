"""COCO ground truth rebuilt from the tfds `coco_person` dataset, for COCOeval.

The result is a COCO-format dict (`images`, `categories`, `annotations`) equal to the source JSON in
every field the evaluation reads: per image id, file_name, height, width; per person id, image_id,
category_id, keypoints (3 K numbers, x y v), num_keypoints, bbox, area, iscrowd and the segmentation as
the compressed RLE that `COCO.annToRLE` makes of the JSON's (see
`personlab_tf/datasets/coco_person/features.py`). Images without people are kept as they are in the
dataset (the `validation` split has all of them, as COCO evaluates them).
"""

from typing import Any, Dict, Iterable

import numpy as np
import tensorflow_datasets as tfds

from personlab_tf.skeleton import Skeleton
from personlab_tf.tfds_builders.coco_person import Builder, features


def _text(value):
    """A tfds Text value (bytes in numpy) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _annotations(image_id, persons, category_id):
    """COCO annotation dicts of one example's `persons` feature (dict of arrays with a leading N)."""
    annotations = []
    for n in range(len(persons[features.ANNOTATION_ID])):
        height, width = (int(s) for s in persons[features.SEGMENTATION_SIZE][n])
        annotations.append({
            "id": int(persons[features.ANNOTATION_ID][n]),
            "image_id": image_id,
            "category_id": category_id,
            "keypoints": np.asarray(persons[features.KEYPOINTS][n], np.float64).reshape(-1).tolist(),
            "num_keypoints": int(persons[features.NUM_KEYPOINTS][n]),
            "bbox": np.asarray(persons[features.BBOX][n], np.float64).tolist(),
            "area": float(persons[features.AREA][n]),
            "iscrowd": int(bool(persons[features.IS_CROWD][n])),
            "segmentation": {"size": [height, width],
                             "counts": _text(persons[features.SEGMENTATION_COUNTS][n])},
        })
    return annotations


def coco_dict_from_examples(examples: Iterable[Dict[str, Any]], skeleton: Skeleton) -> Dict[str, Any]:
    """COCO ground truth dict from `coco_person` examples.

    Args:
      examples: iterable of numpy examples (`tfds.as_numpy` of a `coco_person` split); the `image`
        field is not read, so it may be left undecoded (`tfds.decode.SkipDecoding()`).
      skeleton: the skeleton of the dataset (`Builder.skeleton`).

    Returns:
      dict with `images`, `categories` (the skeleton's, Skeleton.category_entry) and `annotations`.
    """
    images, annotations = [], []
    for example in examples:
        image_id = int(example[features.IMAGE_ID])
        images.append({"id": image_id, "file_name": _text(example[features.FILE_NAME]),
                       "height": int(example[features.HEIGHT]), "width": int(example[features.WIDTH])})
        annotations.extend(_annotations(image_id, example[features.PERSONS], skeleton.category_id))
    return {"info": {"description": "rebuilt from the tfds coco_person dataset"},
            "images": images, "categories": [skeleton.category_entry()], "annotations": annotations}


def load_ground_truth(builder: Builder, split: str = "validation") -> Dict[str, Any]:
    """COCO ground truth dict of a prepared `coco_person` builder's split (images are not decoded).

    Args:
      builder: a prepared `personlab_tf.tfds_builders.coco_person.Builder` (e.g. from `coco_person.prepare`).
      split: "validation" (default) or "train".
    """
    dataset = builder.as_dataset(split=split, decoders={features.IMAGE: tfds.decode.SkipDecoding()})
    return coco_dict_from_examples(tfds.as_numpy(dataset), builder.skeleton)
