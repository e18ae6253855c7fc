"""Masks of validated COCO segmentations (data/coco.py): compressed RLE and decoded [H, W] arrays.

A validated segmentation (`CocoPersons` persons) is a list of [2P] float64 polygons (x0, y0, x1, y1, ...) in
the pycocotools convention, pixel (c, r) the unit square [c, c+1] x [r, r+1], or a compressed RLE dict of the
image size.
"""

from typing import List, Union

import numpy as np
from pycocotools import mask as mask_utils


def segmentation_rle(segmentation: Union[List[np.ndarray], dict], height: int, width: int) -> dict:
    """The compressed COCO RLE {"size": [h, w], "counts": bytes} of a validated segmentation (`load_dataset`:
    degenerate polygons already dropped): its polygons rasterised and merged as `COCO.annToRLE` does (none:
    an empty mask), or its RLE as it is."""
    if not isinstance(segmentation, list):
        return segmentation
    if not segmentation:
        return mask_utils.encode(np.zeros((height, width), np.uint8, order="F"))
    return mask_utils.merge(mask_utils.frPyObjects([polygon.tolist() for polygon in segmentation], height, width))


def decode_mask(segmentation: Union[List[np.ndarray], dict], height: int, width: int) -> np.ndarray:
    """[H, W] uint8 mask of a validated segmentation (`CocoPersons` persons; `segmentation_rle`)."""
    return mask_utils.decode(segmentation_rle(segmentation, height, width))
