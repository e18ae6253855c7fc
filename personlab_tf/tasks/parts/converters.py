"""Readers of the part-parsing datasets, converting each to the project's layout (data/part_labels.py):
a COCO person-keypoints JSON, the dataset's own images, and one part label PNG per image.

| dataset | reads | part set | keypoints |
| --- | --- | --- | --- |
| DensePose-COCO | a COCO JSON with `dp_masks` (14 coarse-part RLEs of 256 x 256 in the person's box) | densepose (15) | COCO's 17 |
| MHP v2 | `{split}/images`, `{split}/parsing_annos/{id}_{N:02d}_{n:02d}.png` (one per person), `{split}/pose_annos/{id}.mat`, `list/{split}.txt` | mhp_v2 (59) | 16 MPII joints -> the 12 COCO limb joints |
| PASCAL-Person-Part | `JPEGImages`, `SegmentationPart` (classes 0-6), `SegmentationObject` and `SegmentationClass` (VOC, person = 15), `{split}.txt`; keypoints from an optional JSON | pascal_person_part (7) | optional, COCO order |

All coordinates are COCO's: pixel centres at integer coordinates, (x, y). The image's part map is the
union of its persons' part labels, later persons over earlier ones where they overlap; a person's parts
are the map under its mask, and its annotation says `"has_parts": 1` (0 for a DensePose person without
`dp_masks`). Masks are written as compressed RLE.

Bad input never raises (except an unusable annotations file, list or root directory: coco.AnnotationError);
each problem is warned about, naming the item, and counted by kind:

| kind | action |
| --- | --- |
| missing_image | the image file cannot be read or decoded -> image skipped |
| missing_part_file | a person's parsing PNG / the image's part PNG is absent or does not decode -> person (image) skipped |
| bad_dp_masks | `dp_masks` is not 14 RLEs of 256 x 256 -> the person keeps its mask but has no parts |
| missing_pose | MHP: no readable pose file or no entry for the person -> person without keypoints |
| size_mismatch | a label PNG's size differs from the image's -> person (image) skipped |
| bad_keypoints | PASCAL: an entry of the keypoints JSON is not 51 numbers -> person without keypoints |
"""

import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from personlab_tf import constants
from personlab_tf.data import coco, coco_format, part_labels

MISSING_IMAGE = "missing_image"
MISSING_PART_FILE = "missing_part_file"
BAD_DP_MASKS = "bad_dp_masks"
MISSING_POSE = "missing_pose"
SIZE_MISMATCH = "size_mismatch"
BAD_KEYPOINTS = "bad_keypoints"

DENSEPOSE_PARTS = 14
DENSEPOSE_GRID = 256
# MHP v2 / MPII joint order -> COCO keypoint index (pelvis, thorax, upper neck and head top have none).
MPII_TO_COCO = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15, 10: 10, 11: 8, 12: 6, 13: 5, 14: 7, 15: 9}
PASCAL_PERSON_CLASS = 15
VOID = 255


def rle(mask):
    """Compressed COCO RLE of a [H, W] bool mask, counts as a str (JSON-ready)."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def box(mask):
    """COCO box [x, y, w, h] of a mask's pixels ([0, 0, 0, 0] when empty)."""
    rows, columns = np.nonzero(mask)
    if not len(rows):
        return [0, 0, 0, 0]
    return [int(columns.min()), int(rows.min()), int(columns.max() - columns.min() + 1), int(rows.max() - rows.min() + 1)]


def person_annotation(annotation_id, image_id, mask, keypoints, has_parts=True):
    """A COCO person annotation from a mask [H, W] bool and keypoints [K, 3] (x, y, v)."""
    keypoints = np.asarray(keypoints, np.float64)
    return {"id": int(annotation_id), "image_id": int(image_id), "category_id": constants.PERSON_CATEGORY_ID,
            "iscrowd": 0, "segmentation": rle(mask), "area": int(mask.sum()), "bbox": box(mask),
            "keypoints": [round(float(v), 2) for v in keypoints.ravel()],
            "num_keypoints": int(np.count_nonzero(keypoints[:, 2])), "has_parts": int(has_parts)}


def read_label_png(path):
    """The [H, W] uint8 label values of a PNG (palette indices, grey, or the first channel of RGB), or None."""
    try:
        with Image.open(path) as picture:
            picture.load()
            values = np.asarray(picture)
    except Exception:  # PIL raises many types (OSError, SyntaxError, ...)
        return None
    return (values[..., 0] if values.ndim == 3 else values).astype(np.uint8)


def image_size(path):
    """(height, width) of a readable image file, or None."""
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture.size[1], picture.size[0]
    except Exception:  # PIL raises many types
        return None


def write_dataset(output_dir, images, annotations, part_maps, description):
    """Writes `output_dir/person_keypoints.json` and `output_dir/part_labels/<stem>.png` (data/coco_format.py).

    Args:
      images: COCO image entries; annotations: COCO annotations; part_maps: {file_name: [H, W] uint8};
      description: the JSON's info description.
    """
    coco_format.write_annotations(output_dir, images, annotations, description)
    labels_dir = os.path.join(output_dir, coco_format.PART_LABELS_DIR)
    for file_name, labels in part_maps.items():
        part_labels.write_png(coco_format.part_labels_path(labels_dir, file_name), labels)


def summary(images, annotations, problems):
    """The conversion summary (the scripts' last stdout line)."""
    return {"images": len(images), "persons": len(annotations),
            "persons_with_keypoints": sum(a["num_keypoints"] > 0 for a in annotations),
            "persons_with_parts": sum(a.get("has_parts", 1) for a in annotations),
            "warnings": dict(sorted(problems.warnings.items()))}


# ----------------------------------------------------------------------------------------- DensePose


def densepose_part_grid(dp_masks):
    """The 256 x 256 part classes of `dp_masks` (14 RLEs or falsy entries; part i + 1 where mask i), or None
    when the field is malformed."""
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


def place_in_box(grid, bbox, height, width):
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


def convert_densepose(annotations_path, output_dir):
    """DensePose-COCO JSON -> the project's layout (the images stay where the JSON's file names say).

    Returns:
      the summary dict.
    """
    data = coco.load_json(annotations_path, "DensePose annotations")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(
            data.get("annotations"), list):
        raise coco.AnnotationError(f"{annotations_path} has no 'images' and 'annotations' lists")
    problems = coco.ProblemCounter()
    sizes = {image["id"]: (image["height"], image["width"]) for image in data["images"]}
    names = {image["id"]: image["file_name"] for image in data["images"]}
    part_maps, annotations = {}, []
    for annotation in data["annotations"]:
        entry = {key: value for key, value in annotation.items() if not key.startswith("dp_")}
        image_id = annotation.get("image_id")
        if image_id not in sizes or annotation.get("iscrowd") or "dp_masks" not in annotation:
            entry["has_parts"] = 0
            annotations.append(entry)
            continue
        grid = densepose_part_grid(annotation["dp_masks"])
        if grid is None:
            problems.warn(BAD_DP_MASKS, f"annotation id {annotation.get('id')}: dp_masks is not {DENSEPOSE_PARTS} "
                                        f"RLEs of {DENSEPOSE_GRID} x {DENSEPOSE_GRID}; person kept without parts")
            entry["has_parts"] = 0
            annotations.append(entry)
            continue
        height, width = sizes[image_id]
        placed = place_in_box(grid, annotation["bbox"], height, width)
        labels = part_maps.setdefault(names[image_id], np.zeros((height, width), np.uint8))
        labels[placed > 0] = placed[placed > 0]
        entry["has_parts"] = 1
        annotations.append(entry)
    for image in data["images"]:
        part_maps.setdefault(image["file_name"], np.zeros((image["height"], image["width"]), np.uint8))
    write_dataset(output_dir, data["images"], annotations, part_maps, "DensePose-COCO parts")
    return summary(data["images"], annotations, problems)


# ----------------------------------------------------------------------------------------- MHP v2


def read_list(path):
    """The ids of a split list (one per line)."""
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except OSError as error:
        raise coco.AnnotationError(f"cannot read the list {path}: {error.strerror or error}") from None


def listed_images(ids, images_dir, dataset, problems):
    """(image id, name, file name `<name>.jpg`, (height, width)) of the listed images that can be read;
    the others are warned about and counted as missing_image."""
    for image_id, name in enumerate(ids, start=1):
        file_name = f"{name}.jpg"
        size = image_size(os.path.join(images_dir, file_name))
        if size is None:
            problems.warn(MISSING_IMAGE, f"{dataset} image {name}: {file_name} is missing or does not decode; skipped")
            continue
        yield image_id, name, file_name, size


def mhp_keypoints(rows):
    """COCO keypoints [K, 3] from one MHP person's pose rows (x, y, flag) in MPII order (16 joints first).

    A joint is labelled when both coordinates are >= 0: v = 2 when its flag is 0 (visible), else 1.
    """
    keypoints = np.zeros((constants.NUM_KEYPOINTS, 3))
    rows = np.asarray(rows, np.float64).reshape(-1, 3)
    for joint, k in MPII_TO_COCO.items():
        if joint < len(rows):
            x, y, flag = rows[joint]
            if x >= 0 and y >= 0:
                keypoints[k] = (x, y, 2 if flag == 0 else 1)
    return keypoints


def read_mhp_pose(path, load_mat):
    """{person index: pose rows} of an MHP pose file (`person_0`, `person_1`, ...), or None if unreadable."""
    try:
        content = load_mat(path)
    except Exception:  # scipy raises several types for missing or malformed files
        return None
    poses = {}
    for key, value in content.items():
        if key.startswith("person_") and key[len("person_"):].isdigit():
            poses[int(key[len("person_"):])] = value
    return poses


def convert_mhp(root, split, output_dir):
    """MHP v2 (`root/{split}/...`, `root/list/{split}.txt`) -> the project's layout.

    The JSON's file names are relative to `root/{split}/images` (pass that directory to create_tfrecords).
    Persons: one per parsing PNG `{id}_{N:02d}_{n:02d}.png` (n = 1 .. N), keypoints from `person_{n-1}`
    of `pose_annos/{id}.mat` (read with scipy.io.loadmat).

    Returns:
      the summary dict.
    """
    try:
        from scipy.io import loadmat  # MHP's pose files are MATLAB files; only this reader needs scipy
    except ImportError:
        raise coco.AnnotationError("reading MHP v2 needs scipy: pip install -e '.[mhp]'") from None

    split_dir = os.path.join(root, split)
    ids = read_list(os.path.join(root, "list", f"{split}.txt"))
    problems = coco.ProblemCounter()
    images, annotations, part_maps = [], [], {}
    parsing_dir = os.path.join(split_dir, "parsing_annos")
    files = os.listdir(parsing_dir) if os.path.isdir(parsing_dir) else []
    for image_id, name, file_name, size in listed_images(ids, os.path.join(split_dir, "images"), "MHP", problems):
        height, width = size
        poses = read_mhp_pose(os.path.join(split_dir, "pose_annos", f"{name}.mat"), loadmat)
        if poses is None:
            problems.warn(MISSING_POSE, f"MHP image {name}: no readable pose file; persons without keypoints")
            poses = {}
        labels = np.zeros(size, np.uint8)
        persons = sorted(f for f in files if f.startswith(f"{name}_") and f.endswith(".png"))
        for person_file in persons:
            index = int(os.path.splitext(person_file)[0].rsplit("_", 1)[1]) - 1
            values = read_label_png(os.path.join(parsing_dir, person_file))
            if values is None or values.shape != size:
                kind = MISSING_PART_FILE if values is None else SIZE_MISMATCH
                problems.warn(kind, f"MHP image {name}: {person_file} is unusable; person skipped")
                continue
            mask = values > 0
            labels[mask] = values[mask]
            if index not in poses:
                problems.warn(MISSING_POSE, f"MHP image {name}: no pose for person {index + 1}; no keypoints")
            keypoints = mhp_keypoints(poses[index]) if index in poses else np.zeros((constants.NUM_KEYPOINTS, 3))
            annotations.append(person_annotation(image_id * 1000 + index, image_id, mask, keypoints))
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        part_maps[file_name] = labels
    write_dataset(output_dir, images, annotations, part_maps, f"MHP v2 {split}")
    return summary(images, annotations, problems)


# ----------------------------------------------------------------------------------------- PASCAL


def pascal_keypoints(keypoints, name, instance, problems):
    """[K, 3] keypoints of one PASCAL instance from the optional JSON (zeros when absent or malformed)."""
    entries = keypoints.get(name, {}) if isinstance(keypoints, dict) else {}
    values = entries.get(str(instance)) if isinstance(entries, dict) else None
    if values is None:
        return np.zeros((constants.NUM_KEYPOINTS, 3))
    try:
        points = np.asarray(values, np.float64).reshape(constants.NUM_KEYPOINTS, 3)
    except (TypeError, ValueError):
        points = None
    if points is None or not np.all(np.isfinite(points)) or not np.all(np.isin(points[:, 2], (0, 1, 2))):
        problems.warn(BAD_KEYPOINTS, f"PASCAL image {name}, instance {instance}: keypoints are not "
                                     f"{3 * constants.NUM_KEYPOINTS} numbers (x, y, v); person without keypoints")
        return np.zeros((constants.NUM_KEYPOINTS, 3))
    return points


def convert_pascal_person_part(root, split, output_dir, keypoints_path=None):
    """PASCAL-Person-Part (VOC layout) -> the project's layout.

    Persons are the instances of `SegmentationObject/{id}.png` whose pixels are the VOC person class in
    `SegmentationClass/{id}.png`; parts come from `SegmentationPart/{id}.png` (void 255 -> background).
    `keypoints_path`: optional JSON {image id: {instance id: [51 numbers, COCO order (x, y, v)]}}.
    The JSON's file names are relative to `root/JPEGImages`.

    Returns:
      the summary dict.
    """
    ids = read_list(os.path.join(root, f"{split}.txt"))
    keypoints = coco.load_json(keypoints_path, "keypoints") if keypoints_path else {}
    problems = coco.ProblemCounter()
    images, annotations, part_maps = [], [], {}
    for image_id, name, file_name, size in listed_images(ids, os.path.join(root, "JPEGImages"), "PASCAL", problems):
        maps = {folder: read_label_png(os.path.join(root, folder, f"{name}.png"))
                for folder in ("SegmentationPart", "SegmentationObject", "SegmentationClass")}
        broken = [folder for folder, values in maps.items() if values is None or values.shape != size]
        if broken:
            problems.warn(MISSING_PART_FILE, f"PASCAL image {name}: {', '.join(broken)} unusable; image skipped")
            continue
        objects, classes = maps["SegmentationObject"], maps["SegmentationClass"]
        parts = np.where(maps["SegmentationPart"] == VOID, 0, maps["SegmentationPart"])
        for instance in sorted(set(np.unique(objects)) - {0, VOID}):
            mask = objects == instance
            if not np.any(classes[mask] == PASCAL_PERSON_CLASS):
                continue
            points = pascal_keypoints(keypoints, name, int(instance), problems)
            annotations.append(person_annotation(image_id * 1000 + int(instance), image_id, mask, points))
        images.append({"id": image_id, "file_name": file_name, "height": size[0], "width": size[1]})
        part_maps[file_name] = parts.astype(np.uint8)
    write_dataset(output_dir, images, annotations, part_maps, f"PASCAL-Person-Part {split}")
    return summary(images, annotations, problems)

