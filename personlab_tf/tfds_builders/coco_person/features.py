"""Features of one `coco_person` example, and the conversion of a COCO annotation into them.

One example per image:

| key | feature | value |
| --- | --- | --- |
| `image` | `Image` (None, None, 3), jpeg | the image file's bytes exactly as on disk |
| `image_id` | int64 | COCO image id |
| `height`, `width` | int32 | image size from the JSON (checked against the file's header) |
| `file_name` | Text | the JSON `file_name` |
| `persons` | Sequence, length N >= 0 | every person annotation of the image, crowd regions included |

Per person (`persons/...`), with the values of the annotations JSON unchanged (K: the builder's skeleton, 17
for coco17):

| key | dtype, shape | value |
| --- | --- | --- |
| `keypoints` | float32 [K, 3] | (x, y, v) of the skeleton's K keypoints, pixel centres at integer coordinates |
| `bbox` | float64 [4] | COCO box (x, y, width, height), pixel corners |
| `area` | float64 [] | COCO area (the OKS scale s^2 and the area range of the evaluation) |
| `iscrowd` | bool [] | crowd region |
| `num_keypoints` | int32 [] | JSON `num_keypoints` (labelled keypoints v > 0 if the JSON lacks it) |
| `annotation_id` | int64 [] | COCO annotation id |
| `segmentation_counts` | Text | compressed COCO RLE string of the mask |
| `segmentation_size` | int32 [2] | the RLE's (height, width) |

The RLE is exactly what `pycocotools.coco.COCO.annToRLE` makes of the annotation (polygons merged,
uncompressed RLE compressed, compressed RLE kept), so the ground truth rebuilt from the examples gives
the same masks, hence the same metrics, as the original JSON; except that polygons `annToRLE` cannot
rasterise (fewer than 3 points, which it misreads as a box or rejects; an odd length; zero area) are
dropped first, as `personlab_tf.data.coco` does for the training records. `bbox` and `area` are float64 stored as
raw bytes (a tf.train.Example float is float32), so they equal the JSON numbers. Keypoints are float32:
exact for COCO's integer coordinates; fractional ones (the synthetic data's two decimals) move by less
than 1e-5 px.
"""

from typing import Any, Dict, Sequence

import numpy as np
import tensorflow_datasets as tfds

from personlab_tf.skeleton import COCO17

IMAGE = "image"
IMAGE_ID = "image_id"
HEIGHT = "height"
WIDTH = "width"
FILE_NAME = "file_name"
PERSONS = "persons"
KEYPOINTS = "keypoints"
BBOX = "bbox"
AREA = "area"
IS_CROWD = "iscrowd"
NUM_KEYPOINTS = "num_keypoints"
ANNOTATION_ID = "annotation_id"
SEGMENTATION_COUNTS = "segmentation_counts"
SEGMENTATION_SIZE = "segmentation_size"

# tf.train.Example has no float64: a plain float64 feature is stored as float32. Raw bytes keep it exact.
_RAW_BYTES = tfds.features.Encoding.BYTES


def features_dict(num_keypoints: int = COCO17.num_keypoints) -> tfds.features.FeaturesDict:
    """The `tfds.features.FeaturesDict` of one example (see the module docstring), of K = `num_keypoints`."""
    return tfds.features.FeaturesDict({
        IMAGE: tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        IMAGE_ID: np.int64,
        HEIGHT: np.int32,
        WIDTH: np.int32,
        FILE_NAME: tfds.features.Text(),
        PERSONS: tfds.features.Sequence({
            KEYPOINTS: tfds.features.Tensor(shape=(num_keypoints, 3), dtype=np.float32),
            BBOX: tfds.features.Tensor(shape=(4,), dtype=np.float64, encoding=_RAW_BYTES),
            AREA: tfds.features.Tensor(shape=(), dtype=np.float64, encoding=_RAW_BYTES),
            IS_CROWD: np.bool_,
            NUM_KEYPOINTS: np.int32,
            ANNOTATION_ID: np.int64,
            SEGMENTATION_COUNTS: tfds.features.Text(),
            SEGMENTATION_SIZE: tfds.features.Tensor(shape=(2,), dtype=np.int32),
        }),
    })


def _num_keypoints(annotation, keypoints):
    """The JSON `num_keypoints` if it is an integer, else the number of labelled keypoints."""
    value = annotation.get(NUM_KEYPOINTS)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(np.count_nonzero(keypoints[:, 2] > 0))


def encode_persons(annotations: Sequence[Dict[str, Any]], rles: Sequence[Dict[str, Any]],
                   num_keypoints: int = COCO17.num_keypoints) -> Dict[str, Any]:
    """The `persons` feature value (dict of stacked arrays) of an image's COCO annotation dicts.

    Args:
      annotations: list of N >= 0 person annotations as in the JSON (already validated).
      rles: their N masks as compressed COCO RLE dicts (`coco_masks.segmentation_rle` of the validated
        segmentations, whose degenerate polygons are dropped).
      num_keypoints: K, the keypoints of the dataset's skeleton (3 K numbers per annotation).

    Returns:
      dict of numpy arrays with a leading N axis (see the module docstring).
    """
    keypoints = np.zeros((len(annotations), num_keypoints, 3), np.float32)
    persons = {BBOX: [], AREA: [], IS_CROWD: [], NUM_KEYPOINTS: [], ANNOTATION_ID: [],
               SEGMENTATION_COUNTS: [], SEGMENTATION_SIZE: []}
    for n, (annotation, rle) in enumerate(zip(annotations, rles)):
        keypoints[n] = np.reshape(annotation[KEYPOINTS], (num_keypoints, 3))
        persons[BBOX].append(annotation[BBOX])
        persons[AREA].append(annotation[AREA])
        persons[IS_CROWD].append(bool(annotation[IS_CROWD]))
        persons[NUM_KEYPOINTS].append(_num_keypoints(annotation, keypoints[n]))
        persons[ANNOTATION_ID].append(annotation["id"])
        persons[SEGMENTATION_COUNTS].append(rle["counts"].decode("ascii"))
        persons[SEGMENTATION_SIZE].append(rle["size"])
    return {
        KEYPOINTS: keypoints,
        BBOX: np.array(persons[BBOX], np.float64).reshape(-1, 4),
        AREA: np.array(persons[AREA], np.float64),
        IS_CROWD: np.array(persons[IS_CROWD], np.bool_),
        NUM_KEYPOINTS: np.array(persons[NUM_KEYPOINTS], np.int32),
        ANNOTATION_ID: np.array(persons[ANNOTATION_ID], np.int64),
        SEGMENTATION_COUNTS: persons[SEGMENTATION_COUNTS],
        SEGMENTATION_SIZE: np.array(persons[SEGMENTATION_SIZE], np.int32).reshape(-1, 2),
    }
