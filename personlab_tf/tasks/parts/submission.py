"""The part parser's detections as the files the official evaluation tools read (docs/parts.md, "Submission
formats"); PartsEvaluator writes them beside metrics.json when given an output directory.

Under `output_dir`, one image with key `k` (`image_key`: its file name up to the first '.'):

| path | content | read by |
| --- | --- | --- |
| `mhp_v2/results.txt` | a line per image: `k id score id score ...`, the persons with at least one pixel | MHP v2 `eval_submission.py` |
| `mhp_v2/global_seg/k.png` | [H, W] part class of each pixel | its `global_seg` |
| `mhp_v2/global_tag/k.png` | [H, W] person id of each pixel (0: nobody); id = detection slot + 1 | its `global_tag` |
| `cihp/cihp_instance_part_maps/k.png` | [H, W] region number of each pixel (0: none) | CIHP `test_inst_part_ap.py` (`PREDICT_DIR`) |
| `cihp/cihp_instance_part_maps/k.txt` | line r: `class score` of region r (1-based; empty file: no region) | the same |
| `cihp/Instance_part_val/k.png` | [H, W] region number of each ground-truth (instance, part class) | its `INST_PART_GT_DIR` |
| `cihp/Instance_part_val/k.txt` | line per region: `region class person` (person 1-based, by annotation) | the same |

Every PNG is single channel, 8-bit (mode L) or 16-bit when a value exceeds 255. A region is the pixels of
one part class of one person (predicted instance or ground-truth instance, metrics.truth_instances), numbered
instance by instance, classes ascending; a predicted region carries its instance's score. Scores are written
with `repr`, so they parse back to the same float.
"""

import os
import re
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

from personlab_tf.tasks.parts import metrics

MHP_DIR = "mhp_v2"
MHP_RESULTS_FILE = "results.txt"
MHP_SEG_DIR = "global_seg"              # eval_submission.py's folder names
MHP_TAG_DIR = "global_tag"
CIHP_DIR = "cihp"
CIHP_PREDICTIONS_DIR = "cihp_instance_part_maps"   # test_inst_part_ap.py's PREDICT_DIR
CIHP_TRUTH_DIR = "Instance_part_val"               # and its INST_PART_GT_DIR
PNG, TXT = ".png", ".txt"
_LARGEST_LABEL = np.iinfo(np.uint16).max
# A key is a results.txt field (split on whitespace) and a file name.
_VALID_KEY = re.compile(r"[^\s/\\]+")


def image_key(file_name: str) -> str:
    """The key of an image in both tools: the base of its file name up to the first '.' (eval_submission.py
    finds an image's line as `os.path.basename(path).split('.')[0]`; CIHP names its files by the image's stem)."""
    return os.path.basename(file_name).split(".")[0]


def write_labels(path: str, labels: np.ndarray) -> None:
    """Writes a [H, W] map of integers in [0, 65535] as a single-channel PNG, 8-bit when they fit, else 16-bit
    (cv2.IMREAD_UNCHANGED and PIL both read the values back unchanged).

    Raises:
      ValueError: a value outside [0, 65535]; OSError: the file cannot be written.
    """
    labels = np.asarray(labels)
    if labels.min() < 0 or labels.max() > _LARGEST_LABEL:
        raise ValueError(f"{path}: labels must lie in [0, {_LARGEST_LABEL}]")
    fits = labels.max() <= np.iinfo(np.uint8).max
    Image.fromarray(labels.astype(np.uint8 if fits else np.uint16)).save(path, format="PNG")


def mhp_v2_maps(prediction: metrics.Prediction) -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, float]]]:
    """The MHP v2 submission of one image (the instances' supports are disjoint, as metrics.Prediction's;
    were they not, later slots would take the pixels they share).

    Returns:
      global_seg [H, W] int64: the category-level part map, with each person's part classes over its pixels
        (so that global_seg under global_tag == id is the person's instance part map, as eval_submission.py
        forms it); global_tag [H, W] int64: person id (slot + 1) of each pixel, 0 elsewhere; persons: [(id,
        score)] of the instances with at least one pixel, in slot order (eval_submission.py skips a person
        without pixels: neither a true nor a false positive).
    """
    instance_maps = np.asarray(prediction.instance_part_maps, np.int64)
    seg = np.array(prediction.part_map, np.int64)
    tag = np.zeros(seg.shape, np.int64)
    for slot, labels in enumerate(instance_maps):
        tag[labels > 0] = slot + 1
        seg[labels > 0] = labels[labels > 0]
    persons = [(slot + 1, float(prediction.scores[slot])) for slot in range(len(instance_maps))
               if (tag == slot + 1).any()]
    return seg, tag, persons


def regions(instance_maps: np.ndarray) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """CIHP's regions of instance label maps [N, H, W] (predicted or ground truth).

    Where supports overlap (ground-truth persons of data outside the project's definition, docs/parts.md
    "Data"; predictions never do) the later instance takes the pixel, as the converters give it the map.

    Returns:
      region map [H, W] int64: r + 1 on the pixels of region r, 0 elsewhere; regions: [(instance index,
      part class)] of each region r, instance by instance, classes ascending, each with at least one pixel
      (test_inst_part_ap.py pairs the k-th listed region of a class with the k-th region number found in
      the map, so a listed region without pixels would shift the scores of the others).
    """
    instance_maps = np.asarray(instance_maps, np.int64)
    candidates = [(index, int(part)) for index, labels in enumerate(instance_maps)
                  for part in np.unique(labels[labels > 0])]
    painted = np.zeros(instance_maps.shape[1:], np.int64)
    for number, (index, part) in enumerate(candidates, start=1):
        painted[instance_maps[index] == part] = number
    kept = np.unique(painted[painted > 0])
    renumber = np.zeros(len(candidates) + 1, np.int64)
    renumber[kept] = np.arange(1, len(kept) + 1)
    return renumber[painted], [candidates[number - 1] for number in kept]


def _lines(rows: Sequence[Sequence]) -> str:
    """Space-separated fields, one line per row (CIHP splits on single spaces)."""
    return "".join(" ".join(str(field) for field in row) + "\n" for row in rows)


class SubmissionWriter:
    """Writes the files of the module docstring under `output_dir`, image by image (`add`).

    A new writer replaces the submission of an earlier one in the same folder: it empties results.txt and
    removes the .png and .txt files of its four folders (test_inst_part_ap.py evaluates every .txt it finds).

    Raises (constructor):
      OSError: the folders cannot be made or cleared, or results.txt cannot be written (one line naming the
        folder).
    """

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.results_file = os.path.join(output_dir, MHP_DIR, MHP_RESULTS_FILE)
        self._folders = {name: os.path.join(output_dir, *parts) for name, parts in (
            ("seg", (MHP_DIR, MHP_SEG_DIR)), ("tag", (MHP_DIR, MHP_TAG_DIR)),
            ("predictions", (CIHP_DIR, CIHP_PREDICTIONS_DIR)), ("truth", (CIHP_DIR, CIHP_TRUTH_DIR)))}
        try:
            for folder in self._folders.values():
                os.makedirs(folder, exist_ok=True)
                for name in os.listdir(folder):
                    if name.endswith((PNG, TXT)):
                        os.remove(os.path.join(folder, name))
            open(self.results_file, "w").close()
        except OSError as error:
            raise OSError(f"cannot write the submission files in {output_dir}: {error.strerror or error}") from None
        self._images = {}   # key -> image id

    def add(self, image_id: int, file_name: str, ground_truth: metrics.GroundTruth,
            prediction: metrics.Prediction) -> None:
        """Writes one image's files and its results.txt line.

        Args:
          image_id: its COCO id (named in errors); file_name: its file name (gives the key, `image_key`);
          ground_truth, prediction: as metrics.PartParsingEvaluator takes them, maps at the image's size.

        Raises:
          ValueError: the key is empty or holds whitespace or a path separator, or another image has the
            same key (nothing is written); OSError: a file cannot be written.
        """
        key = image_key(file_name)
        if not _VALID_KEY.fullmatch(key):
            raise ValueError(f"image {image_id}: its file name {file_name!r} gives the submission key {key!r}, "
                             "which must be non-empty without whitespace or path separators")
        if key in self._images:
            raise ValueError(f"images {self._images[key]} and {image_id} have the same submission key {key!r} "
                             f"(file name {file_name!r})")
        seg, tag, persons = mhp_v2_maps(prediction)
        predicted_map, predicted = regions(prediction.instance_part_maps)
        truth_map, truth = regions(metrics.truth_instances(ground_truth))
        scores = np.asarray(prediction.scores, np.float64)
        try:
            write_labels(os.path.join(self._folders["seg"], key + PNG), seg)
            write_labels(os.path.join(self._folders["tag"], key + PNG), tag)
            write_labels(os.path.join(self._folders["predictions"], key + PNG), predicted_map)
            write_labels(os.path.join(self._folders["truth"], key + PNG), truth_map)
            with open(os.path.join(self._folders["predictions"], key + TXT), "w") as f:
                f.write(_lines([(part, repr(float(scores[index]))) for index, part in predicted]))
            with open(os.path.join(self._folders["truth"], key + TXT), "w") as f:
                f.write(_lines([(number, part, index + 1) for number, (index, part) in enumerate(truth, start=1)]))
            with open(self.results_file, "a") as f:
                f.write(_lines([[key] + [field for person, score in persons for field in (person, repr(score))]]))
        except OSError as error:
            raise OSError(f"cannot write the submission files of image {image_id} in {self.output_dir}: "
                          f"{error.strerror or error}") from None
        self._images[key] = image_id
