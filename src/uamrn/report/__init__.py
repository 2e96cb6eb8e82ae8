"""report sub-package."""
