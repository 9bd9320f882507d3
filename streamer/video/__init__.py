"""Video files: audio decoding, the per-frame motion timeline and the PyAV encoder (POST /render/video)."""
