"""uamrn: uncertainty-aware magnification-robust networks for micro-expression recognition."""

__version__ = "0.1.0"
