"""Figures for the notebooks (matplotlib) and interactive comparers (ipywidgets)."""
from .figures import crop_panel, method_crops, metric_boxplots, patch_grid, save_fig, thumbnail_grid
from .widgets import ReconstructionCache, SwipeComparer, difference_map

__all__ = ["ReconstructionCache", "SwipeComparer", "crop_panel", "difference_map", "method_crops",
           "metric_boxplots", "patch_grid", "save_fig", "thumbnail_grid"]
