"""Problems met reading COCO person-keypoint annotations and their images: the kinds, and their counting.

Bad input never raises (except an unusable annotations file, imputed keypoints file or images
directory: `AnnotationError`, data/coco.py). Each problem is logged as a warning naming the item and counted by kind
in a `ProblemCounter`; the annotations' kinds are met by data/coco.py, the images' (missing_image ...
size_mismatch) by data/coco_records.py:

| kind                          | action                                                             |
| ----------------------------- | ------------------------------------------------------------------ |
| malformed_image               | bad or duplicate entry in `images` -> image skipped                |
| missing_image                 | image file cannot be read -> image skipped                         |
| corrupt_image                 | file does not decode completely -> image skipped                   |
| unsupported_image_format      | decodes, but is neither JPEG nor PNG -> image skipped              |
| size_mismatch                 | decoded size differs from the JSON height/width -> image skipped   |
| non_person_category           | annotation of another category -> ignored                          |
| malformed_annotation          | bad field, unknown image id, duplicate id -> person skipped        |
| degenerate_polygon            | polygon with < 3 points, an odd length or zero area -> dropped     |
| empty_segmentation            | no polygon left: non-crowd keeps an empty mask, crowd is dropped   |
| keypoint_outside_image        | labelled keypoint outside the image -> set to (0, 0, 0)            |
| imputed_malformed             | bad or duplicate imputed entry -> ignored                          |
| imputed_unknown_id            | no loaded person annotation has that id -> ignored                 |
| imputed_for_labelled_person   | the person already has labelled keypoints -> ignored               |
| imputed_for_crowd             | the id is a crowd region -> ignored                                |
"""

import collections

from absl import logging

# Problem kinds (see the module docstring).
MALFORMED_IMAGE = "malformed_image"
MISSING_IMAGE = "missing_image"
CORRUPT_IMAGE = "corrupt_image"
UNSUPPORTED_IMAGE_FORMAT = "unsupported_image_format"
SIZE_MISMATCH = "size_mismatch"
NON_PERSON_CATEGORY = "non_person_category"
MALFORMED_ANNOTATION = "malformed_annotation"
DEGENERATE_POLYGON = "degenerate_polygon"
EMPTY_SEGMENTATION = "empty_segmentation"
KEYPOINT_OUTSIDE_IMAGE = "keypoint_outside_image"
IMPUTED_MALFORMED = "imputed_malformed"
IMPUTED_UNKNOWN_ID = "imputed_unknown_id"
IMPUTED_FOR_LABELLED_PERSON = "imputed_for_labelled_person"
IMPUTED_FOR_CROWD = "imputed_for_crowd"


class ProblemCounter:
    """Counts data problems by kind, logging each one as a warning that names the item.

    Attributes:
      warnings: collections.Counter, kind -> number of problems.
      images_skipped: images with person annotations that were not written because of a problem.
      images_without_people: images with no (valid) person annotation; not a warning.
    """

    def __init__(self):
        self.warnings = collections.Counter()
        self.images_skipped = 0
        self.images_without_people = 0

    def warn(self, kind: str, message: str) -> None:
        """Logs `message` as a warning of `kind` and counts it."""
        self.warnings[kind] += 1
        logging.warning("[%s] %s", kind, message)

    def skip_image(self, kind: str, message: str) -> None:
        """Like `warn`, for a problem that removes a whole image."""
        self.warn(kind, message)
        self.images_skipped += 1
