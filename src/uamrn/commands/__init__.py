"""commands sub-package."""
