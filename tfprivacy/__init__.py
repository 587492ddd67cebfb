"""tfprivacy: adversarially learned privacy-preserving degradation for video recognition."""

from tfprivacy.version import __version__

__all__ = ["__version__"]
