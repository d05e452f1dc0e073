"""Profiles: one parameter selects everything that costs time.

- ``smoke``: seconds per notebook; what the tests and CI run. Numbers are meaningless, every
  code path is exercised.
- ``quick``: the default of ``make reproduce``: meaningful on a 2-core CPU laptop, all
  notebooks in well under an hour; small models, small patches, minutes of training, full
  benchmark evaluation.
- ``full``: the papers' settings (DIV2K 1-800, 48x48 LR patches, batch 16, Adam 1e-3 halved
  every 200 of 1000 epochs of 1000 iterations, L1) for a GPU box.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

BENCHMARKS = ("Set5", "Set14", "B100", "Urban100")
# seed 002 in quick: the slow patch-based methods (ne, sc) see the first images of Urban100 only
URBAN100_QUICK = 10


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
    val_dataset: str = "Set5"
    seed: int = 0
    threads: int | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "Profile":
        return replace(self, **changes)


PROFILES = {
    "smoke": Profile(
        "smoke", eval_datasets=("Set5",), eval_scales=(2, 4), eval_max_images=2,
        train_dataset="T91", lr_patch=16, batch_size=4, steps=6, lr=1e-3, lr_step=4,
        validate_every=3, checkpoint_every=3, threads=2,
        notes="code paths only; numbers are meaningless",
        extra=dict(seed002=dict(urban100_images=1, scales=(2, 4)))),
    "quick": Profile(
        "quick", train_dataset="T91", lr_patch=32, batch_size=16, steps=1200, lr=1e-3, lr_step=800,
        validate_every=200, checkpoint_every=200, threads=2,
        notes="a few CPU minutes per model on T91; full benchmark evaluation",
        extra=dict(seed002=dict(urban100_images=URBAN100_QUICK, scales=(2, 4)))),
    "full": Profile(
        "full", eval_scales=(2, 3, 4), train_dataset="DIV2K", lr_patch=48, batch_size=16,
        steps=1_000_000, lr=1e-3, lr_step=200_000, validate_every=10_000, checkpoint_every=10_000,
        notes="the AWSRN paper's recipe (1000 epochs x 1000 iterations); a GPU box",
        extra=dict(seed002=dict(urban100_images=None, scales=(2, 4), cnn_steps=50_000))),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (``smoke``, ``quick`` or ``full``)."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
