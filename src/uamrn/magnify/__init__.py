"""magnify sub-package."""
