"""Video: reading and writing frames, tracking people across them (docs/video.md)."""
