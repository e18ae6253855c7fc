"""Training: distribution strategy, checkpoints with EMA weights, callbacks, and the gin-configured loop."""
