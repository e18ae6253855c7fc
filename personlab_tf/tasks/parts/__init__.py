"""Instance-aware human part parsing (CVPR 2021) on the PersonLab pipeline: part sets and dataset readers,
targets, network, losses, matching, decoding, detector, oracle, metrics and evaluation; the task object is
task.PartsTask."""
