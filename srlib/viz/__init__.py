"""Figures for the notebooks (matplotlib) and interactive comparers (ipywidgets)."""
from .figures import crop_panel, method_crops, metric_boxplots, patch_grid, save_fig, thumbnail_grid

__all__ = ["crop_panel", "method_crops", "metric_boxplots", "patch_grid", "save_fig", "thumbnail_grid"]
