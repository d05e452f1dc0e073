"""Profiles: one parameter selects everything that costs time.

- ``smoke``: seconds per notebook; what the tests and CI run. Numbers are meaningless, every
  code path is exercised.
- ``quick``: the default of ``make reproduce``: meaningful on a 2-core CPU laptop, all
  notebooks in well under an hour; small models, small patches, minutes of training, full
  benchmark evaluation.
- ``full``: the papers' settings (DIV2K 1-800, 48x48 LR patches, batch 16, Adam 1e-3 halved
  every 200 of 1000 epochs of 1000 iterations, L1) for a GPU box.

Each profile also carries its time budget (``DESIGN.md``, "The quick budget"): a share of the
wall time of a fresh ``make reproduce`` per notebook (:class:`NotebookBudget`), and the knobs a
notebook shrinks to stay inside its share (training steps per arm, arms, seeds, images) rather
than dropping content. The run report (:mod:`srlib.pipeline`) sets each notebook's time against
its share.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

BENCHMARKS = ("Set5", "Set14", "B100", "Urban100")
# seed 002 in quick: the slow patch-based methods (ne, sc) see the first images of Urban100 only
URBAN100_QUICK = 10
# notebook 03 in quick: fine-tuning steps of each of its 9 arms (7 arms, 2 seeds for two of them)
QUICK_03_STEPS = 200
# ... and the images per benchmark they are evaluated on (Set5 and Set14 whole; nine arms on every
# B100 and Urban100 image took ~13 of the notebook's 15 minutes)
QUICK_03_IMAGES = 20
# notebook 05 in quick: steps of each of its 11 from-scratch arms (an IMFM step costs ~1 s here, 5x
# AWSRN-S's) and the images per benchmark its arms are evaluated on (an IMFM pass on one Urban100
# image takes seconds)
QUICK_05_STEPS = 50
QUICK_05_IMAGES = 10
# notebook 04 in quick: generator steps of each of its 7 from-scratch runs (5 arms, 2 seeds for the
# baseline and the package; the hybrid phase is the last third, on smaller patches,
# srlib.studies.hybrid.RECIPES) and the images per benchmark they are evaluated on
QUICK_04_STEPS = 300
QUICK_04_IMAGES = 10
# the parts of `make reproduce` that get a share of its time: the set-up, then notebooks 01-07
BUDGET_PARTS = ("setup", "01", "02", "03", "04", "05", "06", "07")


@dataclass(frozen=True)
class NotebookBudget:
    """One part's share of a ``make reproduce`` and the knobs it shrinks to stay inside it.

    Args:
        minutes: wall-time share of a fresh run (nothing cached); None: no target.
        steps: training iterations per arm; None: the profile's ``steps``.
        arms: at most this many arms per study grid; None: every arm.
        seeds: seeds for the arms that get more than one (the baseline and the all-on arm,
            DESIGN.md); the other arms get one.
        images: images per benchmark where the notebook subsamples; None: the profile's
            ``eval_max_images``.
    """

    minutes: float | None = None
    steps: int | None = None
    arms: int | None = None
    seeds: int = 1
    images: int | None = None


@dataclass(frozen=True)
class Seed002Budget:
    """Notebook 06 part A (seed 002 ``002_85103154dfa612b9.txt``): what its comparison covers.

    Args:
        urban100_images: the first Urban100 images all four methods see (None: all 100); the
            patch-based NE and SC take tens of CPU seconds per Urban100 image.
        scales: the scales compared (the paper names none; x2 and x4 are this project's choice).
        cnn_steps: training iterations of the seed 002 CNN; None: the profile's ``steps``.
    """

    urban100_images: int | None = None
    scales: tuple = (2, 4)
    cnn_steps: int | None = None


def _budgets(minutes: dict, **knobs) -> dict:
    """``{part: NotebookBudget}`` for every part of :data:`BUDGET_PARTS`; ``knobs[part]`` adds knobs."""
    unknown = sorted((set(minutes) | set(knobs)) - set(BUDGET_PARTS))
    if unknown:
        raise ValueError(f"unknown budget parts {unknown}; the parts are {', '.join(BUDGET_PARTS)}")
    return {k: NotebookBudget(minutes.get(k), **knobs.get(k, {})) for k in BUDGET_PARTS}


# DESIGN.md, "The quick budget": a fresh `make reproduce` on the 2-core machine in at most 90 min
QUICK_MINUTES = {"setup": 3, "01": 2, "02": 10, "03": 15, "04": 15, "05": 15, "06": 15, "07": 5}


@dataclass(frozen=True)
class Profile:
    name: str
    # evaluation
    eval_datasets: tuple = BENCHMARKS
    eval_scales: tuple = (2, 3, 4)
    eval_max_images: int | None = None  # None: every image of each benchmark
    # training (the paper recipe scaled down; see srlib.train)
    train_dataset: str = "DIV2K"
    lr_patch: int = 48
    batch_size: int = 16
    steps: int = 1_000_000
    lr: float = 1e-3
    lr_step: int = 200_000  # halve every lr_step iterations
    validate_every: int = 10_000
    checkpoint_every: int = 10_000
    # validation that selects best.pt, never a reported benchmark (srlib.train.validation_split):
    # the first val_images of val_dataset (DIV2K 0801-0810) where it is on disk, else the last
    # val_images of train_dataset in sorted order, held out of the training patches
    val_dataset: str = "DIV2K_valid"
    val_images: int = 10
    seed: int = 0
    threads: int | None = None
    notes: str = ""
    seed002: Seed002Budget = Seed002Budget()
    budgets: dict = field(default_factory=lambda: _budgets({}))  # {part: NotebookBudget}
    total_minutes: float | None = None  # a fresh `make reproduce`, set-up included
    rerun_minutes: float | None = None  # `make reproduce` again with everything cached

    def as_dict(self) -> dict:
        return asdict(self)

    def budget(self, part) -> NotebookBudget:
        """The budget of ``part``: ``"setup"``, a notebook number (``2``, ``"02"``) or file name."""
        key = str(part)
        if key[:1].isdigit():
            key = key.split("_")[0].zfill(2)
        if key not in BUDGET_PARTS:
            raise ValueError(f"no budget part {part!r}; the parts are {', '.join(BUDGET_PARTS)}")
        return self.budgets.get(key, NotebookBudget())

    @property
    def shares_minutes(self) -> float | None:
        """The parts' shares added up (at most ``total_minutes``); None when a part has none."""
        parts = [self.budget(k).minutes for k in BUDGET_PARTS]
        return None if any(m is None for m in parts) else float(sum(parts))

    def with_(self, **changes) -> "Profile":
        return replace(self, **changes)


PROFILES = {
    "smoke": Profile(
        "smoke", eval_datasets=("Set5",), eval_scales=(2, 4), eval_max_images=2,
        train_dataset="T91", lr_patch=16, batch_size=4, steps=6, lr=1e-3, lr_step=4,
        validate_every=3, checkpoint_every=3, threads=2, val_images=2,
        notes="code paths only; numbers are meaningless",
        seed002=Seed002Budget(urban100_images=1, scales=(2, 4)),
        budgets=_budgets({k: 2 for k in BUDGET_PARTS if k != "setup"}, **{"02": dict(steps=6),
                                                                     "03": dict(steps=3, seeds=2),
                                                                     "04": dict(steps=6, seeds=1, images=2),
                                                                     "05": dict(steps=3, seeds=2, images=2)})),
    "quick": Profile(
        "quick", train_dataset="T91", lr_patch=32, batch_size=16, steps=1200, lr=1e-3, lr_step=800,
        validate_every=200, checkpoint_every=200, threads=2,
        notes="a few CPU minutes per model on T91; full benchmark evaluation",
        seed002=Seed002Budget(urban100_images=URBAN100_QUICK, scales=(2, 4)),
        budgets=_budgets(QUICK_MINUTES, **{"02": dict(steps=1200), "03": dict(steps=QUICK_03_STEPS, seeds=2, images=QUICK_03_IMAGES),
                                                          "04": dict(steps=QUICK_04_STEPS, seeds=2, images=QUICK_04_IMAGES),
                                                          "05": dict(steps=QUICK_05_STEPS, seeds=2, images=QUICK_05_IMAGES)}),
        total_minutes=90, rerun_minutes=5),
    "full": Profile(
        "full", eval_scales=(2, 3, 4), train_dataset="DIV2K", lr_patch=48, batch_size=16,
        steps=1_000_000, lr=1e-3, lr_step=200_000, validate_every=10_000, checkpoint_every=10_000,
        notes="the AWSRN paper's recipe (1000 epochs x 1000 iterations); a GPU box",
        seed002=Seed002Budget(urban100_images=None, scales=(2, 4), cnn_steps=50_000),
        budgets=_budgets({}, **{"02": dict(steps=1_000_000)})),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (``smoke``, ``quick`` or ``full``)."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
