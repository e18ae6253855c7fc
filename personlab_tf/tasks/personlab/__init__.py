"""PersonLab (Papandreou et al., ECCV 2018): targets, network, losses, decoding, detector, oracle, evaluation and
keypoint imputation; the task object is task.PersonLabTask."""
