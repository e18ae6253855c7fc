"""Differentiable and graph-side TF ops shared by the tasks: bilinear sampling, Hough voting, peaks, greedy
suppression."""
