"""Comparator models with official weights (see ../shared/pretrained/README.md)."""
from __future__ import annotations

ZOO_ENTRIES: dict = {}
