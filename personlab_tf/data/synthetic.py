"""Procedural synthetic people, written as a COCO person-keypoint dataset (`generate_dataset`).

Files: the images, `person_keypoints.json` (COCO, the skeleton's category), `hidden_keypoints.json` (the true
keypoints of the persons annotated without keypoints) and the part label maps
`part_labels/<image file stem>.png` (data/part_labels.py; a person's parts are the map under its mask).

The pieces: data/synthetic_body.py (proportions, pose, the named points a skeleton's keypoints may be, body
parts), data/synthetic_figure.py (a posed figure's polygons), data/synthetic_drawing.py (textures and
drawing), data/synthetic_annotations.py (a drawn person's COCO annotation, coordinate conventions),
data/synthetic_scene.py (scene statistics and one image: image i depends only on (seed, i));
data/synthetic_video.py makes clips of the same figures.

Skeletons: the keypoints written are those of a `Skeleton` (personlab_tf/skeleton.py; coco17 by default),
each a named point of the figures (data/synthetic_body.py `FIGURE_POINTS`; others are refused). The scene
does not depend on the skeleton. The annotations file declares the skeleton's category; the keypoint lists
hold K (x, y, v) triples in the skeleton's order.
"""

import json
import os
from typing import Any, Callable, Optional

import cv2
import numpy as np

from personlab_tf.data import coco_format
from personlab_tf.data import part_labels as part_labels_lib
from personlab_tf.data.synthetic_body import check_skeleton
from personlab_tf.data.synthetic_scene import synthesize_image
from personlab_tf.skeleton import COCO17, Skeleton

HIDDEN_KEYPOINTS_FILE = "hidden_keypoints.json"

# Annotation id = image id * ANNOTATION_ID_STRIDE + index of the annotation in its image.
ANNOTATION_ID_STRIDE = 1000


def write_jpeg(path: str, image: np.ndarray, quality: int) -> None:
    """Writes `image` [H, W, 3] uint8 RGB to `path` as a JPEG of `quality` (1-100) with cv2's encoder."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path}")
    with open(path, "wb") as f:
        f.write(encoded.tobytes())


def generate_dataset(output_dir: str, num_images: int, seed: int, min_side: int = 256, max_side: int = 448,
                     progress_fn: Optional[Callable[[int, int], None]] = None, skeleton: Skeleton = COCO17,
                     **scene_options: Any) -> dict:
    """Writes a synthetic COCO person-keypoint dataset.

    Files: `output_dir/images/<image id:012d>.jpg` (image ids 1..num_images), `person_keypoints.json`
    (COCO, the skeleton's category), `hidden_keypoints.json`: a list of {"id": annotation id,
    "keypoints": [x, y, v] * K} with
    the true keypoints of every non-crowd person annotated without keypoints (true x, y even outside the
    image; v as it would have been labelled), and `part_labels/<image id:012d>.png`, the part label maps.

    Args:
      output_dir: directory to create or fill.
      num_images: number of images.
      seed: int; image i depends only on (seed, i).
      min_side, max_side: image height and width are drawn uniformly from [min_side, max_side].
      progress_fn: optional callable(done, total) called after each image.
      skeleton: the `Skeleton` whose keypoints are annotated (default coco17); ValueError naming the
        keypoints that are not figure points (`check_skeleton`), before anything is written.
      **scene_options: `num_persons`, `size` and `scene` of `synthesize_image`.

    Returns:
      dict summary: images, persons (non-crowd annotations), persons_with_keypoints, crowd_regions,
      images_without_people (images with no annotation at all).
    """
    check_skeleton(skeleton)
    os.makedirs(os.path.join(output_dir, coco_format.IMAGES_DIR), exist_ok=True)
    images, annotations, hidden = [], [], []
    for index in range(num_images):
        image_id = index + 1
        sample = synthesize_image(seed, index, min_side, max_side, skeleton=skeleton, **scene_options)
        file_name = f"{image_id:012d}.jpg"
        write_jpeg(os.path.join(output_dir, coco_format.IMAGES_DIR, file_name), sample["image"], sample["jpeg_quality"])
        part_labels_lib.write_png(coco_format.part_labels_path(os.path.join(output_dir, coco_format.PART_LABELS_DIR),
                                                               file_name), sample["part_labels"])
        height, width = sample["image"].shape[:2]
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        pairs = zip(sample["annotations"], sample["hidden_keypoints"])
        for n, (annotation, true_keypoints) in enumerate(pairs):
            annotation_id = image_id * ANNOTATION_ID_STRIDE + n
            annotations.append(dict(annotation, id=annotation_id, image_id=image_id))
            if true_keypoints is not None:
                hidden.append({"id": annotation_id, "keypoints": true_keypoints})
        if progress_fn:
            progress_fn(index + 1, num_images)

    description = f"personlab_tf synthetic people, seed {seed}"
    if skeleton.name != COCO17.name:
        description += f", skeleton {skeleton.describe()}"
    coco_format.write_annotations(output_dir, images, annotations, description, skeleton)
    with open(os.path.join(output_dir, HIDDEN_KEYPOINTS_FILE), "w") as f:
        json.dump(hidden, f)
    persons = [a for a in annotations if not a["iscrowd"]]
    annotated_images = {a["image_id"] for a in annotations}
    return {"images": num_images, "persons": len(persons),
            "persons_with_keypoints": sum(a["num_keypoints"] > 0 for a in persons),
            "crowd_regions": len(annotations) - len(persons),
            "images_without_people": num_images - len(annotated_images)}
