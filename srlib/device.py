"""Device, mixed precision and memory format choices, shared by training, evaluation and inference.

CPU bf16 autocast pays off only on CPUs with native bf16 (AMX-BF16 or AVX512-BF16) and with
channels_last; elsewhere oneDNN emulates bf16 and fp32 is faster, so ``'auto'`` keeps fp32.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when the CPU has AMX-BF16 or AVX512-BF16 (native bf16 matmul/conv)."""
    try:  # torch's own cpuinfo query (private, present in torch >= 2.3)
        caps = torch._C._cpu._get_cpu_capability()
        return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))
    except Exception:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``'auto'`` -> ``cuda:<local_rank>`` when available, else ``cpu``."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"TrainConfig.device={name!r} but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device("cuda", local_rank) if device.type == "cuda" and device.index is None else device


def resolve_precision(precision: str, device: torch.device) -> str:
    """Concrete ``'fp32' | 'bf16' | 'fp16'`` for ``device``."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision 'fp16' needs CUDA; on CPU use 'bf16' or 'fp32'")
    return precision


def resolve_channels_last(channels_last, precision: str) -> bool:
    """``'auto'`` -> channels_last exactly when training in reduced precision."""
    return precision != "fp32" if channels_last == "auto" else bool(channels_last)


def autocast(device: torch.device, precision: str):
    """Autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


@contextlib.contextmanager
def exact_fp32():
    """Inside: CUDA matrix products and convolutions in true fp32, not TF32.

    PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa) on Ampere and later GPUs by
    default; evaluation against published rows and the validation that picks ``best.pt`` stay
    fp32 (DESIGN.md), so they run inside this. No effect on a CPU. The old settings come back after.
    """
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul
