"""Differentiable TF ops shared by the model and the decoder."""
