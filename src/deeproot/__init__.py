"""deeproot: scalp diagnosis, ingredient-aware product recommendation and an Olive Young catalog."""

__version__ = "0.1.0"
