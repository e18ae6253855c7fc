"""Readers of the part-parsing datasets, converting each to the project's layout (data/part_labels.py):
a COCO person-keypoints JSON, the dataset's own images, and one part label PNG per image.

| dataset | reads | part set | keypoints (skeleton, personlab_tf/skeleton.py) |
| --- | --- | --- | --- |
| DensePose-COCO | a COCO JSON whose persons may carry `dp_masks` (14 coarse-part RLEs of 256 x 256 over the person's box) | densepose (15) | COCO's 17 (coco17) |
| MHP v2 | `list/{split}.txt`, `{split}/images/{id}.jpg`, `{split}/parsing_annos/{id}_{N:02d}_{n:02d}.png` (one per person, 3 equal channels), `{split}/pose_annos/{id}.mat` (`person_{n-1}`: rows x, y, flag, the first 16 the joints in the dataset's (MPII) order) | mhp_v2 (59) | its 16 joints (mhp_v2) |
| PASCAL-Person-Part | a list file (lines `ID`, or `IMAGE LABEL` paths relative to the root), `JPEGImages/{id}.jpg`, `SegmentationPart/{id}.png` (classes 0-6), PASCAL-Part's `Annotations_Part/{id}.mat` (`anno.objects(i).class`, `.mask`); optional joint files `{joints_dir}/{id}.mat` (below) | pascal_person_part (7) | 14 joints (pascal_person_part), when a joint file gives them |

Each output JSON's category is its skeleton's (`Skeleton.category_entry`: keypoint names and tree), and
its annotations' `category_id` the skeleton's.

Keypoint visibility, COCO's v (0 unlabelled, coordinates 0; 1 labelled, occluded; 2 visible):
- MHP v2: v = 2 - flag, as the part parser's released code reads the pose files (flag 0 visible -> 2,
  1 occluded -> 1, 2 outside the image -> 0); a joint with a negative or non-finite coordinate, or another
  flag, is unlabelled.
- PASCAL-Person-Part joints: no public material states their layout; this is the project's own reading
  (skeleton pascal_person_part: head, neck, then left/right shoulder, elbow, wrist, hip, knee, ankle). A
  joint file `{joints_dir}/{id}.mat` (default `ROOT/Joints`, id = the image file's stem) holds `joints`, a
  P x 14 x 3 double array (a 14 x 3 one for P = 1): row p is the p-th `person` object of the image's
  PASCAL-Part file (in `anno.objects` order), its 14 rows (x, y, visible) in the skeleton's order, x and y in
  0-based pixels (pixel centres at integer coordinates), visible 1 -> v = 2, 0 -> v = 1; a joint with a
  negative or non-finite coordinate or another flag is unlabelled.

All coordinates are COCO's: pixel centres at integer coordinates, (x, y). Masks are written as
compressed RLE.

**A person's parts, one definition** (docs/parts.md "Data"): the part-labelled persons of an image have
disjoint masks, and a person's parts are the image's part map under its mask, so that the part targets
(the map), the mIoU (the map) and AP^p / AP^r (each person's map under its mask) see the same labels.
- DensePose, two readings (`convert_densepose(reading=...)`, the script's `--densepose_parts`):
  - `box` (default), as the part parser's released code builds its DensePose ground truth
    (tfzhou/MG-HumanParsing, lib/transforms/annotations.py `NormalizeAnnotations`, lib/eval_densepose.py
    `EvalSemantic.get_mask`): the 14 masks decoded into one 256 x 256 grid (later parts over earlier
    ones), resized with OpenCV's nearest neighbour (`nearest_indices`) into the integer box
    x = int(x0) ... int(x0) + int(w) - 1 (likewise y; the right and bottom ends cut at the image border, the
    whole grid squeezed into what is left), and *not* clipped to the COCO mask. The map holds every
    part-labelled person's part pixels, a later person's over an earlier one's, as the released ground truth
    map; a person's mask is its part pixels (the released evaluation's person region) plus the pixels of its
    COCO mask that no person's part pixel holds (among those, the last person wins). A non-crowd person
    without `dp_masks` is, as in the released code, *background*: it keeps the pixels of its COCO mask that
    no part pixel holds, `has_parts: 1`, and no part under it (the released evaluation has no instance for it
    and counts its pixels as background; the released training too). An image none of whose persons has
    usable `dp_masks` has no part labels (`has_parts: 0` for all; the released training skips its part loss).
    `part_pixels_outside_persons` counts the part pixels outside their person's COCO mask, kept.
  - `mask`, the project's earlier reading: `dp_masks` resampled at pixel centres into the (fractional) box
    (`place_in_box`) and *kept only inside the COCO mask* (the pixels outside are dropped and counted:
    `part_pixels_outside_persons`); masks are COCO's; persons without `dp_masks` get `has_parts: 0`.
- MHP v2: a person's mask is its parsing PNG's labelled pixels, its parts the PNG.
- PASCAL-Person-Part: persons are PASCAL-Part's `person` objects; the part map is `SegmentationPart`
  as released (void 255 -> background); part pixels outside every person are kept and counted.
- Where the masks of several part-labelled persons overlap, the pixel goes to the last of them in the
  dataset's order: the map holds its labels and the earlier masks lose the pixel (`overlap_pixels`);
  under DensePose's `box` reading part pixels come first (a person's part pixel is never given to another
  person's COCO mask), then the other mask pixels (`overlap_pixels` counts both).
An annotation says `"has_parts": 1`, or 0 for a crowd region, a DensePose person with malformed `dp_masks`,
and under DensePose's `mask` reading a person without `dp_masks`.

Bad input never raises (except an unusable annotations file, list, directory or missing scipy:
coco.AnnotationError); each problem is warned about in one line naming the file (and field), and
counted by kind (DensePose's JSON also gets data/coco.py's checks and kinds):

| kind | action |
| --- | --- |
| missing_image | the image file cannot be read or decoded -> image skipped |
| missing_part_file | a person's parsing PNG, the image's part PNG or its PASCAL-Part .mat is absent or does not decode -> person (image) skipped |
| size_mismatch | a label PNG's size differs from the image's -> person (image) skipped |
| empty_person | MHP: a parsing PNG labels no pixel -> person skipped (MHP's evaluation skips it too) |
| bad_part_annotation | PASCAL-Part .mat without the documented fields (the message names the field) -> image skipped |
| bad_dp_masks | `dp_masks` is not 14 RLEs of 256 x 256 -> the person keeps its COCO mask, `has_parts: 0` |
| missing_pose | MHP: no readable pose file or no entry for the person; PASCAL: no joint file for an image with persons, or fewer rows than person objects -> person(s) without keypoints |
| bad_keypoints | PASCAL: a joint file that does not load or whose `joints` is not P x 14 x 3 numbers -> the image's persons without keypoints; more rows than person objects -> the first ones taken |
"""

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.io import loadmat

from personlab_tf import skeleton as skeleton_lib
from personlab_tf.data import coco, coco_format, part_labels
from personlab_tf.skeleton import Skeleton

MISSING_IMAGE = "missing_image"
MISSING_PART_FILE = "missing_part_file"
SIZE_MISMATCH = "size_mismatch"
EMPTY_PERSON = "empty_person"
BAD_PART_ANNOTATION = "bad_part_annotation"
BAD_DP_MASKS = "bad_dp_masks"
MISSING_POSE = "missing_pose"
BAD_KEYPOINTS = "bad_keypoints"

DENSEPOSE_PARTS = 14
DENSEPOSE_GRID = 256
DENSEPOSE_BOX = "box"                # DensePose readings (module docstring): the released code's, the default
DENSEPOSE_MASK = "mask"              # the project's earlier one: parts kept only inside the COCO mask
DENSEPOSE_READINGS = (DENSEPOSE_BOX, DENSEPOSE_MASK)
PASCAL_PERSON = "person"             # PASCAL-Part's `class` of a person object
PASCAL_IMAGES_DIR = "JPEGImages"
PASCAL_PARTS_DIR = "SegmentationPart"
PASCAL_PART_ANNOTATIONS_DIR = "Annotations_Part"
PASCAL_JOINTS_DIR = "Joints"         # the project's reading of PASCAL-Person-Part's joints (module docstring)
PASCAL_JOINTS_KEY = "joints"
VOID = 255
PERSON_ID_STRIDE = 1000              # annotation id = image id * 1000 + person number


def rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a [H, W] bool mask, counts as a str (JSON-ready)."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def box(mask: np.ndarray) -> List[int]:
    """COCO box [x, y, w, h] of a mask's pixels ([0, 0, 0, 0] when empty)."""
    rows, columns = np.nonzero(mask)
    if not len(rows):
        return [0, 0, 0, 0]
    return [int(columns.min()), int(rows.min()), int(columns.max() - columns.min() + 1), int(rows.max() - rows.min() + 1)]


def person_annotation(annotation_id: int, image_id: int, mask: np.ndarray, keypoints: np.ndarray,
                      category_id: int, has_parts: bool = True, is_crowd: bool = False,
                      area: Optional[float] = None, bbox: Optional[Sequence[float]] = None) -> dict:
    """A COCO person annotation of category `category_id` (the skeleton's) from a mask [H, W] bool and
    keypoints [K, 3] (x, y, v); area and bbox are the mask's unless given."""
    keypoints = np.asarray(keypoints, np.float64)
    return {"id": int(annotation_id), "image_id": int(image_id), "category_id": int(category_id),
            "iscrowd": int(is_crowd), "segmentation": rle(mask),
            "area": float(area) if area is not None else int(mask.sum()),
            "bbox": [round(float(v), 2) for v in bbox] if bbox is not None else box(mask),
            "keypoints": [round(float(v), 2) for v in keypoints.ravel()],
            "num_keypoints": int(np.count_nonzero(keypoints[:, 2])), "has_parts": int(has_parts)}


def exclusive_masks(masks: np.ndarray) -> Tuple[np.ndarray, int]:
    """The masks [N, H, W] bool made disjoint, each pixel kept by the last mask holding it.

    Returns:
      (masks [N, H, W] bool, number of pixels taken from earlier masks).
    """
    masks = np.asarray(masks, bool)
    result = masks.copy()
    claimed = np.zeros(masks.shape[1:], bool)
    for index in range(len(masks) - 1, -1, -1):
        result[index] &= ~claimed
        claimed |= masks[index]
    return result, int(masks.sum() - result.sum())


def read_label_png(path: str) -> Optional[np.ndarray]:
    """The [H, W] uint8 label values of a PNG (palette indices, grey, or the first channel of RGB), or None."""
    try:
        with Image.open(path) as picture:
            picture.load()
            values = np.asarray(picture)
    except Exception:  # PIL raises many types (OSError, SyntaxError, ...)
        return None
    return (values[..., 0] if values.ndim == 3 else values).astype(np.uint8)


def image_size(path: str) -> Optional[Tuple[int, int]]:
    """(height, width) of a readable image file, or None."""
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture.size[1], picture.size[0]
    except Exception:  # PIL raises many types
        return None


class Conversion:
    """One conversion's output: writes each image's part map at once, the JSON at the end (`finish`), whose
    category is `skeleton`'s."""

    def __init__(self, output_dir: str, skeleton: Skeleton):
        self.output_dir = output_dir
        self.skeleton = skeleton
        self.images, self.annotations = [], []
        self.problems = coco.ProblemCounter()
        self.overlap_pixels = self.outside_pixels = 0

    def no_keypoints(self) -> np.ndarray:
        """[K, 3] zeros: the keypoints of a person without any."""
        return np.zeros((self.skeleton.num_keypoints, 3))

    def person(self, annotation_id: int, image_id: int, mask: np.ndarray, keypoints: np.ndarray, **fields) -> dict:
        """`person_annotation` of the skeleton's category; keypoints [K, 3] of the skeleton."""
        keypoints = np.asarray(keypoints, np.float64)
        if keypoints.shape != (self.skeleton.num_keypoints, 3):
            raise ValueError(f"keypoints {keypoints.shape} do not fit {self.skeleton.describe()}")
        return person_annotation(annotation_id, image_id, mask, keypoints, self.skeleton.category_id, **fields)

    def add_image(self, image_id: int, file_name: str, labels: np.ndarray, annotations: List[dict]) -> None:
        """Adds an image entry and its annotations, and writes its part map [H, W] uint8."""
        height, width = labels.shape
        self.images.append({"id": int(image_id), "file_name": file_name, "height": height, "width": width})
        self.annotations.extend(annotations)
        part_labels.write_png(coco_format.part_labels_path(
            os.path.join(self.output_dir, coco_format.PART_LABELS_DIR), file_name), labels)

    def finish(self, description: str) -> Dict:
        """Writes `person_keypoints.json` (data/coco_format.py); returns the summary (the script's last line)."""
        coco_format.write_annotations(self.output_dir, self.images, self.annotations, description, self.skeleton)
        return {"images": len(self.images), "persons": len(self.annotations),
                "persons_with_keypoints": sum(a["num_keypoints"] > 0 for a in self.annotations),
                "persons_with_parts": sum(a["has_parts"] for a in self.annotations),
                "overlap_pixels": self.overlap_pixels, "part_pixels_outside_persons": self.outside_pixels,
                "warnings": dict(sorted(self.problems.warnings.items()))}


# ----------------------------------------------------------------------------------------- DensePose


def densepose_part_grid(dp_masks) -> Optional[np.ndarray]:
    """The 256 x 256 part classes of `dp_masks` (14 RLEs or falsy entries; part i + 1 where mask i, later
    masks over earlier ones), or None when the field is malformed."""
    if not isinstance(dp_masks, list) or len(dp_masks) != DENSEPOSE_PARTS:
        return None
    grid = np.zeros((DENSEPOSE_GRID, DENSEPOSE_GRID), np.uint8)
    for index, encoded in enumerate(dp_masks):
        if not encoded:
            continue
        try:
            if list(encoded["size"]) != [DENSEPOSE_GRID, DENSEPOSE_GRID]:
                return None
            counts = encoded["counts"]
            mask = mask_utils.decode({"size": [DENSEPOSE_GRID, DENSEPOSE_GRID],
                                      "counts": counts.encode("ascii") if isinstance(counts, str) else counts})
        except (TypeError, KeyError, ValueError):
            return None
        grid[mask > 0] = index + 1
    return grid


def place_in_box(grid: np.ndarray, bbox: Sequence[float], height: int, width: int) -> np.ndarray:
    """Resamples a part grid (the person's box at 256 x 256) into an image-size map, nearest neighbour.

    Image pixel (x, y) inside the box [x0, x0 + w) x [y0, y0 + h) (pixel-corner COCO box) reads grid cell
    floor((x + 0.5 - x0) 256 / w), floor((y + 0.5 - y0) 256 / h); pixels outside the box are 0.
    """
    x0, y0, w, h = (float(v) for v in bbox)
    out = np.zeros((height, width), np.uint8)
    if w <= 0 or h <= 0:
        return out
    columns = np.arange(max(int(np.floor(x0)), 0), min(int(np.ceil(x0 + w)), width))
    rows = np.arange(max(int(np.floor(y0)), 0), min(int(np.ceil(y0 + h)), height))
    source_columns = np.floor((columns + 0.5 - x0) * grid.shape[1] / w).astype(int)
    source_rows = np.floor((rows + 0.5 - y0) * grid.shape[0] / h).astype(int)
    keep_columns = (source_columns >= 0) & (source_columns < grid.shape[1])
    keep_rows = (source_rows >= 0) & (source_rows < grid.shape[0])
    columns, source_columns = columns[keep_columns], source_columns[keep_columns]
    rows, source_rows = rows[keep_rows], source_rows[keep_rows]
    out[np.ix_(rows, columns)] = grid[np.ix_(source_rows, source_columns)]
    return out


def nearest_indices(target: int, source: int) -> np.ndarray:
    """The source index of each of `target` cells when `source` cells are resized to `target` by OpenCV's
    nearest neighbour (cv2.INTER_NEAREST, the released code's resize): floor(i * (1 / (target / source))) in
    double precision, at most source - 1 (top-left aligned, not pixel centres)."""
    scale = 1.0 / (target / source)
    return np.minimum(np.floor(np.arange(target) * scale).astype(np.int64), source - 1)


def place_in_integer_box(grid: np.ndarray, bbox: Sequence[float], height: int, width: int) -> np.ndarray:
    """A part grid placed into an image-size map as the released code does (reading `box`).

    The box [x0, y0, w, h] is truncated to integers, each number on its own: columns int(x0) ...
    min(int(x0) + int(w), width) - 1, rows likewise; the whole grid is resized (`nearest_indices`) to that
    block, so a box reaching past the right or bottom border squeezes the grid into the part inside the image.
    Pixels outside the block are 0; so is everything when the block is empty.
    """
    x0, y0, w, h = (int(float(v)) for v in bbox)
    x1, y1 = min(x0 + w, width), min(y0 + h, height)
    out = np.zeros((height, width), np.uint8)
    if x0 >= x1 or y0 >= y1:
        return out
    block = grid[np.ix_(nearest_indices(y1 - y0, grid.shape[0]), nearest_indices(x1 - x0, grid.shape[1]))]
    # COCO boxes start inside the image; a negative start (not in the data) loses its part outside.
    top, left = max(-y0, 0), max(-x0, 0)
    out[y0 + top:y1, x0 + left:x1] = block[top:, left:]
    return out


def box_reading(coco_masks: np.ndarray,
                part_maps: Sequence[Optional[np.ndarray]]) -> Tuple[np.ndarray, np.ndarray, int]:
    """An image's part map and person masks under DensePose's `box` reading (module docstring).

    Args:
      coco_masks: [N, H, W] bool, the COCO masks of the image's part-labelled persons in the dataset's order;
        part_maps: per person its `place_in_integer_box` map [H, W] uint8, or None (no `dp_masks`).

    Returns:
      (part map [H, W] uint8: each person's part pixels, a later person's over an earlier one's;
       masks [N, H, W] bool: each person's part pixels left in the map plus the pixels of its COCO mask that
       no part pixel holds, the last person winning among those; the number of pixels the persons lost to
       others, counted on COCO mask | own part pixels).
    """
    coco_masks = np.asarray(coco_masks, bool)
    labels = np.zeros(coco_masks.shape[1:], np.uint8)
    owner = np.full(coco_masks.shape[1:], -1)
    own_parts = np.zeros_like(coco_masks)
    for index, placed in enumerate(part_maps):
        if placed is not None:
            own_parts[index] = placed > 0
            labels[own_parts[index]] = placed[own_parts[index]]
            owner[own_parts[index]] = index
    rest, _ = exclusive_masks(coco_masks & (labels == 0))
    masks = rest | (owner[np.newaxis] == np.arange(len(coco_masks))[:, np.newaxis, np.newaxis])
    return labels, masks, int((coco_masks | own_parts).sum() - masks.sum())


def convert_densepose(annotations_path: str, output_dir: str, reading: str = DENSEPOSE_BOX) -> Dict:
    """DensePose-COCO JSON -> the project's layout (the images stay where the JSON's file names say).

    The JSON is validated as any COCO JSON (data/coco.py) of skeleton coco17; each valid person is written
    with COCO's area, box and keypoints. Its mask and parts follow `reading` (module docstring): `box`, the
    released code's (its `dp_masks` placed in its integer box, not clipped; its mask its part pixels plus the
    free pixels of its COCO mask; a person without `dp_masks` is background), or `mask` (its `dp_masks` kept
    inside its COCO mask; a person without `dp_masks` has no parts).

    Returns:
      the summary dict.

    Raises:
      ValueError: `reading` is not one of DENSEPOSE_READINGS.
    """
    if reading not in DENSEPOSE_READINGS:
        raise ValueError(f"DensePose reading {reading!r} is not one of {DENSEPOSE_READINGS}")
    place = place_in_integer_box if reading == DENSEPOSE_BOX else place_in_box
    data = coco.load_json(annotations_path, "DensePose annotations")
    conversion = Conversion(output_dir, skeleton_lib.COCO17)
    dataset = coco.parse_dataset(data, annotations_path, conversion.problems, skeleton_lib.COCO17)
    entries = {}   # the first entry of each id: the one data/coco.py validated
    for entry in data["annotations"]:
        if isinstance(entry, dict) and isinstance(entry.get("id"), int):
            entries.setdefault(entry["id"], entry)
    for info in dataset.images:
        persons = dataset.persons[info.image_id]
        masks = np.array([coco.decode_mask(p.segmentation, info.height, info.width) for p in persons],
                         bool).reshape(len(persons), info.height, info.width)
        parts, malformed = {}, set()
        for index, person in enumerate(persons):
            entry = entries.get(person.annotation_id, {})
            if person.is_crowd or "dp_masks" not in entry:
                continue
            grid = densepose_part_grid(entry["dp_masks"])
            if grid is None:
                conversion.problems.warn(BAD_DP_MASKS, f"{annotations_path}: annotation id {person.annotation_id}: "
                                                       f"dp_masks is not {DENSEPOSE_PARTS} RLEs of {DENSEPOSE_GRID} x "
                                                       f"{DENSEPOSE_GRID}; person kept without parts")
                malformed.add(index)
                continue
            placed = place(grid, entry["bbox"], info.height, info.width)
            conversion.outside_pixels += int(np.count_nonzero((placed > 0) & ~masks[index]))
            parts[index] = placed
        labels = np.zeros((info.height, info.width), np.uint8)
        if reading == DENSEPOSE_MASK:
            labelled = sorted(parts)
            exclusive, moved = exclusive_masks(masks[labelled])
            for index, mask in zip(labelled, exclusive):
                masks[index] = mask
                labels[mask] = parts[index][mask]
        else:
            # Without any person's dp_masks the image has no part labels; with them, every person but
            # crowds and malformed dp_masks is labelled (one without dp_masks as background).
            labelled = [index for index, person in enumerate(persons)
                        if parts and not person.is_crowd and index not in malformed]
            labels, masks[labelled], moved = box_reading(masks[labelled], [parts.get(index) for index in labelled])
        conversion.overlap_pixels += moved
        conversion.add_image(info.image_id, info.file_name, labels, [
            conversion.person(person.annotation_id, info.image_id, mask, person.keypoints,
                              has_parts=index in labelled, is_crowd=person.is_crowd, area=person.area,
                              bbox=person.bbox)
            for index, (person, mask) in enumerate(zip(persons, masks))])
    return conversion.finish("DensePose-COCO parts")


# ----------------------------------------------------------------------------------------- MHP v2


def read_list(path: str) -> List[str]:
    """The non-empty lines of a list file, stripped."""
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise coco.AnnotationError(f"cannot read the list {path}: {reason}") from None


def mhp_keypoints(rows) -> np.ndarray:
    """Keypoints [16, 3] of skeleton mhp_v2 from one MHP person's pose rows (x, y, flag), the first 16 its
    joints in the dataset's order (the rows after them are not joints).

    v = 2 - flag, as the part parser's released code reads them: flag 0 (visible) -> 2, 1 (occluded) -> 1,
    2 (outside the image) -> 0, unlabelled; a joint with a negative or non-finite coordinate, another flag,
    or no row is unlabelled too. Unlabelled joints are (0, 0, 0).
    """
    count = skeleton_lib.MHP_V2.num_keypoints
    keypoints = np.zeros((count, 3))
    rows = np.asarray(rows, np.float64).reshape(-1, 3)[:count]
    for joint, (x, y, flag) in enumerate(rows):
        if np.isfinite(x) and np.isfinite(y) and x >= 0 and y >= 0 and flag in (0, 1):
            keypoints[joint] = (x, y, 2 - flag)
    return keypoints


def read_mhp_pose(path: str) -> Optional[Dict[int, np.ndarray]]:
    """{person index: mhp_v2 keypoints [16, 3]} of an MHP pose file (`person_0`, `person_1`, ...), or None if
    unreadable; entries that are not rows of 3 numbers are left out."""
    try:
        content = loadmat(path)
    except Exception:  # scipy raises several types for missing or malformed files
        return None
    poses = {}
    for key, value in content.items():
        if key.startswith("person_") and key[len("person_"):].isdigit():
            try:
                poses[int(key[len("person_"):])] = mhp_keypoints(value)
            except (TypeError, ValueError):
                continue
    return poses


def mhp_person_files(parsing_dir: str) -> Dict[str, List[Tuple[int, str]]]:
    """{image id: [(person number n, file name)] sorted by n} of the files `{id}_{N:02d}_{n:02d}.png`."""
    persons = {}
    names = os.listdir(parsing_dir) if os.path.isdir(parsing_dir) else []
    for file_name in names:
        match = re.fullmatch(r"(.+)_(\d+)_(\d+)\.png", file_name)
        if match:
            persons.setdefault(match.group(1), []).append((int(match.group(3)), file_name))
    return {name: sorted(files) for name, files in persons.items()}


def convert_mhp(root: str, split: str, output_dir: str) -> Dict:
    """MHP v2 (`root/{split}/...`, `root/list/{split}.txt`) -> the project's layout.

    The JSON's file names are relative to `root/{split}/images` (pass that directory to create_tfrecords).
    Persons: one per parsing PNG `{id}_{N:02d}_{n:02d}.png`, keypoints (skeleton mhp_v2, `mhp_keypoints`)
    from `person_{n-1}` of `pose_annos/{id}.mat` (read with scipy.io.loadmat).

    Returns:
      the summary dict.
    """
    split_dir = os.path.join(root, split)
    ids = read_list(os.path.join(root, "list", f"{split}.txt"))
    conversion = Conversion(output_dir, skeleton_lib.MHP_V2)
    problems = conversion.problems
    parsing_dir = os.path.join(split_dir, "parsing_annos")
    person_files = mhp_person_files(parsing_dir)
    for image_id, name in enumerate(ids, start=1):
        file_name = f"{name}.jpg"
        size = image_size(os.path.join(split_dir, "images", file_name))
        if size is None:
            problems.warn(MISSING_IMAGE, f"MHP image {name}: {file_name} is missing or does not decode; skipped")
            continue
        pose_path = os.path.join(split_dir, "pose_annos", f"{name}.mat")
        poses = read_mhp_pose(pose_path)
        if poses is None:
            problems.warn(MISSING_POSE, f"MHP image {name}: {pose_path} is not a readable pose file; "
                                        f"persons without keypoints")
            poses = {}
        persons = []
        for number, person_file in person_files.get(name, []):
            values = read_label_png(os.path.join(parsing_dir, person_file))
            if values is None or values.shape != size:
                kind, reason = (MISSING_PART_FILE, "does not decode") if values is None else (
                    SIZE_MISMATCH, f"is {values.shape[1]}x{values.shape[0]}, the image {size[1]}x{size[0]}")
                problems.warn(kind, f"MHP image {name}: {person_file} {reason}; person skipped")
                continue
            if not values.any():
                problems.warn(EMPTY_PERSON, f"MHP image {name}: {person_file} labels no pixel; person skipped")
                continue
            if number - 1 not in poses:
                problems.warn(MISSING_POSE, f"MHP image {name}: no person_{number - 1} in {pose_path}; no keypoints")
            persons.append((number, values))
        masks, moved = exclusive_masks(np.array([v > 0 for _, v in persons], bool).reshape(-1, *size))
        conversion.overlap_pixels += moved
        labels = np.zeros(size, np.uint8)
        annotations = []
        for (number, values), mask in zip(persons, masks):
            labels[mask] = values[mask]
            keypoints = poses.get(number - 1, conversion.no_keypoints())
            annotations.append(conversion.person(image_id * PERSON_ID_STRIDE + number, image_id, mask, keypoints))
        conversion.add_image(image_id, file_name, labels, annotations)
    return conversion.finish(f"MHP v2 {split}")


# ----------------------------------------------------------------------------------------- PASCAL


class BadPartAnnotation(ValueError):
    """A PASCAL-Part annotation file that does not have the documented structure; the message says where."""


def read_pascal_list(path: str) -> List[Tuple[str, str]]:
    """[(image path, part label path)] relative to the root, of a PASCAL-Person-Part list file whose lines
    are an id (`JPEGImages/{id}.jpg`, `SegmentationPart/{id}.png`) or two paths (a leading / is dropped).

    Raises:
      coco.AnnotationError: the file cannot be read or a line has another number of fields.
    """
    entries = []
    for number, line in enumerate(read_list(path), start=1):
        fields = line.split()
        if len(fields) == 1:
            entries.append((f"{PASCAL_IMAGES_DIR}/{fields[0]}.jpg", f"{PASCAL_PARTS_DIR}/{fields[0]}.png"))
        elif len(fields) == 2:
            entries.append(tuple(field.lstrip("/") for field in fields))
        else:
            raise coco.AnnotationError(f"{path}, entry {number}: expected 'ID' or 'IMAGE LABEL', got {line!r}")
    return entries


def _struct(value, where):
    """A MATLAB struct array read by scipy.io.loadmat, flattened to its elements."""
    if not isinstance(value, np.ndarray) or value.dtype.names is None:
        raise BadPartAnnotation(f"{where} is not a struct")
    return value.reshape(-1)


def _field(element, name, where):
    if name not in element.dtype.names:
        raise BadPartAnnotation(f"{where} has no field '{name}'")
    return element[name]


def pascal_part_persons(path: str, size: Tuple[int, int]) -> List[Tuple[int, np.ndarray]]:
    """The person objects of a PASCAL-Part annotation file: [(object number, mask [H, W] bool)].

    The file holds a struct `anno` whose `objects` array has, per object, `class` (a string such as
    'person'), `class_ind`, `mask` (H x W) and `parts` (`part_name`, `mask`); objects are numbered from 1
    in their order, as MATLAB's `anno.objects(i)`.

    Raises:
      BadPartAnnotation: the file does not load or lacks a field; the message names the field.
    """
    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several types for malformed files
        raise BadPartAnnotation(f"does not load as a MATLAB file ({type(error).__name__})") from None
    if "anno" not in content:
        raise BadPartAnnotation("has no variable 'anno'")
    anno = _struct(content["anno"], "anno")
    if len(anno) != 1:
        raise BadPartAnnotation(f"anno is a {len(anno)}-element struct array, not one struct")
    objects = _field(anno[0], "objects", "anno")
    if isinstance(objects, np.ndarray) and objects.size == 0:
        return []
    persons = []
    for number, element in enumerate(_struct(objects, "anno.objects"), start=1):
        where = f"anno.objects({number})"
        name = np.asarray(_field(element, "class", where)).reshape(-1)
        if name.size != 1 or not isinstance(name[0], str):
            raise BadPartAnnotation(f"{where}.class is not a string")
        if name[0] != PASCAL_PERSON:
            continue
        mask = np.asarray(_field(element, "mask", where))
        if mask.shape != size:
            raise BadPartAnnotation(f"{where}.mask is {mask.shape}, the image is {size}")
        persons.append((number, mask > 0))
    return persons


def pascal_joint_keypoints(joints) -> np.ndarray:
    """Keypoints [14, 3] of skeleton pascal_person_part from one person's 14 joint rows (x, y, visible) of a
    joint file (module docstring): visible 1 -> v = 2, 0 -> v = 1; a joint with a negative or non-finite
    coordinate or another flag is unlabelled, (0, 0, 0)."""
    keypoints = np.zeros((skeleton_lib.PASCAL_PERSON_PART.num_keypoints, 3))
    for joint, (x, y, visible) in enumerate(np.asarray(joints, np.float64)):
        if np.isfinite(x) and np.isfinite(y) and x >= 0 and y >= 0 and visible in (0, 1):
            keypoints[joint] = (x, y, 1 + visible)
    return keypoints


def read_pascal_joints(path: str) -> np.ndarray:
    """The keypoints [P, 14, 3] of a PASCAL-Person-Part joint file (module docstring; `pascal_joint_keypoints`
    of each person).

    Raises:
      BadPartAnnotation: the file does not load or its `joints` is not P x 14 x 3 (or 14 x 3) numbers; the
        message says which.
    """
    count = skeleton_lib.PASCAL_PERSON_PART.num_keypoints
    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several types for malformed files
        raise BadPartAnnotation(f"does not load as a MATLAB file ({type(error).__name__})") from None
    if PASCAL_JOINTS_KEY not in content:
        raise BadPartAnnotation(f"has no variable '{PASCAL_JOINTS_KEY}'")
    joints = np.asarray(content[PASCAL_JOINTS_KEY])
    if joints.size == 0:
        return np.zeros((0, count, 3))
    if joints.shape == (count, 3):
        joints = joints[np.newaxis]
    if joints.ndim != 3 or joints.shape[1:] != (count, 3) or not np.issubdtype(joints.dtype, np.number):
        raise BadPartAnnotation(f"{PASCAL_JOINTS_KEY} is {joints.shape} {joints.dtype}, not P x {count} x 3 numbers")
    return np.stack([pascal_joint_keypoints(person) for person in joints])


def pascal_persons_keypoints(joints_dir: str, name: str, persons: int, conversion: Conversion) -> List[np.ndarray]:
    """The keypoints [14, 3] of each of an image's `persons` person objects from its joint file
    `{joints_dir}/{name}.mat`; zeros, with a counted warning, when there is no (usable) file or no row for a
    person."""
    path = os.path.join(joints_dir, f"{name}.mat")
    empty = [conversion.no_keypoints() for _ in range(persons)]
    if not os.path.isfile(path):
        conversion.problems.warn(MISSING_POSE, f"PASCAL image {name}: no joint file {path}; persons without "
                                               "keypoints")
        return empty
    try:
        joints = read_pascal_joints(path)
    except BadPartAnnotation as error:
        conversion.problems.warn(BAD_KEYPOINTS, f"PASCAL image {name}: {path}: {error}; persons without keypoints")
        return empty
    if len(joints) != persons:
        conversion.problems.warn(MISSING_POSE if len(joints) < persons else BAD_KEYPOINTS,
                                 f"PASCAL image {name}: {path} gives {len(joints)} persons' joints, the image has "
                                 f"{persons} person objects; the first {min(len(joints), persons)} taken in order")
    return [joints[index] if index < len(joints) else empty[index] for index in range(persons)]


def convert_pascal_person_part(root: str, list_path: str, output_dir: str, annotations_dir: Optional[str] = None,
                               joints_dir: Optional[str] = None) -> Dict:
    """PASCAL-Person-Part -> the project's layout, skeleton pascal_person_part.

    Persons are the `person` objects of PASCAL-Part's `{annotations_dir}/{id}.mat` (id = the image file's
    stem); the part map is the listed `SegmentationPart` PNG (void 255 -> background); their keypoints come
    from the joint file `{joints_dir}/{id}.mat` when there is one (module docstring), else they have none
    (counted: missing_pose). The JSON's file names are the list's image paths, relative to `root`.

    Args:
      root: the dataset's root; list_path: its list file (`read_pascal_list`); annotations_dir:
        PASCAL-Part's `Annotations_Part` (default `root/Annotations_Part`); joints_dir: the joint files'
        directory (default `root/Joints`).

    Returns:
      the summary dict.
    """
    entries = read_pascal_list(list_path)
    annotations_dir = annotations_dir or os.path.join(root, PASCAL_PART_ANNOTATIONS_DIR)
    if not os.path.isdir(annotations_dir):
        raise coco.AnnotationError(f"PASCAL-Part annotations directory {annotations_dir} does not exist")
    joints_dir = joints_dir or os.path.join(root, PASCAL_JOINTS_DIR)
    conversion = Conversion(output_dir, skeleton_lib.PASCAL_PERSON_PART)
    problems = conversion.problems
    for image_id, (image_path, label_path) in enumerate(entries, start=1):
        name = os.path.splitext(os.path.basename(image_path))[0]
        size = image_size(os.path.join(root, image_path))
        if size is None:
            problems.warn(MISSING_IMAGE, f"PASCAL image {name}: {image_path} is missing or does not decode; skipped")
            continue
        values = read_label_png(os.path.join(root, label_path))
        if values is None or values.shape != size:
            kind, reason = (MISSING_PART_FILE, "is missing or does not decode") if values is None else (
                SIZE_MISMATCH, f"is {values.shape[1]}x{values.shape[0]}, the image {size[1]}x{size[0]}")
            problems.warn(kind, f"PASCAL image {name}: {label_path} {reason}; image skipped")
            continue
        mat_path = os.path.join(annotations_dir, f"{name}.mat")
        if not os.path.isfile(mat_path):
            problems.warn(MISSING_PART_FILE, f"PASCAL image {name}: {mat_path} does not exist; image skipped")
            continue
        try:
            persons = pascal_part_persons(mat_path, size)
        except BadPartAnnotation as error:
            problems.warn(BAD_PART_ANNOTATION, f"PASCAL image {name}: {mat_path}: {error}; image skipped")
            continue
        parts = np.where(values == VOID, 0, values).astype(np.uint8)
        masks, moved = exclusive_masks(np.array([mask for _, mask in persons], bool).reshape(-1, *size))
        conversion.overlap_pixels += moved
        conversion.outside_pixels += int(np.count_nonzero((parts > 0) & ~masks.any(axis=0)))
        keypoints = pascal_persons_keypoints(joints_dir, name, len(persons), conversion) if persons else []
        conversion.add_image(image_id, image_path, parts, [
            conversion.person(image_id * PERSON_ID_STRIDE + number, image_id, mask, points)
            for (number, _), mask, points in zip(persons, masks, keypoints)])
    return conversion.finish("PASCAL-Person-Part")
