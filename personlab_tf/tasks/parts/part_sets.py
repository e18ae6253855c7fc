"""Part label sets of the instance-aware part parsing datasets.

A part set names the classes of a dataset's part labels (class 0 is always the background) and gives
the class each one becomes under a horizontal flip (left <-> right). The keypoints, and the limbs of the
pose graph the part parser scores and assembles (`Skeleton.limbs`), are the experiment's skeleton's
(personlab_tf/skeleton.py), independent of the part set: DensePose-COCO's are coco17, MHP v2's its 16
joints (mhp_v2), PASCAL-Person-Part's the 14 joints of pascal_person_part when a joint file gives them
(converters/pascal_person_part.py).
"""

import dataclasses
from typing import Tuple

from personlab_tf.data import synthetic_body


@dataclasses.dataclass(frozen=True)
class PartSet:
    """The classes of one dataset's part labels.

    Attributes:
      name: key in PART_SETS.
      classes: class names, index = label value; classes[0] is the background.
      flip_permutation: FLIP[c] is the class that becomes class c after a horizontal flip (as
        Skeleton.flip_permutation for keypoints), derived from "left"/"right" in the names.
    """

    name: str
    classes: tuple

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def flip_permutation(self) -> Tuple[int, ...]:
        swap = {"left": "right", "right": "left"}
        mirrored = ["_".join(swap.get(word, word) for word in name.split("_")) for name in self.classes]
        return tuple(self.classes.index(name) for name in mirrored)


BACKGROUND = "background"

# The synthetic people of data/synthetic_body.py: body parts without a left/right distinction.
SYNTHETIC = PartSet("synthetic", synthetic_body.BODY_PART_CLASSES)

# DensePose-COCO's 14 coarse parts (the order of `dp_masks`), plus background: 15 classes. The image's
# right/left are the person's (DensePose: "Right Hand" is the person's right hand).
DENSEPOSE = PartSet("densepose", (BACKGROUND, "torso", "right_hand", "left_hand", "left_foot", "right_foot",
                                  "right_upper_leg", "left_upper_leg", "right_lower_leg", "left_lower_leg",
                                  "left_upper_arm", "right_upper_arm", "left_lower_arm", "right_lower_arm",
                                  "head"))

# MHP v2: 58 categories plus background, in the label values of its parsing annotations.
MHP_V2 = PartSet("mhp_v2", (
    BACKGROUND, "cap_hat", "helmet", "face", "hair", "left_arm", "right_arm", "left_hand", "right_hand",
    "protector", "bikini_bra", "jacket_windbreaker_hoodie", "tee_shirt", "polo_shirt", "sweater", "singlet",
    "torso_skin", "pants", "shorts_swim_shorts", "skirt", "stockings", "socks", "left_boot", "right_boot",
    "left_shoe", "right_shoe", "left_highheel", "right_highheel", "left_sandal", "right_sandal", "left_leg",
    "right_leg", "left_foot", "right_foot", "coat", "dress", "robe", "jumpsuit", "other_full_body_clothes",
    "headwear", "backpack", "ball", "bats", "belt", "bottle", "carrybag", "cases", "sunglasses", "eyewear",
    "glove", "scarf", "umbrella", "wallet_purse", "watch", "wristband", "tie", "other_accessary",
    "other_upper_body_clothes", "other_lower_body_clothes"))

# PASCAL-Person-Part: 6 parts plus background (no left/right).
PASCAL_PERSON_PART = PartSet("pascal_person_part", (BACKGROUND, "head", "torso", "upper_arm", "lower_arm",
                                                    "upper_leg", "lower_leg"))

PART_SETS = {part_set.name: part_set for part_set in (SYNTHETIC, DENSEPOSE, MHP_V2, PASCAL_PERSON_PART)}


def part_set(name: str) -> PartSet:
    """The PartSet called `name`; ValueError naming the known ones otherwise."""
    if name not in PART_SETS:
        raise ValueError(f"unknown part set {name!r}; expected one of {sorted(PART_SETS)}")
    return PART_SETS[name]

