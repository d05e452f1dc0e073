"""Studies: named sets of training runs (arms x seeds), cached by identity, resumable, run side
by side, turned into tidy tables for the notebooks.

Usage::

    from srlib.studies import Arm, Study
    study = Study("schedules", "quick", [Arm("step", "awsrn-s", 4),
                                         Arm("cosine", "awsrn-s", 4, train={"schedule": "cosine_restarts"})],
                  baseline="step")
    table = study.run(jobs=2)      # trains what is missing, resumes what was interrupted
    study.compare()                # deltas vs the baseline with a paired bootstrap interval

``srlib study list | run NAME --profile P [--jobs N] | status NAME --profile P`` on the command line.
"""
from .core import (IDENTITY_VERSION, RUNTIME_FIELDS, Arm, RunRef, Study, StudyError, identity_hash,
                   training_key)
from .registry import get_study, list_studies, register_study
from .stats import bootstrap_delta, seed_spread, within_noise

__all__ = [
    "IDENTITY_VERSION",
    "RUNTIME_FIELDS",
    "Arm",
    "RunRef",
    "Study",
    "StudyError",
    "bootstrap_delta",
    "get_study",
    "identity_hash",
    "list_studies",
    "register_study",
    "seed_spread",
    "training_key",
    "within_noise",
]
