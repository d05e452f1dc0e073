"""The study registry: ``@register_study(name)`` over ``fn(profile) -> Study``.

The project's own studies live in :mod:`srlib.studies.baseline` (notebook 02),
:mod:`srlib.studies.improved` (03), :mod:`srlib.studies.hybrid` (04), :mod:`srlib.studies.imfm` (05)
and :mod:`srlib.studies.seed002` (06);
they are imported on the first :func:`get_study` / :func:`list_studies`, so importing
:mod:`srlib.studies` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Callable

from ..profiles import Profile, get_profile
from .core import Study

#: modules that register the project's studies when imported
BUILTIN_MODULES = ("srlib.studies.baseline", "srlib.studies.improved", "srlib.studies.hybrid",
                   "srlib.studies.imfm", "srlib.studies.seed002")

_STUDIES: dict[str, Callable[[Profile], Study]] = {}


def register_study(name: str):
    """Decorator: register ``fn(profile: Profile) -> Study`` as the study ``name``."""

    def deco(fn: Callable[[Profile], Study]):
        if not callable(fn):
            raise TypeError(f"register_study({name!r}) decorates a function profile -> Study")
        _STUDIES[name] = fn
        return fn

    return deco


def _load_builtin() -> None:
    for mod in BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a missing dependency inside the module is a real error
                raise


def list_studies() -> list[str]:
    """Names of the registered studies, sorted."""
    _load_builtin()
    return sorted(_STUDIES)


def get_study(name: str, profile: str | Profile = "quick") -> Study:
    """The registered study ``name`` built for ``profile``."""
    _load_builtin()
    if name not in _STUDIES:
        raise KeyError(f"unknown study {name!r}; registered studies: {', '.join(sorted(_STUDIES)) or 'none'}")
    study = _STUDIES[name](get_profile(profile))
    if not isinstance(study, Study):
        raise TypeError(f"study {name!r}: its function returned {type(study).__name__}, not a Study")
    if study.name != name:
        raise ValueError(f"study registered as {name!r} is named {study.name!r}; use one name")
    return study
