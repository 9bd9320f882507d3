"""The embedded `mesh` engine: mediapipe landmarks + action-unit displacement warps on CPU."""
from .engine import MODEL_VERSION, MeshEngine, MeshSource

__all__ = ["MeshEngine", "MeshSource", "MODEL_VERSION"]
