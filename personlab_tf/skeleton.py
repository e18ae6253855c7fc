"""Keypoint sets as data: a `Skeleton` names its keypoints and holds everything the rest of the package needs
to know about them (docs/skeletons.md).

| field | what uses it |
| --- | --- |
| `keypoints` | K names, in the order of every [..., K, ...] array, record and result |
| `tree` | the kinematic tree PersonLab decodes along (paper §3.2): K - 1 (parent, child) edges, the root first; mid-range offsets use both directions (`directed_edges`, E = 2 (K - 1)) |
| `sigmas` | the OKS sigmas (COCOeval, Expected-OKS of Eq. 3, OKS-NMS) |
| `flip_pairs` | the (left, right) keypoint pairs a horizontal flip swaps |
| `limbs` | the part parser's limbs (CVPR 2021 §3.3), ordered from the root outwards |
| `colors` | RGB of each keypoint's dot in pictures |
| `category`, `category_id` | the COCO category the keypoints belong to |

Built in: `coco17` (the default), `crowdpose`, `mhp_v2`, `pascal_person_part`; a user's own comes from a
COCO-format file's `categories[].keypoints` and `categories[].skeleton` (`from_category`). The skeleton of an
experiment is chosen by gin (`keypoint_skeleton`), recorded in its operative config, its records
(`image/skeleton`) and its SavedModel, and checked against them (`check_same`).

Coordinates everywhere in this package: pixel centres at integer coordinates, x to the right, y down,
points stored in (x, y) order (docs/conventions.md).
"""

import dataclasses
import json
import os
import re
from collections import deque
from typing import Any, Dict, Optional, Sequence, Tuple

import gin
import numpy as np

Edge = Tuple[int, int]

# The OKS sigma of a keypoint a user's skeleton gives none for: the mean of COCO's 17 sigmas (0.0669), rounded.
DEFAULT_SIGMA = 0.067
# Keypoint dot colours (RGB) derived from the names: the person's left, right, and neither.
LEFT_COLOR, RIGHT_COLOR, CENTRE_COLOR = (0, 160, 255), (255, 140, 0), (255, 255, 255)
_SIDE_WORDS = {"left": "right", "right": "left"}


def _words(name: str) -> list:
    """The lower-case words of a keypoint name ('Left-Ankle', 'left_ankle' -> ['left', 'ankle'])."""
    return [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]


def _side(name: str) -> Optional[str]:
    """'left', 'right' or None: the side a keypoint name states."""
    sides = [word for word in _words(name) if word in _SIDE_WORDS]
    return sides[0] if sides else None


def derived_flip_pairs(names: Sequence[str]) -> Tuple[Edge, ...]:
    """(left, right) index pairs of the names that differ only by the word 'left' / 'right'."""
    index = {tuple(_words(name)): k for k, name in enumerate(names)}
    pairs = []
    for k, name in enumerate(names):
        words = _words(name)
        if "left" in words:
            mirrored = tuple(_SIDE_WORDS.get(word, word) for word in words)
            if mirrored in index:
                pairs.append((k, index[mirrored]))
    return tuple(pairs)


def derived_colors(names: Sequence[str]) -> Tuple[Tuple[int, int, int], ...]:
    """One dot colour per keypoint from its name: LEFT_COLOR, RIGHT_COLOR or CENTRE_COLOR."""
    by_side = {"left": LEFT_COLOR, "right": RIGHT_COLOR, None: CENTRE_COLOR}
    return tuple(by_side[_side(name)] for name in names)


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """One keypoint set (module docstring); validated on construction (ValueError naming the problem).

    Attributes:
      name: what records, configs and SavedModels call it.
      keypoints: K >= 2 keypoint names.
      tree: K - 1 (parent, child) edges of a tree over all K keypoints, ordered so that each parent is the
        root (`tree[0][0]`) or the child of an earlier edge.
      sigmas: K OKS sigmas (COCO's kappa_k = 2 sigma_k).
      flip_pairs: disjoint (a, b) keypoint pairs swapped by a horizontal flip.
      limbs: the part parser's limbs, (k, l) pairs, from the root outwards.
      colors: K RGB dot colours.
      category, category_id: the COCO category of the annotations.
    """

    name: str
    keypoints: Tuple[str, ...]
    tree: Tuple[Edge, ...]
    sigmas: Tuple[float, ...]
    flip_pairs: Tuple[Edge, ...]
    limbs: Tuple[Edge, ...]
    colors: Tuple[Tuple[int, int, int], ...]
    category: str = "person"
    category_id: int = 1

    def __post_init__(self):
        for field in ("keypoints", "tree", "sigmas", "flip_pairs", "limbs", "colors"):
            value = getattr(self, field)
            nested = field in ("tree", "flip_pairs", "limbs", "colors")
            object.__setattr__(self, field, tuple(tuple(v) if nested else v for v in value))
        problem = self._problem()
        if problem:
            raise ValueError(f"skeleton {self.name!r}: {problem}")

    def _problem(self) -> Optional[str]:
        """What makes this skeleton unusable, or None."""
        count = len(self.keypoints)
        if count < 2:
            return f"needs at least 2 keypoints, has {count}"
        if len(set(self.keypoints)) != count:
            return "keypoint names repeat"
        if len(self.sigmas) != count or not all(np.isfinite(s) and s > 0 for s in self.sigmas):
            return f"needs {count} positive sigmas, has {list(self.sigmas)}"
        if len(self.colors) != count:
            return f"needs {count} colours, has {len(self.colors)}"
        for what, edges in (("tree", self.tree), ("flip pair", self.flip_pairs), ("limb", self.limbs)):
            for a, b in edges:
                if not (0 <= a < count and 0 <= b < count) or a == b:
                    return f"{what} ({a}, {b}) does not join two of its {count} keypoints"
        if len(self.tree) != count - 1:
            return f"a tree over {count} keypoints has {count - 1} edges, not {len(self.tree)}"
        reached = {self.tree[0][0]}
        for parent, child in self.tree:
            if parent not in reached or child in reached:
                return (f"tree edge ({parent}, {child}) does not grow the tree from its root "
                        f"{self.keypoints[self.tree[0][0]]!r}")
            reached.add(child)
        flipped = [k for pair in self.flip_pairs for k in pair]
        if len(set(flipped)) != len(flipped):
            return "a keypoint is in two flip pairs"
        return None

    # ------------------------------------------------------------------------------------------ derived
    @property
    def num_keypoints(self) -> int:
        """K."""
        return len(self.keypoints)

    @property
    def root(self) -> int:
        """The tree's root keypoint."""
        return self.tree[0][0]

    @property
    def directed_edges(self) -> Tuple[Edge, ...]:
        """The mid-range offsets' edges: the K - 1 parent->child edges, then the K - 1 child->parent ones;
        directed_edges[e] = (source keypoint k, target keypoint l)."""
        return self.tree + tuple((child, parent) for parent, child in self.tree)

    @property
    def num_edges(self) -> int:
        """E = 2 (K - 1)."""
        return 2 * len(self.tree)

    @property
    def flip_permutation(self) -> Tuple[int, ...]:
        """FLIP[k]: the keypoint that becomes keypoint k after a horizontal flip."""
        permutation = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            permutation[a], permutation[b] = b, a
        return tuple(permutation)

    @property
    def kappas(self) -> np.ndarray:
        """[K] float32 OKS constants kappa_k = 2 sigma_k (pycocotools: vars = (2 sigma)^2; Eq. 3 uses the same)."""
        return 2.0 * np.array(self.sigmas, np.float32)

    def category_entry(self) -> Dict[str, Any]:
        """The COCO category of this skeleton (names, and the tree as the 1-based `skeleton` list)."""
        return {"supercategory": self.category, "id": self.category_id, "name": self.category,
                "keypoints": list(self.keypoints), "skeleton": [[a + 1, b + 1] for a, b in self.tree]}

    # ------------------------------------------------------------------------------------------ storage
    def to_config(self) -> Dict[str, Any]:
        """JSON-able dict; `from_config` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Skeleton":
        """The skeleton of a `to_config` dict."""
        return cls(**config)

    def describe(self) -> str:
        """'name (K keypoints)', as messages name a skeleton."""
        return f"{self.name} ({self.num_keypoints} keypoints)"


# The key of the skeleton (`to_config()`) in a task's `config()`, and so in a SavedModel's task record.
CONFIG_KEY = "skeleton"


def of_task_config(config: Dict[str, Any]) -> Skeleton:
    """The skeleton recorded in a task's `config()` dict; coco17 for a record from before skeletons were
    recorded (every such export is COCO-17)."""
    return Skeleton.from_config(config[CONFIG_KEY]) if CONFIG_KEY in config else COCO17


def make_skeleton(name: str, keypoints: Sequence[str], tree: Sequence[Edge], sigmas: Sequence[float],
                  limbs: Optional[Sequence[Edge]] = None, flip_pairs: Optional[Sequence[Edge]] = None,
                  colors: Optional[Sequence[Tuple[int, int, int]]] = None, category: str = "person",
                  category_id: int = 1) -> Skeleton:
    """A Skeleton whose flip pairs and colours default to those the names imply (`derived_flip_pairs`,
    `derived_colors`) and whose limbs default to the tree's edges."""
    return Skeleton(name=name, keypoints=tuple(keypoints), tree=tuple(tree), sigmas=tuple(sigmas),
                    flip_pairs=tuple(derived_flip_pairs(keypoints) if flip_pairs is None else flip_pairs),
                    limbs=tuple(tree if limbs is None else limbs),
                    colors=tuple(derived_colors(keypoints) if colors is None else colors),
                    category=category, category_id=category_id)


# ---------------------------------------------------------------------------------------------- built in
COCO17 = make_skeleton(
    "coco17",
    ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
     "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
     "left_ankle", "right_ankle"),
    # The PersonLab tree rooted at the nose (16 edges).
    tree=((0, 1), (1, 3), (0, 2), (2, 4),
          (0, 5), (5, 7), (7, 9), (5, 11), (11, 13), (13, 15),
          (0, 6), (6, 8), (8, 10), (6, 12), (12, 14), (14, 16)),
    # The COCO evaluation's sigmas.
    sigmas=tuple(s / 10.0 for s in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
                                    1.07, 1.07, 0.87, 0.87, 0.89, 0.89)),
    # The part parser's 18 limbs from head to feet: the tree level by level, with the shoulder and hip bars
    # that hold the left and right halves together when the nose is not found.
    limbs=((0, 1), (0, 2), (1, 3), (2, 4),
           (0, 5), (0, 6), (5, 6),
           (5, 7), (6, 8), (7, 9), (8, 10),
           (5, 11), (6, 12), (11, 12),
           (11, 13), (12, 14), (13, 15), (14, 16)),
)

# CrowdPose's 14 keypoints in its annotation order, its sigmas (mmpose's CrowdPose metainfo); the tree is
# rooted at the neck, the limbs are CrowdPose's declared skeleton from the head down.
CROWDPOSE = make_skeleton(
    "crowdpose",
    ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
     "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck"),
    tree=((13, 12), (13, 0), (0, 2), (2, 4), (0, 6), (6, 8), (8, 10),
          (13, 1), (1, 3), (3, 5), (1, 7), (7, 9), (9, 11)),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
    limbs=((12, 13), (13, 0), (13, 1), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5),
           (0, 6), (1, 7), (6, 7), (6, 8), (7, 9), (8, 10), (9, 11)),
)

# MHP v2's 16 joints in the dataset's (MPII) order; sigmas and the 18 limbs of the part parser's released
# code (MG-HumanParsing, its MHP constants), the limbs oriented and ordered from the head down; the tree is
# the MPII body rooted at the upper neck.
MHP_V2 = make_skeleton(
    "mhp_v2",
    ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
     "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
     "left_wrist"),
    tree=((8, 9), (8, 12), (12, 11), (11, 10), (8, 13), (13, 14), (14, 15),
          (8, 7), (7, 6), (6, 2), (2, 1), (1, 0), (6, 3), (3, 4), (4, 5)),
    sigmas=(0.089, 0.087, 0.107, 0.107, 0.087, 0.089, 0.087, 0.107, 0.079, 0.026, 0.062, 0.072, 0.079, 0.079,
            0.072, 0.062),
    limbs=((9, 8), (8, 7), (8, 12), (8, 13), (12, 13), (12, 11), (13, 14), (11, 10), (14, 15),
           (7, 6), (12, 2), (13, 3), (6, 2), (6, 3), (2, 1), (3, 4), (1, 0), (4, 5)),
)

# PASCAL-Person-Part's joints (Xia et al., CVPR 2017). No public material states their layout; this reading
# (14 joints: head, neck and six left/right pairs) is the project's own, documented in docs/skeletons.md and
# tested with a hand-made file. Sigmas: CrowdPose's for the same joints.
PASCAL_PERSON_PART = make_skeleton(
    "pascal_person_part",
    ("head", "neck", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
     "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"),
    tree=((1, 0), (1, 2), (2, 4), (4, 6), (2, 8), (8, 10), (10, 12),
          (1, 3), (3, 5), (5, 7), (3, 9), (9, 11), (11, 13)),
    sigmas=(0.079, 0.079, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
    limbs=((0, 1), (1, 2), (1, 3), (2, 3), (2, 4), (3, 5), (4, 6), (5, 7),
           (2, 8), (3, 9), (8, 9), (8, 10), (9, 11), (10, 12), (11, 13)),
)

BUILTIN: Dict[str, Skeleton] = {skeleton.name: skeleton for skeleton in (COCO17, CROWDPOSE, MHP_V2,
                                                                          PASCAL_PERSON_PART)}


def builtin(name: str) -> Skeleton:
    """The built-in skeleton called `name`; ValueError naming the known ones otherwise."""
    if name not in BUILTIN:
        raise ValueError(f"unknown skeleton {name!r}; built in: {', '.join(sorted(BUILTIN))} "
                         "(or keypoint_skeleton.annotations = a COCO file with its own keypoints)")
    return BUILTIN[name]


# ---------------------------------------------------------------------------------------------- from files
def spanning_tree(num_keypoints: int, edges: Sequence[Edge], root: Optional[int] = None) -> Tuple[Edge, ...]:
    """The tree PersonLab decodes along, derived from a declared keypoint graph (docs/skeletons.md):

    the root is `root`, else a centre of the declared graph (the keypoint whose farthest keypoint is the
    fewest edges away, the lowest index among equals), so that the chains of mid-range offsets stay short;
    the tree is the breadth-first tree from the root, neighbours visited in index order; a keypoint the
    declared graph does not reach hangs from the root.

    Args:
      num_keypoints: K.
      edges: declared undirected edges, 0-based (cycles allowed).
      root: the root keypoint, None: a centre.
    """
    neighbours = [set() for _ in range(num_keypoints)]
    for a, b in edges:
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)

    def breadth_first(start):
        depth, parents, queue = {start: 0}, [], deque([start])
        while queue:
            k = queue.popleft()
            for l in sorted(neighbours[k]):
                if l not in depth:
                    depth[l] = depth[k] + 1
                    parents.append((k, l))
                    queue.append(l)
        return depth, parents

    if root is None:
        def eccentricity(k):
            depth, _ = breadth_first(k)
            return (num_keypoints - len(depth), max(depth.values()), k)  # reach most, then shallowest
        root = min(range(num_keypoints), key=eccentricity)
    depth, tree = breadth_first(root)
    return tuple(tree) + tuple((root, k) for k in range(num_keypoints) if k not in depth)


def keypoint_category(data: Dict[str, Any], source: str) -> Dict[str, Any]:
    """The category of a COCO dict that declares keypoints: the person category (id 1) if it has them, else
    the only category that does; ValueError naming `source` otherwise."""
    categories = [c for c in data.get("categories") or [] if isinstance(c, dict) and c.get("keypoints")]
    if not categories:
        raise ValueError(f"{source}: no category declares keypoints (categories[].keypoints)")
    people = [c for c in categories if c.get("id") == 1]
    if people:
        return people[0]
    if len(categories) > 1:
        raise ValueError(f"{source}: {len(categories)} categories declare keypoints "
                         f"({', '.join(str(c.get('name')) for c in categories)}), none with id 1: keep the one to "
                         "train on")
    return categories[0]


def from_category(category: Dict[str, Any], source: str, root: Optional[int] = None,
                  tree: Optional[Sequence[Edge]] = None, sigmas: Optional[Sequence[float]] = None,
                  name: Optional[str] = None) -> Skeleton:
    """The skeleton of a COCO category (`keypoints` names, `skeleton` 1-based edges).

    A category whose keypoint names are those of a built-in skeleton gives that skeleton (unless `tree`,
    `sigmas` or `root` say otherwise). Otherwise: the tree is `tree` (0-based (parent, child) edges) or
    `spanning_tree` of the declared edges from `root`; sigmas are `sigmas` or DEFAULT_SIGMA each; the limbs
    are the tree's edges; flip pairs and colours come from the names.
    """
    names = category.get("keypoints")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{source}: categories[].keypoints must be a list of names, got {str(names)[:80]}")
    if tree is None and sigmas is None and root is None:
        for skeleton in BUILTIN.values():
            if list(skeleton.keypoints) == names:
                return skeleton
    declared = []
    for edge in category.get("skeleton") or []:
        if (not isinstance(edge, (list, tuple)) or len(edge) != 2 or not all(isinstance(v, int) for v in edge)
                or not all(1 <= v <= len(names) for v in edge)):
            raise ValueError(f"{source}: categories[].skeleton entry {edge!r} is not a pair of 1-based "
                             f"indices of its {len(names)} keypoints")
        declared.append((edge[0] - 1, edge[1] - 1))
    if sigmas is not None and len(sigmas) != len(names):
        raise ValueError(f"{source}: {len(sigmas)} sigmas bound for {len(names)} keypoints")
    chosen = tuple(tree) if tree is not None else spanning_tree(len(names), declared, root)
    return make_skeleton(name or str(category.get("name") or "custom"), names, chosen,
                         tuple(sigmas) if sigmas is not None else (DEFAULT_SIGMA,) * len(names),
                         category=str(category.get("name") or "person"), category_id=int(category.get("id", 1)))


def _read_coco(path: str) -> Dict[str, Any]:
    """The parsed COCO JSON object at `path`; ValueError naming the file when it is not one."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read a COCO JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a COCO JSON object")
    return data


def declares_keypoints(data: Any) -> bool:
    """Whether a parsed COCO JSON has a category with keypoint names."""
    categories = data.get("categories") if isinstance(data, dict) else None
    return isinstance(categories, list) and any(isinstance(c, dict) and c.get("keypoints") for c in categories)


def read_annotations_skeleton(path: str, **options: Any) -> Skeleton:
    """The skeleton of a COCO-format annotation file (`keypoint_category`, `from_category` with `options`);
    ValueError naming the file when it has none."""
    return from_category(keypoint_category(_read_coco(path), path), path, **options)


@gin.configurable
def keypoint_skeleton(name: str = COCO17.name, annotations: Optional[str] = None, root: Optional[int] = None,
                      tree: Optional[Sequence[Edge]] = None, sigmas: Optional[Sequence[float]] = None) -> Skeleton:
    """The experiment's skeleton (gin): the one of the COCO file `annotations` when it is given (with the
    `root` / `tree` / `sigmas` overrides of `from_category`; the path as given, like the training files), else
    the built-in one called `name` (default coco17). The operative config records both."""
    if annotations is not None:
        return read_annotations_skeleton(annotations, root=root, tree=tree, sigmas=sigmas)
    return builtin(name)


def is_bound() -> bool:
    """Whether gin binds `keypoint_skeleton.name` or `.annotations` (a run's operative config binds both; the
    commands that read an annotation file use the file's skeleton otherwise)."""
    for parameter in ("name", "annotations"):
        try:
            if gin.query_parameter(f"keypoint_skeleton.{parameter}") is not None:
                return True
        except ValueError:  # not bound
            continue
    return False


def bind_annotations_skeleton(annotations: str) -> str:
    """For the commands that read an annotation file: when gin binds no skeleton and the file declares
    keypoints, binds `keypoint_skeleton.annotations` to it. Returns where the skeleton comes from, for the
    command to say: 'gin', `annotations`, or 'the default'."""
    if is_bound():
        return "gin"
    try:
        data = _read_coco(annotations)
    except ValueError:  # the command's own reading of the file says what is wrong with it
        return "the default"
    if declares_keypoints(data):
        with gin.unlock_config():
            gin.bind_parameter("keypoint_skeleton.annotations", annotations)
        return annotations
    return "the default"


def resolve(spec: str) -> Skeleton:
    """The skeleton a command-line flag names: a built-in name, or the path of a COCO-format file whose
    category declares the keypoints (`read_annotations_skeleton`)."""
    if spec in BUILTIN or not os.path.exists(spec):
        return builtin(spec)
    return read_annotations_skeleton(spec)


def check_same(expected: Skeleton, found: Skeleton, expected_source: str, found_source: str) -> None:
    """ValueError, one line naming both, when two skeletons differ in name or keypoints."""
    if expected.name != found.name or expected.keypoints != found.keypoints:
        raise ValueError(f"skeleton mismatch: {expected_source} holds {expected.describe()}, "
                         f"{found_source} holds {found.describe()}")
