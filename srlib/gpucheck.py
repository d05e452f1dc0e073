"""``make gpu-check``: is this GPU box ready for the ``gpu`` profile, and how long will it take?

``python -m srlib.gpucheck`` (what ``make gpu-check`` runs) does, on CUDA:

1. the ``smoke`` profile end to end (``srlib reproduce --profile smoke``; the trainer picks CUDA
   and bf16 by itself, :mod:`srlib.device`), so every code path has run on this GPU once;
2. a timed short training of AWSRN-S x4 with the papers' batch (16 LR patches of 48x48), bf16
   autocast, through the project's own :class:`~srlib.train.Trainer` (data loading, channels_last,
   optimiser step included), ``steps`` steps after ``warmup`` untimed ones; the same in fp32, and a
   shorter one for every other model the ``gpu`` profile trains and for a hybrid-loss step;
3. inference of AWSRN-S x4 on a 256x256 LR input in bf16 and in fp32;
4. the preparation of DIV2K-sized training images (decode a 2040x1356 PNG, MATLAB bicubic x4);

prints steps/s, images/s, the GPU, torch and CUDA versions and the peak memory, and writes it all
to ``results/gpu_check.json`` (atomically). :func:`estimate_minutes` turns that file into the
minutes each notebook of the ``gpu`` profile should take on this machine, from the profile's
studies themselves (their arms, steps, phases and models), so the shares in
:data:`srlib.profiles.GPU_MINUTES` can be checked against a real GPU.

Readings chosen: the timed data are synthetic (random images, so no dataset is needed and the
figure is the model's, not the disk's); a step rate is the mean over the timed steps after
``torch.cuda.synchronize()``; the estimate charges each arm ``steps x cost / rate`` with the
cost of its model relative to AWSRN-S (measured here, else :data:`srlib.profiles.GPU_ASSUMED_COSTS`),
scaled by the pixels per batch, plus fixed overheads (data preparation per notebook, evaluation
per arm) stated in :data:`OVERHEADS`.

``--device cpu --allow-cpu`` runs the same code on the CPU with tiny settings: a test of the
check itself, not a measurement of anything.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .fileio import write_json
from .paths import project_root

#: the file the check writes (project-relative) and :func:`estimate_minutes` reads
CHECK_FILE = Path("results") / "gpu_check.json"
#: models timed beside AWSRN-S: each model the ``gpu`` profile's studies train (improved AWSRN-S
#: with every switch on stands for all its arms; upper bound)
OTHER_MODELS = {"awsrn-s-improved": dict(gap_awru=True, lrfu_fusion=True, awms_plus=True, dsconv_head=True,
                                         nonlocal_ca=True),
                "imfm": {}, "imdn": {}, "cnn": {}}
#: minutes charged outside training steps (assumed; gpu-check measures the DIV2K preparation):
#: full evaluation of one arm at one scale on Set5+Set14+B100+Urban100 (inference on the GPU,
#: PSNR/SSIM on the CPU), and each notebook's work besides its studies (complexity tables,
#: figures; in 06 NE/SC on the CPU, ~6 min in quick's share, nearest and bilinear on every
#: benchmark and scale, ~4 min each measured on the 2-core machine, and the zoo on the GPU)
OVERHEADS = {"eval_min_per_arm": 0.5, "notebook_min": {"01": 3.0, "02": 1.5, "03": 1.5, "04": 2.0,
                                                       "05": 1.5, "06": 18.0, "07": 5.0},
             "div2k_images": 800}
#: a typical DIV2K image (rows, columns); a preparation timed on other sizes is scaled to it
DIV2K_HW = (1356, 2040)
#: the studies each notebook trains (``seed002-cnn`` belongs to notebook 06)
NOTEBOOK_STUDIES = {"02": ("02-awsrn-s", "02-precision"), "03": ("03-ablation",), "04": ("04-hybrid-mpts",),
                    "05": ("05-imfm",), "06": ("seed002-cnn",)}


# ---- what is timed ------------------------------------------------------------------------

def device_info(device: torch.device) -> dict:
    """The GPU (or CPU), torch, CUDA and cuDNN versions, and the GPU's memory."""
    info = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported())
    else:
        import platform
        info.update(gpu=None, cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return info


def describe(info: dict) -> str:
    """One line: the GPU (name, memory, compute capability) or the CPU, and the versions."""
    where = (f"GPU {info['gpu']} ({info['gpu_memory_gb']} GiB, compute capability {info['capability']}, "
             f"bf16 {'yes' if info['bf16'] else 'no'})" if info.get("gpu") else
             f"CPU {info.get('cpu')} ({info.get('threads')} threads; a test of the check, not a measurement)")
    return f"{where}; torch {info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _synthetic_images(n: int, hw: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """Random uint8 HR images (smoothed noise, so patches are not white noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (hw[0] // 4, hw[1] // 4, 3), dtype=np.uint8)
        img = np.repeat(np.repeat(small, 4, 0), 4, 1)
        out.append(np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8))
    return out


def time_training(model_name: str, device: torch.device, steps: int = 200, warmup: int = 20, batch: int = 16,
                  lr_patch: int = 48, scale: int = 4, precision: str = "bf16", model_kwargs: dict | None = None,
                  hybrid: bool = False) -> dict:
    """Steps/s of ``steps`` training steps after ``warmup`` untimed ones, through the Trainer.

    ``hybrid``: the step of the hybrid phase (L1 + VGG19 ``conv5_4`` + RaGAN with a VGG-style
    discriminator, nf=64; random VGG features: the same work as ImageNet's, no file needed).
    """
    from .data.datasets import PatchDataset
    from .losses import hybrid_loss
    from .models import build_model
    from .train import Trainer, TrainConfig

    torch.manual_seed(0)
    model = build_model(model_name, scale, **(model_kwargs or {}))
    data = PatchDataset(_synthetic_images(8, (lr_patch * scale * 2, lr_patch * scale * 2)), scale,
                        lr_patch=lr_patch, length=(steps + warmup) * batch)
    extra = {}
    if hybrid:
        loss, d_loss = hybrid_loss(vgg_weights="random")
        extra = dict(loss=loss, d_loss=d_loss, discriminator={"name": "vgg", "nf": 64})
    config = TrainConfig(steps=steps + warmup, batch_size=batch, lr=1e-4, device=str(device), precision=precision,
                         checkpoint_every=0, validate_every=0, log_every=max(1, steps + warmup), progress=False,
                         **extra)
    marks = {}

    def mark(trainer) -> None:
        if trainer.step in (warmup, steps + warmup):
            _sync(device)
            marks[trainer.step] = time.perf_counter()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, data, config, tmp)
        trainer.hooks.append(mark)
        trainer.fit()
    seconds = marks[steps + warmup] - marks[warmup]
    rate = steps / seconds
    out = {"model": model_name, "steps": steps, "warmup": warmup, "batch": batch, "lr_patch": lr_patch,
           "scale": scale, "precision": trainer.precision, "hybrid": hybrid, "seconds": round(seconds, 3),
           "steps_per_s": round(rate, 3), "images_per_s": round(rate * batch, 1)}
    if device.type == "cuda":
        out["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def time_inference(device: torch.device, lr_hw=(256, 256), scale: int = 4, precision: str = "bf16",
                   repeats: int = 20, warmup: int = 3, model_name: str = "awsrn-s") -> dict:
    """Images/s of ``model_name`` x``scale`` on one ``lr_hw`` LR input (batch 1), in ``precision``."""
    from .device import autocast
    from .models import build_model

    model = build_model(model_name, scale).to(device).eval()
    x = torch.rand(1, 3, *lr_hw, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad(), autocast(device, precision):
        for _ in range(warmup):
            model(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        _sync(device)
    seconds = (time.perf_counter() - t0) / repeats
    out = {"model": model_name, "scale": scale, "lr_hw": list(lr_hw), "precision": precision,
           "ms_per_image": round(1e3 * seconds, 3), "images_per_s": round(1 / seconds, 2)}
    if device.type == "cuda":
        out["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def time_data_prep(n: int = 8, hw=DIV2K_HW, scale: int = 4) -> dict:
    """Seconds per DIV2K-sized image to decode a PNG and make its LR (MATLAB bicubic), on the CPU."""
    from PIL import Image

    from .data.datasets import _load_cached, _lr_from_file

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, img in enumerate(_synthetic_images(n, hw, seed=1)):
            p = Path(tmp) / f"{i + 1:04d}.png"
            Image.fromarray(img).save(p, compress_level=6)
            paths.append(p)
        t0 = time.perf_counter()
        for p in paths:
            key = (str(p), p.stat().st_mtime)
            _load_cached(*key)
            _lr_from_file(key, scale)
        seconds = (time.perf_counter() - t0) / n
        _load_cached.cache_clear()
        _lr_from_file.cache_clear()
    return {"images": n, "hw": list(hw), "scale": scale, "s_per_image": round(seconds, 4),
            "threads": torch.get_num_threads()}


def run_smoke(timeout: float = 1800) -> dict:
    """``srlib reproduce --profile smoke`` in a fresh process (CUDA where there is one)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "srlib.cli", "reproduce", "--profile", "smoke", "--no-html"],
                          capture_output=True, text=True, timeout=timeout, cwd=project_root())
    return {"command": "srlib reproduce --profile smoke --no-html", "ok": proc.returncode == 0,
            "seconds": round(time.perf_counter() - t0, 1), "tail": (proc.stdout + proc.stderr)[-2000:]}


def run_check(device: str = "cuda", steps: int = 200, warmup: int = 20, other_steps: int = 50,
              batch: int = 16, lr_patch: int = 48, lr_hw=(256, 256), smoke: bool = True,
              prep_images: int = 8, prep_hw=DIV2K_HW, log=print) -> dict:
    """Everything above on ``device``; returns the record :func:`main` writes."""
    dev = torch.device(device)
    rec = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "info": device_info(dev)}
    log(f"[gpu-check] {describe(rec['info'])}")
    if smoke:
        log("[gpu-check] smoke profile end to end ...")
        rec["smoke"] = run_smoke()
        log(f"[gpu-check] smoke: {'ok' if rec['smoke']['ok'] else 'FAILED'} in {rec['smoke']['seconds']} s")
    kw = dict(device=dev, batch=batch, lr_patch=lr_patch)
    rec["train"] = time_training("awsrn-s", steps=steps, warmup=warmup, precision="bf16", **kw)
    rec["train_fp32"] = time_training("awsrn-s", steps=other_steps, warmup=warmup, precision="fp32", **kw)
    rec["train_hybrid"] = time_training("awsrn-s", steps=other_steps, warmup=warmup, hybrid=True, **kw)
    rec["train_models"] = {m: time_training(m, steps=other_steps, warmup=warmup, model_kwargs=k, **kw)
                           for m, k in OTHER_MODELS.items()}
    for t in (rec["train"], rec["train_fp32"], rec["train_hybrid"], *rec["train_models"].values()):
        log(f"[gpu-check] train {t['model']}{' hybrid' if t['hybrid'] else ''} x{t['scale']} {t['precision']}, "
            f"batch {t['batch']} of {t['lr_patch']}x{t['lr_patch']}: {t['steps_per_s']:.2f} it/s, "
            f"{t['images_per_s']:.0f} patches/s" + (f", peak {t['peak_memory_mb']:.0f} MiB" if "peak_memory_mb" in t
                                                     else ""))
    rec["inference"] = [time_inference(dev, lr_hw, precision=p) for p in ("bf16", "fp32")]
    for t in rec["inference"]:
        log(f"[gpu-check] inference awsrn-s x4 on {t['lr_hw'][0]}x{t['lr_hw'][1]} {t['precision']}: "
            f"{t['images_per_s']:.1f} images/s ({t['ms_per_image']:.2f} ms)"
            + (f", peak {t['peak_memory_mb']:.0f} MiB" if "peak_memory_mb" in t else ""))
    rec["data_prep"] = time_data_prep(prep_images, prep_hw)
    log(f"[gpu-check] DIV2K-sized image decode + LR x4: {rec['data_prep']['s_per_image']:.3f} s/image")
    if device == "cuda" or dev.type == "cuda":
        rec["estimate"] = estimate_minutes(rec)
    return rec


# ---- from a measurement to minutes ----------------------------------------------------------

def _load(check) -> dict:
    if isinstance(check, dict):
        return check
    path = Path(check)
    if not path.is_file():
        raise FileNotFoundError(f"no gpu-check results at {path}; run `make gpu-check` on the GPU box first")
    return json.loads(path.read_text())


def _costs(check: dict) -> dict:
    """Step cost of each model (and the hybrid step, fp32) relative to a bf16 AWSRN-S step."""
    from .profiles import GPU_ASSUMED_COSTS

    base = float(check["train"]["steps_per_s"])
    costs = dict(GPU_ASSUMED_COSTS, fp32=1.5)
    for m, t in check.get("train_models", {}).items():
        costs[m] = base / float(t["steps_per_s"])
    if "train_hybrid" in check:
        costs["hybrid"] = base / float(check["train_hybrid"]["steps_per_s"])
    if "train_fp32" in check:
        costs["fp32"] = base / float(check["train_fp32"]["steps_per_s"])
    return costs


def _model_cost(model: str, costs: dict) -> float:
    """The cost of ``model``: its own, else its family's (``awsrn-s-improved`` for any switch set)."""
    for key in sorted(costs, key=len, reverse=True):
        if model == key or model.startswith(key):
            return costs[key]
    return 1.0


def _is_hybrid(loss) -> bool:
    return isinstance(loss, dict) and any(k in loss for k in ("perceptual", "gan"))


def arm_units(config, model: str, costs: dict, batch: int = 16, lr_patch: int = 48, base_patch: int = 48) -> float:
    """AWSRN-S bf16 step equivalents of one arm: each phase's steps x its model's cost x its pixels
    per batch against 16 x 48 x 48 (a hybrid phase adds the hybrid step's cost less one step, fp32
    multiplies by the fp32 cost)."""
    units = 0.0
    for ph in config.phase_plan():
        c = ph.config
        patch = ph.lr_patch or base_patch
        pixels = (c.batch_size * patch ** 2) / (batch * lr_patch ** 2)
        step = _model_cost(model, costs) + (costs["hybrid"] - 1.0 if _is_hybrid(c.loss) else 0.0)
        if c.precision == "fp32":
            step *= costs["fp32"]
        units += ph.steps * step * pixels
    return units


def estimate_minutes(check, profile="gpu") -> dict:
    """Minutes per notebook of ``profile`` on the machine ``check`` measured (a gpu-check record
    or its JSON file): training from the profile's studies, plus :data:`OVERHEADS`, with each
    notebook's share beside. A rate timed at another batch or patch size is scaled by the pixels
    per batch, a preparation timed on smaller images by their pixels (:data:`DIV2K_HW`).
    Returns ``{"profile", "steps_per_s", "costs", "parts": {part: {...}}, "total", "share_total"}``."""
    from .profiles import get_profile
    from .studies import get_study

    check, p = _load(check), get_profile(profile)
    t = check["train"]  # a check timed at another batch or patch: its rate scaled by the pixels per batch
    pixels = t.get("batch", p.batch_size) * t.get("lr_patch", p.lr_patch) ** 2 / (p.batch_size * p.lr_patch ** 2)
    rate, costs = float(t["steps_per_s"]) * pixels, _costs(check)
    prep = check.get("data_prep", {})
    h, w = prep.get("hw", DIV2K_HW)
    prep_s = prep.get("s_per_image", 0.0) * (DIV2K_HW[0] * DIV2K_HW[1]) / (h * w)
    prep_min = prep_s * OVERHEADS["div2k_images"] / 60 if p.train_dataset == "DIV2K" else 0.0
    parts = {}
    for nb in ("01", "02", "03", "04", "05", "06", "07"):
        train = evals = 0.0
        scales = set()
        for name in NOTEBOOK_STUDIES.get(nb, ()):
            study = get_study(name, p)
            for arm in study.arms:
                cfg = study.config(arm)
                train += arm_units(cfg, arm.model, costs, p.batch_size, p.lr_patch, p.lr_patch) / rate / 60
                evals += OVERHEADS["eval_min_per_arm"] * (len(study.datasets) / 4 if study.datasets else 1)
                scales.add(arm.scale)
        minutes = train + evals + prep_min * len(scales) + OVERHEADS["notebook_min"][nb]
        parts[nb] = {"minutes": round(minutes, 1), "train_minutes": round(train, 1), "eval_minutes": round(evals, 1),
                     "data_prep_minutes": round(prep_min * len(scales), 1), "share": p.budget(nb).minutes}
    total = round(sum(v["minutes"] for v in parts.values()), 1)
    return {"profile": p.name, "steps_per_s": rate, "costs": {k: round(v, 2) for k, v in costs.items()},
            "parts": parts, "total": total, "share_total": sum(p.budget(nb).minutes or 0 for nb in parts)}


def assumed_check() -> dict:
    """A check record holding only the profile's assumptions (no machine measured)."""
    from .profiles import GPU_ASSUMED_PREP_S, GPU_ASSUMED_STEPS_PER_S

    return {"train": {"steps_per_s": GPU_ASSUMED_STEPS_PER_S}, "data_prep": {"s_per_image": GPU_ASSUMED_PREP_S},
            "assumed": True}


def format_estimate(est: dict) -> str:
    lines = [f"estimated minutes per notebook, profile {est['profile']}, at {est['steps_per_s']:.1f} AWSRN-S "
             f"steps/s (costs relative to it: {est['costs']}):",
             "| notebook | estimate | training | evaluation | data prep | share |", "|---|---|---|---|---|---|"]
    lines += [f"| {nb} | {v['minutes']} | {v['train_minutes']} | {v['eval_minutes']} | {v['data_prep_minutes']} "
              f"| {v['share']} |" for nb, v in est["parts"].items()]
    lines.append(f"| total | {est['total']} | | | | {est['share_total']} |")
    return "\n".join(lines)


# ---- the command --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srlib.gpucheck", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --allow-cpu: a test of the check)")
    ap.add_argument("--allow-cpu", action="store_true", help="run on the CPU (tiny settings; for the tests)")
    ap.add_argument("--steps", type=int, default=200, help="timed AWSRN-S steps (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first (default 20)")
    ap.add_argument("--other-steps", type=int, default=50, help="timed steps of the other models (default 50)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr-patch", type=int, default=48)
    ap.add_argument("--lr-size", type=int, default=256, help="LR side of the inference input (default 256)")
    ap.add_argument("--prep-images", type=int, default=8)
    ap.add_argument("--no-smoke", action="store_true", help="skip the smoke profile run")
    ap.add_argument("--out", default=None, help=f"output JSON (default {CHECK_FILE})")
    ap.add_argument("--estimate", metavar="JSON", help="only print the gpu profile's estimate from this file")
    args = ap.parse_args(argv)
    if args.estimate:
        print(format_estimate(estimate_minutes(args.estimate)))
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: CUDA is not available here (torch "
              f"{torch.__version__}, built for CUDA {torch.version.cuda}); nothing measured. Run it on the GPU "
              "box; `python -m srlib.gpucheck --device cpu --allow-cpu` only tests the check itself.",
              file=sys.stderr)
        return 3
    if not args.device.startswith("cuda") and not args.allow_cpu:
        print(f"gpu-check: --device {args.device} measures no GPU; add --allow-cpu to run the check's code "
              "on it anyway (a test, not a measurement)", file=sys.stderr)
        return 2
    rec = run_check(args.device, args.steps, args.warmup, args.other_steps, args.batch, args.lr_patch,
                    (args.lr_size, args.lr_size), smoke=not args.no_smoke, prep_images=args.prep_images,
                    prep_hw=DIV2K_HW if args.device.startswith("cuda") else (96, 128))
    if rec.get("smoke") and not rec["smoke"]["ok"]:
        print(f"gpu-check: the smoke profile failed on {args.device}:\n{rec['smoke']['tail']}", file=sys.stderr)
    out = Path(args.out) if args.out else project_root() / CHECK_FILE
    write_json(out, rec)
    if "estimate" in rec:
        print(format_estimate(rec["estimate"]))
    print(f"[gpu-check] wrote {out}")
    return 0 if not rec.get("smoke") or rec["smoke"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
