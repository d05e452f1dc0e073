"""Model complexity: parameters, Multi-Adds, peak memory and forward time of one pass.

Multi-Adds follow the convention of the lightweight-SR papers (CARN; AWSRN's comparison tables):
multiply-accumulates of one forward pass that produces a 1280x720 output, i.e. at an LR input
of ``out_hw / scale``. They are counted with ``torch.utils.flop_counter.FlopCounterMode``
(FLOPs = 2 x MACs of convolutions and matrix products) and halved. FlopCounterMode counts no
bias additions, activations, pixel shuffles, mean shifts or element-wise adaptive scalars;
with that convention AWSRN-S x4 gives 33.74 G and AWSRN x4 91.07 G, the published 33.7 G and
91.1 G.
"""
from __future__ import annotations

import copy
import ctypes
import gc
import statistics
import threading
import time

import psutil
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .models import count_parameters


def count_params(model: nn.Module) -> int:
    """Learnable parameters (weight-norm gains and adaptive scalars included)."""
    return count_parameters(model)


def _lr_size(out_hw: tuple[int, int], scale: int) -> tuple[int, int]:
    return max(1, out_hw[0] // scale), max(1, out_hw[1] // scale)


def multi_adds(model: nn.Module, scale: int, out_hw: tuple[int, int] = (720, 1280)) -> float:
    """Multi-Adds (FLOPs / 2) of one forward pass giving an ``out_hw`` output at ``scale``.

    Counted on a copy of the model on the ``meta`` device (shapes only, instant, exact). When
    ``out_hw`` is not divisible by ``scale`` (1280 / 3), the count at the floored LR size is
    scaled by the exact area ratio ``(H W / s^2) / (h w)``, which is exact for fully
    convolutional networks (Multi-Adds proportional to pixels).
    """
    h, w = _lr_size(out_hw, scale)
    meta = copy.deepcopy(model).to("meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty(1, 3, h, w, device="meta"))
    area = out_hw[0] * out_hw[1] / scale**2 / (h * w)
    return counter.get_total_flops() / 2 * area


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _status_bytes(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def _trim_heap() -> None:
    """Return freed heap memory to the kernel (glibc ``malloc_trim``); a no-op elsewhere."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _hwm_peak_during(fn) -> int:
    """Peak RSS above the start while ``fn()`` runs, from the kernel's high-water mark (Linux).

    Writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM`` to the current RSS (Linux >= 4.0,
    proc(5)); the kernel then tracks the peak itself, so no allocation is missed between samples.
    Before the reset, glibc's ``malloc_trim(0)`` hands freed heap memory back to the kernel, so
    memory an earlier pass left in the allocator is counted again rather than silently reused
    (measured: AWSRN-S x4 on a 192x256 input read 123 MiB first and 31 MiB after an IMDN pass
    without the trim; 128 and 140 MiB with it).
    """
    _trim_heap()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_bytes("VmRSS")
    fn()
    return max(0, _status_bytes("VmHWM") - base)


def _sampled_peak_during(fn) -> int:
    """Fallback where clear_refs is unavailable: RSS sampled by a thread every ~1 ms (psutil)."""
    proc = psutil.Process()
    base = peak = proc.memory_info().rss
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(0, max(peak, proc.memory_info().rss) - base)


def _rss_peak_during(fn) -> int:
    """Peak process RSS (bytes) above the starting RSS while ``fn()`` runs."""
    try:
        return _hwm_peak_during(fn)
    except OSError:
        return _sampled_peak_during(fn)


@torch.no_grad()
def peak_memory(model: nn.Module, lr_hw: tuple[int, int]) -> int:
    """Extra memory (bytes) of one inference forward pass on a (1, 3, *lr_hw) input.

    CUDA: ``torch.cuda.max_memory_allocated`` above the memory allocated before the pass (tensor
    memory only; the input is counted). CPU: the peak of the process RSS above its starting value,
    from the kernel's high-water mark (``VmHWM`` after a ``clear_refs`` reset; a 1 ms psutil
    sampler where that is unavailable), after freed heap memory is handed back to the kernel;
    tracemalloc does not see torch's allocator. The CPU
    number is resident memory (pages touched), not tensor bytes: it includes the allocator's and
    oneDNN's scratch and can differ by ~10% between repeated calls.
    """
    device = _device(model)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        model(torch.rand(1, 3, *lr_hw, device=device))
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    return _rss_peak_during(lambda: model(torch.rand(1, 3, *lr_hw, device=device)))


@torch.no_grad()
def time_forward(model: nn.Module, lr_hw: tuple[int, int], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock seconds of one inference forward pass on a (1, 3, *lr_hw) input."""
    device = _device(model)
    x = torch.rand(1, 3, *lr_hw, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model(x)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
