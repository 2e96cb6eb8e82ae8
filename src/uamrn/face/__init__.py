"""face sub-package."""
