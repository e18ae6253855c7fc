"""Readers of the part-parsing datasets, converting each to the project's layout (data/part_labels.py):
a COCO person-keypoints JSON, the dataset's own images, and one part label PNG per image. One module per
dataset, saying how it reads masks, parts and keypoints (densepose.py, mhp_v2.py, pascal_person_part.py),
over common.py (the output, the readers they share, and the problems counted).

| dataset | reads | part set | keypoints (skeleton, personlab_tf/skeleton.py) |
| --- | --- | --- | --- |
| DensePose-COCO | a COCO JSON whose persons may carry `dp_masks` (14 coarse-part RLEs of 256 x 256 over the person's box) | densepose (15) | COCO's 17 (coco17) |
| MHP v2 | `list/{split}.txt`, `{split}/images/{id}.jpg`, `{split}/parsing_annos/{id}_{N:02d}_{n:02d}.png` (one per person, 3 equal channels), `{split}/pose_annos/{id}.mat` (`person_{n-1}`: rows x, y, flag, the first 16 the joints in the dataset's (MPII) order) | mhp_v2 (59) | its 16 joints (mhp_v2) |
| PASCAL-Person-Part | a list file (lines `ID`, or `IMAGE LABEL` paths relative to the root), `JPEGImages/{id}.jpg`, `SegmentationPart/{id}.png` (classes 0-6), PASCAL-Part's `Annotations_Part/{id}.mat` (`anno.objects(i).class`, `.mask`); optional joint files `{joints_dir}/{id}.mat` (below) | pascal_person_part (7) | 14 joints (pascal_person_part), when a joint file gives them |

Each output JSON's category is its skeleton's (`Skeleton.category_entry`: keypoint names and tree), and
its annotations' `category_id` the skeleton's.

Keypoint visibility is COCO's v (0 unlabelled, coordinates 0; 1 labelled, occluded; 2 visible); each dataset's
module says how its own labels map to it.

All coordinates are COCO's: pixel centres at integer coordinates, (x, y). Masks are written as
compressed RLE.

**A person's parts, one definition** (docs/parts.md "Data"): the part-labelled persons of an image have
disjoint masks, and a person's parts are the image's part map under its mask, so that the part targets
(the map), the mIoU (the map) and AP^p / AP^r (each person's map under its mask) see the same labels.
- Where the masks of several part-labelled persons overlap, the pixel goes to the last of them in the
  dataset's order: the map holds its labels and the earlier masks lose the pixel (`overlap_pixels`);
  under DensePose's `box` reading part pixels come first (a person's part pixel is never given to another
  person's COCO mask), then the other mask pixels (`overlap_pixels` counts both).
An annotation says `"has_parts": 1`, or 0 for a crowd region, a DensePose person with malformed `dp_masks`,
and under DensePose's `mask` reading a person without `dp_masks`.
"""
