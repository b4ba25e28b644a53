"""Lightning callbacks: capture the trained model's representations and track its
interpretive equivalence to reference models over training."""

from interpeq.callbacks.capture import ActivationCapture, CaptureRecord, load_captures
from interpeq.callbacks.references import Reference, resolve_references
from interpeq.callbacks.tracker import EquivalenceTracker

__all__ = [
    "ActivationCapture",
    "CaptureRecord",
    "EquivalenceTracker",
    "Reference",
    "load_captures",
    "resolve_references",
]
