"""Which runs a notebook trained and which it reused, for the run report.

:func:`srlib.pipeline.reproduce` points ``SRLIB_RUN_LEDGER`` at one file per notebook before it
executes the notebook; every :meth:`srlib.studies.Study.run` in that notebook's kernel appends
one JSON line to it: the study, the profile, and the arms it found finished (reused), trained
(or resumed) in this call, and left unfinished. Outside ``reproduce`` the variable is unset and
nothing is written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

LEDGER_ENV = "SRLIB_RUN_LEDGER"


def record_run(study: str, profile: str, before: dict, after: dict) -> None:
    """Append what one ``Study.run`` call did; ``before``/``after``: ``{arm label: state}``."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    reused = sorted(k for k, v in before.items() if v == "finished")
    trained = sorted(k for k, v in after.items() if v == "finished" and before.get(k) != "finished")
    unfinished = sorted(k for k, v in after.items() if v != "finished")
    line = {"study": study, "profile": profile, "reused": reused, "trained": trained,
            "unfinished": unfinished}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:  # one short line per call: append is atomic enough
        fh.write(json.dumps(line) + "\n")


def read_ledger(path: str | Path) -> dict:
    """``{"trained": n, "reused": n, "unfinished": n, "studies": [...]}`` from one ledger file.

    An arm counted in several calls (a notebook that runs a study twice) counts once, as the
    first call saw it.
    """
    seen: dict = {}
    studies: list = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for raw in lines:
        rec = json.loads(raw)
        if rec["study"] not in studies:
            studies.append(rec["study"])
        for kind in ("reused", "trained", "unfinished"):
            for label in rec[kind]:
                seen.setdefault((rec["study"], label), kind)
    counts = {k: sum(1 for v in seen.values() if v == k) for k in ("trained", "reused", "unfinished")}
    return {**counts, "studies": studies}
