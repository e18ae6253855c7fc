"""tensorflow-datasets builders of the project (each in its own package folder, as tfds expects)."""
