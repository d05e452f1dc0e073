"""Profiles: one parameter selects everything that costs time.

- ``smoke``: seconds per notebook; what the tests and CI run. Numbers are meaningless, every
  code path is exercised.
- ``quick``: the default of ``make reproduce``: meaningful on a 2-core CPU laptop, all
  notebooks in well under an hour; small models, small patches, minutes of training, full
  benchmark evaluation.
- ``gpu``: between the two, for a researcher with one GPU box: the papers' data and batches
  (DIV2K 0001-0800, 48x48 LR patches, batch 16; validation on DIV2K 0801-0810), full benchmark
  evaluation, and budgets that fit notebooks 01-07 in about two hours on one current GPU
  (:data:`GPU_MINUTES`; how the steps were chosen is written beside them).
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
# (NE + SC cost ~33 s per Urban100 image at x2 and x4 together, 06_seed002_timing; ten images put notebook 06 at
# 22 min against its 15-minute share, measured fresh on an idle 2-core machine)
URBAN100_QUICK = 5
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


# ---- the one-GPU profile ----------------------------------------------------------------------
# The papers train AWSRN with batch 16 of 48x48 LR patches (AWSRN Sec. 4.1; seeds 000 and 003 give
# no patch or batch size, so theirs is read as the same). On one GPU the budget is set by one figure:
# AWSRN-S x4 training steps per second at that batch in bf16 autocast. No GPU was at hand when these
# budgets were set, so it is ASSUMED: GPU_ASSUMED_STEPS_PER_S below (a model of 0.6 M parameters
# is bound by kernel launches and the one-process data loader on a current GPU, not by its FLOPs:
# 48 GFLOP forward per batch). `make gpu-check` measures it (and the other models' rates, the
# hybrid step and the DIV2K preparation) into results/gpu_check.json, and
# srlib.gpucheck.estimate_minutes turns the measurement into minutes per notebook, so the
# shares below can be re-read against a real machine.
GPU_ASSUMED_STEPS_PER_S = 25.0
# One step of each model relative to one AWSRN-S step, measured on this project's 2-core CPU (x4,
# batch 4 of 24x24 LR, 1 thread, fwd + bwd + Adam, the least of 3, load ~4): improved AWSRN-S (all
# switches) 1.5, IMFM 4.3, IMDN 1.7, the seed 002 CNN 0.4. A GPU narrows these ratios for small
# models, so they bound the cost from above; gpu-check measures them on the GPU. A hybrid-loss step
# (VGG19 to conv5_4, a VGG-style discriminator with nf=64, RaGAN) is assumed to cost 3 AWSRN-S
# steps on a GPU (6 on the CPU, srlib.studies.hybrid).
GPU_ASSUMED_COSTS = {"awsrn-s": 1.0, "awsrn-s-improved": 1.5, "imfm": 4.3, "imdn": 1.7, "cnn": 0.4,
                     "hybrid": 3.0}
# Assumed for the DIV2K preparation each training notebook's kernel does once per scale (decode 800
# 2K PNGs, MATLAB bicubic on the CPU with torch's threads): 0.15 s an image, 2 min (this 2-core
# machine, 1 thread: 0.27 s for the x4 resize alone, 0.1 s for a decode; gpu-check measures it).
GPU_ASSUMED_PREP_S = 0.15
# Steps per arm, from the shares of GPU_MINUTES at the assumed rate (1500 AWSRN-S steps a minute),
# after what every notebook spends outside training (DIV2K preparation, 2 min a scale; a full
# benchmark evaluation, about 0.5 min an arm; the rest in srlib.gpucheck.OVERHEADS).
# srlib.gpucheck.estimate_minutes(assumed_check()) computes them from the studies' own arms:
# 02 16, 03 21, 04 24, 05 23, 06 25, 01 + 07 8 min (tests/test_profile_gpu.py holds them to the shares).
# - 02 (17 min): the baseline, 11,000 steps (7.3 min), and the fp32/bf16 pair at a quarter of it
#   each (fp32 assumed 1.5x a bf16 step: 4.6 min). 11,000 steps of batch 16 are 176,000 patches,
#   220 per DIV2K image: the baseline that 03-05 compare against is a trained model, not a warm-up
#   (the papers' 10^6 steps stay with `full`).
# - 03 (22 min): nine arms fine-tuned from 02's best.pt, 1,600 steps each (the grid is about 12.5
#   AWSRN-S units a step: 2 baselines, 5 one-switch and 2 all-on arms at 1.5): 13 min, and nine
#   full evaluations. 8x quick's 200 steps at 2.25x the pixels per patch, every benchmark image
#   (quick: 20), two seeds: a module worth 0.1 dB shows against the seed spread.
# - 04 (24 min): seven arms from scratch, 2,500 generator steps each (about 12 units a step of the
#   grid: the hybrid phase is the second half at 3 units, the package is improved AWSRN-S with
#   both): 16 min. 8x quick's 300 steps at 2.25x the patch, full VGG19 (conv5_4), every image.
# - 05 (24 min): eleven arms from scratch (base, pab, pab+mswam, imfm with two seeds for base and
#   imfm; imfm-cos, -deconv, -subpixel; IMDN step and cosine), 500 steps each: about 42 units a
#   step of the grid, 14 min. 10x quick's 50 steps, every image (quick: 10).
# - 06 (25 min): the seed 002 CNN at x2 and x4, 5,000 steps each (0.4 units: 3 min; DIV2K is
#   prepared at both scales, 4 min), NE/SC with quick's settings on the CPU (a GPU does not speed
#   them), and the grand table, which evaluates what `full` evaluates (nearest and bilinear on
#   every benchmark and scale on the CPU, about 8 min; the zoo on the GPU): 18 min besides training.
# - 01, 07: evaluation and figures only, on every benchmark image.
# - setup (15 min): the venv (3 min in quick) and the downloads on first use: DIV2K's train archive
#   (about 3.5 GB), DIV2K_valid (0.45 GB: `srlib data download DIV2K_valid`; without it validation
#   holds out DIV2K 0791-0800) and torchvision's VGG19 (0.55 GB; 04 needs it outside smoke/quick),
#   about 8 min at 10 MB/s.
GPU_MINUTES = {"setup": 15, "01": 3, "02": 17, "03": 22, "04": 24, "05": 24, "06": 25, "07": 5}
GPU_02_STEPS, GPU_03_STEPS, GPU_04_STEPS, GPU_05_STEPS, GPU_CNN_STEPS = 11_000, 1_600, 2_500, 500, 5_000


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
    "gpu": Profile(
        "gpu", eval_scales=(2, 3, 4), train_dataset="DIV2K", lr_patch=48, batch_size=16,
        steps=GPU_02_STEPS, lr=1e-3, lr_step=GPU_02_STEPS // 5, validate_every=1000, checkpoint_every=1000,
        val_dataset="DIV2K_valid", val_images=10,
        notes=f"one GPU box: DIV2K, 48x48 LR patches, batch 16, {GPU_02_STEPS:,} steps for the baseline "
              f"(the papers': 10^6); 01-07 in about {sum(GPU_MINUTES.values()) - GPU_MINUTES['setup']} min "
              f"at an assumed {GPU_ASSUMED_STEPS_PER_S:g} AWSRN-S steps/s (make gpu-check measures it)",
        seed002=Seed002Budget(urban100_images=URBAN100_QUICK, scales=(2, 4), cnn_steps=GPU_CNN_STEPS),
        budgets=_budgets(GPU_MINUTES, **{"02": dict(steps=GPU_02_STEPS),
                                         "03": dict(steps=GPU_03_STEPS, seeds=2),
                                         "04": dict(steps=GPU_04_STEPS, seeds=2),
                                         "05": dict(steps=GPU_05_STEPS, seeds=2)}),
        total_minutes=sum(GPU_MINUTES.values()), rerun_minutes=5),
    "full": Profile(
        "full", eval_scales=(2, 3, 4), train_dataset="DIV2K", lr_patch=48, batch_size=16,
        steps=1_000_000, lr=1e-3, lr_step=200_000, validate_every=10_000, checkpoint_every=10_000,
        notes="the AWSRN paper's recipe (1000 epochs x 1000 iterations); a GPU box",
        seed002=Seed002Budget(urban100_images=None, scales=(2, 4), cnn_steps=50_000),
        budgets=_budgets({}, **{"02": dict(steps=1_000_000)})),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (``smoke``, ``quick``, ``gpu`` or ``full``)."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
