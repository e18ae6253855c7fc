"""Inference shared by the tasks: image <-> frame geometry, map resampling, ranking of detections, oracle
frames, the SavedModel (serving signatures, task record) and export, pictures."""
