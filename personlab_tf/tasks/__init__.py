"""The tasks, sibling packages with the same module names for the same concepts (docs/tasks.md): `personlab`
(pose estimation and person instance segmentation) and `parts` (instance-aware human part parsing). They
import the core; the core imports none of them (personlab_tf/registry.py does, for gin and the scripts)."""
