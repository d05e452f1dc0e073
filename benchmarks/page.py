"""The benchmark page ``benchmarks/README.md``: each figure beside its peer from the same run.

    make bench                                         # measures, writes benchmarks/README.md, prints it
    python benchmarks/page.py [--threads 2] [--out benchmarks/README.md] [--json m.json]
    python benchmarks/page.py --tiny --out /tmp/page.md   # seconds: every code path, numbers meaningless
    python benchmarks/page.py --render m.json          # re-render saved measurements, no timing

Five measurements, each a ratio to a peer timed in the same process run (absolute seconds only
beside the ratio, since they depend on the machine and its load):

1. the evaluation protocol (``bench_protocol.measure``) against BasicSR's numpy functions and a
   plain NumPy port, and against the PNG decode floor, on "the small table" (Set5, Set14, B100)
   and "the whole table" (+ Urban100), at x2/x3/x4;
2. AWSRN-S x4 inference on a 256x256 LR input (``bench_awsrn.measure_vs_super_image``) against
   super-image's ``AwsrnModel`` with the same weights, fp32 and bf16;
3. training steps per second of srlib's ``Trainer`` against a bare PyTorch loop over the same
   model, batch, patch size and optimiser (``bench_trainer.training_rates``);
4. the model figures of 2 and 3 as a percentage of the machine's measured GEMM and 3x3-conv
   ceilings (``bench_ceiling.measure``) in the same precision and on the same threads, from
   FLOPs counted by ``torch.utils.flop_counter``;
5. neighbour embedding and sparse coding (seed 002's classical baselines) per HR megapixel
   against the golden-era code, the version whose outputs ``tests/golden/classical`` holds
   (``bench_classical_speed.measure``: that commit's ``srlib/classical`` read with ``git show``).

:func:`measure_all` does the timing; :func:`render` turns its dict into markdown and does no
timing (``tests/test_bench_page.py`` checks it on hand-made numbers). The page is written
atomically (:func:`srlib.fileio.atomic_write_text`).

Readings chosen: model and ceiling times are the best of a few runs (background load only ever
slows a run down), the protocol one run per table (it takes seconds to a minute, and its
peers much longer); the Trainer's overhead is the median of paired chunk ratios
(``bench_trainer.py``). The training figures use the ``quick`` profile's patch and batch.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE / "README.md"
SMALL = ("Set5", "Set14", "B100")
WHOLE = SMALL + ("Urban100",)
PRECISIONS = ("fp32", "bf16")

# What `make bench` runs (under 10 minutes on 2 threads), and a reduced run that takes seconds.
# tables: name -> (datasets, keywords of bench_protocol.measure); the NumPy port times the small
# table only: on the whole one it alone takes about 5 minutes (277 s on one thread).
SETTINGS = {
    "full": dict(tables={"the small table": (SMALL, {}), "the whole table": (WHOLE, {"reference": False})},
                 protocol_repeats=2,
                 awsrn_size=256, awsrn_repeats=5, gemm_n=2048, conv_size=256, ceiling_repeats=5,
                 train=dict(model="awsrn-s", scale=4, batch=16, patch=32, chunk=6, rounds=3, warmup=2),
                 classical=dict(images=1, repeat=2, scale=2, profile="quick")),
    "tiny": dict(tables={"the small table": (("Set5",), {})}, protocol_repeats=1,
                 awsrn_size=32, awsrn_repeats=1, gemm_n=256, conv_size=32, ceiling_repeats=1,
                 train=dict(model="awsrn-s", scale=4, batch=2, patch=8, chunk=3, rounds=1, warmup=1),
                 classical=None),  # the golden-era NE and SC take a minute even on one image
}


# ------------------------------------------------------------------ arithmetic
def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def gflops(flops: float | None, seconds: float | None) -> float | None:
    """Achieved GFLOP/s of ``flops`` done in ``seconds``."""
    r = ratio(flops, seconds)
    return None if r is None else r / 1e9


def percent_of_ceiling(flops: float | None, seconds: float | None, ceiling_gflops: float | None) -> float | None:
    """Achieved GFLOP/s as a percentage of ``ceiling_gflops``."""
    r = ratio(gflops(flops, seconds), ceiling_gflops)
    return None if r is None else 100.0 * r


def _x(v: float | None, what: str = "") -> str:
    return "n/a" if v is None else f"**{v:.2f}x**{(' ' + what) if what else ''}"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}%"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} s" if v < 10 else f"{v:.1f} s"


def _e(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1e}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


# ------------------------------------------------------------------ rendering
def _header(h: dict) -> list[str]:
    load = lambda v: " / ".join(f"{x:.2f}" for x in v)  # noqa: E731
    lines = ["# Benchmarks", "",
             f"Written by `make bench` (`benchmarks/page.py`) on {h['date']}; do not edit by hand. Each figure "
             "is a ratio to its peer measured in the same run; absolute times stand only beside it, as "
             "they depend on the machine and its load.", ""]
    if h.get("setting") == "tiny":
        lines += ["**Reduced run (`--tiny`)**: shapes and repeats far too small for the numbers to mean "
                  "anything; it only exercises every code path.", ""]
    lines += _table(["CPU", "threads", "torch", "bf16", "load average 1/5/15 min (start -> end)", "run took"],
                    [[h["cpu"], str(h["threads"]), h["torch"], h["bf16_mode"],
                      f"{load(h['load_start'])} -> {load(h['load_end'])}", f"{h['seconds']:.0f} s"]])
    return lines + ["", "Precision: fp32 unless the row says bf16 (autocast; bf16 is "
                    f"{h['bf16_mode'].split(' ')[0]} on this CPU); the evaluation protocol in the precision its section gives.", ""]


def _ceiling(c: dict) -> list[str]:
    rows = [[p, f"{c[p]['gemm_gflops']:.0f}", f"{c[p]['conv_gflops']:.0f}"] for p in PRECISIONS if p in c]
    return ["## Machine ceiling", "",
            f"Best of a few runs on the same threads: GEMM is `torch.mm` of two {c['gemm_n']}x{c['gemm_n']} "
            f"matrices, conv is AWSRN's dominant layer ({c['conv_shape']}, bf16 in channels_last). "
            "The percentages below divide a model's achieved GFLOP/s by these.", "",
            *_table(["precision", "GEMM GFLOP/s", "conv GFLOP/s"], rows), ""]


def _protocol(p: dict) -> list[str]:
    lines = ["## 1. The evaluation protocol vs BasicSR's numpy functions", "",
             "Bicubic x2/x3/x4 (LR by MATLAB-compatible `imresize`, PSNR/SSIM on Y, border shaved): srlib's "
             "`evaluate` against BasicSR's own numpy `imresize` + `calculate_psnr/ssim` and against "
             "`bench_protocol.py`'s plain NumPy port, and against the floor of decoding the PNGs; and srlib's "
             "fused kernels (`srlib.kernels`, numba) against its own torch code on the same table (the "
             "before and after of issue 10). "
             "A ratio above 1 means srlib is faster; the decode ratio is how many decode times srlib takes. "
             "Differences: per-image maxima against the NumPy port (same protocol) and against BasicSR "
             "(which keeps Y unrounded, so compared with srlib's `round_y=False`).", ""]
    if "error" in p:
        return lines + [f"Not measured: {p['error']}", ""]
    rows, whys, notes = [], set(), set()
    for name, r in p.items():
        if "error" in r:
            whys.add(f"{name}: {r['error']}")
            rows.append([f"{name} ({', '.join(r['datasets'])})", "n/a", "n/a", "n/a", "n/a", "n/a", "not measured", "", ""])
            continue
        notes |= {f"{k}: {r[k]}" for k in ("basicsr_version", "precision", "kernels") if r.get(k)}
        if r.get("torch_max_abs_psnr_diff") is not None:
            notes.add(f"kernels vs torch code: max |dPSNR| {_e(r['torch_max_abs_psnr_diff'])} dB, "
                      f"|dSSIM| {_e(r['torch_max_abs_ssim_diff'])}")
        if r.get("repeats"):
            notes.add(f"best of {r['repeats']} run(s)")
        why = r.get("basicsr_why")
        if r.get("basicsr_s") is None and why:
            whys.add(f"BasicSR, {why}")
        rows.append([f"{name} ({', '.join(r['datasets'])})", str(r["n_evaluations"]),
                     _x(ratio(r.get("basicsr_s"), r["srlib_s"]), "faster"),
                     _x(ratio(r.get("numpy_ref_s"), r["srlib_s"]), "faster"),
                     _x(ratio(r["srlib_s"], r.get("decode_s")), "the floor"),
                     _x(ratio(r.get("srlib_torch_s"), r["srlib_s"]), "faster"),
                     " / ".join(_s(r.get(k)) for k in ("srlib_s", "basicsr_s", "numpy_ref_s", "decode_s",
                                                        "srlib_torch_s")),
                     " / ".join(_e(r.get(k)) for k in ("max_abs_psnr_diff", "max_abs_ssim_diff")),
                     " / ".join(_e(r.get(k)) for k in ("basicsr_max_abs_psnr_diff", "basicsr_max_abs_ssim_diff"))])
    first = next((r for r in p.values() if r.get("first_set5_s") is not None), None)  # the process's first
    if first is not None:
        notes.add(f"not in the times: a process's first evaluation loads numba's cached kernels "
                  f"(srlib's Set5 table took {_s(first['first_set5_s'])} the first time, "
                  f"{_s(first['second_set5_s'])} the second)")
    lines += _table(["table", "evaluations", "srlib vs BasicSR", "srlib vs NumPy port", "srlib vs decode",
                     "kernels vs srlib's torch code", "srlib / BasicSR / NumPy / decode / torch code",
                     "diff vs NumPy (dB / SSIM)", "diff vs BasicSR (dB / SSIM)"], rows)
    whys |= {f"the NumPy port on {name} (it takes minutes there; its agreement shows on the other table)"
             for name, r in p.items() if "error" not in r and r.get("numpy_ref_s") is None}
    lines += [""] + [f"Not timed: {w}" for w in sorted(whys)] + ([""] if whys else [])
    lines += ["; ".join(sorted(notes)) + ".", ""] if notes else []
    return lines + ["Not given as a share of the GEMM ceiling: resampling, colour conversion and SSIM "
                    "filtering do few FLOPs per byte, so their floor is the decode time above.", ""]


def _inference(r: dict, c: dict) -> list[str]:
    lines = [f"## 2. {r['model'].upper()} x{r['scale']} inference vs {r['peer']}", "",
             f"One {r['size']}x{r['size']} LR input -> {r['size'] * r['scale']}x{r['size'] * r['scale']}. srlib: "
             "`inference.prepare` (weight norm folded, AWMS merged into one 9x9 conv) + `inference.forward` "
             "(`inference_mode`; channels_last in bf16). super-image: `AwsrnModel` as shipped (weight-norm "
             f"hooks, `no_grad`; autocast in bf16). Weights: {r['weights']}"
             + (f"; outputs differ by at most {r['max_abs_diff_levels']:.1e} of an 8-bit level (fp32)."
                if r.get("max_abs_diff_levels") is not None else ".")
             + f" FLOPs per pass: {r['flops_srlib'] / 1e9:.1f} G run by srlib, {r['flops_peer'] / 1e9:.1f} G by "
             "super-image (the unmerged AWMS); each model's share of the ceiling uses its own.", ""]
    if r.get("peer_why"):
        lines += [f"super-image not timed: {r['peer_why']}", ""]
    rows = []
    for p in PRECISIONS:
        if p not in r:
            continue
        t, ceil = r[p], c.get(p, {})
        rows.append([p if p == "fp32" else f"bf16 ({r['bf16_mode']})",
                     _x(ratio(t.get("peer_s"), t["srlib_s"]), "faster"),
                     _pct(percent_of_ceiling(r["flops_srlib"], t["srlib_s"], ceil.get("gemm_gflops"))),
                     _pct(percent_of_ceiling(r["flops_srlib"], t["srlib_s"], ceil.get("conv_gflops"))),
                     _pct(percent_of_ceiling(r["flops_peer"], t.get("peer_s"), ceil.get("gemm_gflops"))),
                     f"{_s(t['srlib_s'])} / {_s(t.get('peer_s'))}"])
    lines += _table(["precision", "srlib vs super-image", "srlib % of GEMM", "srlib % of conv",
                     "super-image % of GEMM", "srlib / super-image per pass"], rows) + [""]
    effective = [f"{_pct(percent_of_ceiling(r['flops_peer'], r[p]['srlib_s'], c.get(p, {}).get('gemm_gflops')))} "
                 f"in {p}" for p in PRECISIONS if p in r]
    return lines + ["Counted with the unmerged architecture's FLOPs (the work the paper's model does for "
                    f"the same output), srlib's pass reaches {' and '.join(effective)} of the GEMM ceiling.", ""]


def _training(r: dict, c: dict) -> list[str]:
    lines = ["## 3. Training step rate vs a bare loop", "",
             f"{r['model'].upper()} x{r['scale']}, batch {r['batch']} of {r['patch']}x{r['patch']} LR patches, "
             "L1, Adam, StepLR: srlib's `Trainer` (logging every 100 steps, checkpoint every 1000) against the "
             "textbook loop (`bench_trainer.BareLoop`: DataLoader, autocast, backward, step) on the same model, "
             "data and precision, run alternately in chunks. A ratio below 1 is the Trainer's overhead. "
             f"FLOPs per step (forward + backward): {r['flops_step'] / 1e9:.1f} G.", ""]
    rows = []
    for p in PRECISIONS:
        if p not in r:
            continue
        t, ceil = r[p], c.get(p, {})
        per_step = lambda rate: None if not rate else 1.0 / rate  # noqa: E731
        rows.append([p if p == "fp32" else f"bf16 ({r.get('bf16_mode', '?')})",
                     _x(ratio(t["trainer"], t["bare"])) + f" (overhead {t['overhead']:+.1f}%)",
                     _pct(percent_of_ceiling(r["flops_step"], per_step(t["trainer"]), ceil.get("gemm_gflops"))),
                     _pct(percent_of_ceiling(r["flops_step"], per_step(t["bare"]), ceil.get("gemm_gflops"))),
                     _pct(percent_of_ceiling(r["flops_step"], per_step(t["trainer"]), ceil.get("conv_gflops"))),
                     f"{t['trainer']:.2f} / {t['bare']:.2f}", "yes" if t.get("channels_last") else "no"])
    return lines + _table(["precision", "Trainer vs bare loop (steps/s)", "Trainer % of GEMM", "bare % of GEMM",
                           "Trainer % of conv", "Trainer / bare steps/s", "channels_last"], rows) + [""]


def _classical(r: dict) -> list[str]:
    lines = ["## 4. Neighbour embedding and sparse coding vs the golden-era code", "",
             "Seed 002's classical baselines (notebook 06) on the first Urban100 image(s), seconds per HR "
             "megapixel, today's `srlib.classical` against the version whose outputs `tests/golden/classical` "
             "holds (the code before any speed change, read from git), alternately in one process, the same "
             "cached dictionaries. NE: the exact block search over k-d ordered queries (`srlib.classical.knn`) "
             "and one-pass LLE (`srlib.kernels.lle_combine`) against scikit-learn's brute force and batched "
             "torch LLE; SC: FISTA over the nonzero codes (`srlib.kernels.fista`) against dense `addmm`. "
             "The output difference is the largest over all pixels, in 8-bit levels.", ""]
    if r is None or "error" in r:
        why = "reduced run (`--tiny`)" if r is None else r["error"]
        return lines + [f"Not measured: {why}", ""]
    rows = []
    for method, name in (("ne", "NE+LLE"), ("sc", "ScSR")):
        t = r.get(method)
        if t is None:
            continue
        if "error" in t:
            rows.append([name, "n/a", "not measured: " + t["error"], ""])
            continue
        rows.append([name, _x(ratio(t["before_s_per_mp"], t["after_s_per_mp"]), "faster"),
                     f"{t['before_s_per_mp']:.1f} / {t['after_s_per_mp']:.1f}", f"{t['max_diff_levels']:.1e}"])
    return lines + _table(["method", "today vs golden-era", "golden-era / today (s per HR MP)",
                           "largest output difference (levels)"], rows) + [
        "", f"Urban100 x{r['scale']}, {r['images']} image(s), best of {r['repeat']}, reference commit "
        f"`{r['reference']}`, profile `{r['profile']}`. The PSNR of both versions on Set5, Set14 and Urban100 "
        "at x2/x3/x4: `python benchmarks/bench_classical_speed.py` (without `--time-only`).", ""]


def render(m: dict) -> str:
    """The page (markdown) for the measurements ``m`` of :func:`measure_all`; no timing."""
    c = m.get("ceiling", {})
    lines = _header(m["header"]) + _ceiling(c)
    if "protocol" in m:
        lines += _protocol(m["protocol"])
    if "inference" in m:
        lines += _inference(m["inference"], c)
    if "training" in m:
        lines += _training(m["training"], c)
    if "classical" in m:
        lines += _classical(m["classical"])
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------ measuring
def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def bf16_mode() -> str:
    """'native (AMX-BF16)' / 'native (AVX512-BF16)' / 'emulated'."""
    import torch

    from srlib.device import cpu_supports_bf16

    if not cpu_supports_bf16():
        return "emulated"
    try:
        caps = torch._C._cpu._get_cpu_capability()
        return "native (AMX-BF16)" if caps.get("amx_bf16") else "native (AVX512-BF16)"
    except Exception:
        return "native"


def _protocol_measure(tables: dict, threads: int, repeats: int) -> dict:
    try:
        from bench_protocol import measure
    except ImportError as e:
        return {"error": f"bench_protocol.measure is missing ({e})"}
    out = {}
    for name, (ds, kwargs) in tables.items():
        try:
            out[name] = {"datasets": list(ds), **measure(list(ds), threads, repeats, **kwargs)}
        except Exception as e:  # a missing data set must not cost the rest of the page
            out[name] = {"datasets": list(ds), "error": f"{type(e).__name__}: {e}"}
    return out


def _training_measure(train: dict) -> dict:
    from bench_trainer import step_flops, training_rates

    out = {**{k: train[k] for k in ("model", "scale", "batch", "patch")}, "bf16_mode": bf16_mode().split(" ")[0],
           "flops_step": step_flops(train["model"], train["scale"], train["batch"], train["patch"])}
    for p in PRECISIONS:
        out[p] = training_rates(precision=p, **train)
    return out


def _classical_measure(cfg: dict | None, threads: int) -> dict | None:
    if cfg is None:
        return None
    try:
        from bench_classical_speed import measure

        return measure(threads, **cfg)
    except Exception as e:  # no git history, no data: say so on the page
        return {"error": f"{type(e).__name__}: {e}"}


def measure_all(setting: str = "full", threads: int = 2, log=print) -> dict:
    """Every measurement of the page, in one process, ``threads`` intra-op threads."""
    import torch

    import bench_awsrn
    import bench_ceiling

    cfg = SETTINGS[setting]
    torch.set_num_threads(threads)
    t0, load_start = time.perf_counter(), os.getloadavg()
    m = {}
    log("machine ceiling ...")
    m["ceiling"] = bench_ceiling.measure(PRECISIONS, cfg["gemm_n"], cfg["conv_size"], cfg["ceiling_repeats"])
    # before the protocol: the NE timing came out 3x slower after it on one page run (20.2 s/MP against
    # 6.7 standalone; not reproduced after the training or inference parts alone)
    log("neighbour embedding and sparse coding vs the golden-era code ...")
    m["classical"] = _classical_measure(cfg["classical"], threads)
    torch.set_num_threads(threads)
    log("evaluation protocol ...")
    m["protocol"] = _protocol_measure(cfg["tables"], threads, cfg["protocol_repeats"])
    torch.set_num_threads(threads)  # in case the protocol benchmark changed it
    log("AWSRN-S inference vs super-image ...")
    m["inference"] = bench_awsrn.measure_vs_super_image(cfg["awsrn_size"], 4, PRECISIONS, cfg["awsrn_repeats"])
    log("training step rate vs a bare loop ...")
    m["training"] = _training_measure({**cfg["train"], "threads": threads})
    m["header"] = {"cpu": cpu_model(), "threads": threads, "torch": torch.__version__, "bf16_mode": bf16_mode(),
                   "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                   "load_start": list(load_start), "load_end": list(os.getloadavg()),
                   "seconds": time.perf_counter() - t0, "setting": setting}
    return m


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true",
                    help="reduced shapes and repeats (seconds); writes only with an explicit --out")
    ap.add_argument("--out", default=None, help="page to write (default benchmarks/README.md; for a --tiny run: none)")
    ap.add_argument("--json", default=None, help="also save the raw measurements here")
    ap.add_argument("--render", default=None, metavar="JSON", help="render saved measurements; no timing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))  # the bench_*.py files beside this one
    if args.render:
        m = json.loads(Path(args.render).read_text())
    else:
        m = measure_all("tiny" if args.tiny else "full", args.threads, log=lambda s: print(s, file=sys.stderr))
    page = render(m)
    from srlib.fileio import atomic_write_text

    out = args.out or (PAGE if m["header"].get("setting") == "full" else None)  # a tiny run never replaces it
    if out:
        atomic_write_text(out, page)
    if args.json:
        atomic_write_text(args.json, json.dumps(m, indent=1) + "\n")
    print(page, end="")
    if out:
        print(f"\n(written to {out})", file=sys.stderr)


if __name__ == "__main__":
    main()
