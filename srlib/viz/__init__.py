"""Figures for the notebooks (matplotlib) and interactive comparers (ipywidgets)."""
from .figures import crop_panel, save_fig, thumbnail_grid

__all__ = ["crop_panel", "save_fig", "thumbnail_grid"]
