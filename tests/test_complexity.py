"""Complexity measures: parameters, Multi-Adds (paper convention), peak memory, forward time.

Multi-Adds run on the meta device (shapes only), so even the 1280x720 counts take milliseconds;
the first FlopCounterMode use in a process costs a few seconds of imports (torch._dynamo).
"""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from srlib.complexity import count_params, multi_adds, peak_memory, time_forward
from srlib.models import build_model
from srlib.reference import published_complexity

HD = (720, 1280)  # the papers' output size for Multi-Adds


def test_single_conv_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)  # 8 filters of 3x3x3 taps at every one of 10x12 pixels
    assert count_params(conv) == 8 * 3 * 3 * 3 + 8
    assert multi_adds(conv, scale=1, out_hw=(10, 12)) == 10 * 12 * 8 * 27
    upsampler = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))  # LR 10x12
    assert multi_adds(upsampler, scale=2, out_hw=(20, 24)) == 10 * 12 * 12 * 27  # shuffle is free


def test_non_divisible_output_scales_by_area():
    conv = nn.Conv2d(3, 4, 1)  # 12 MACs per LR pixel; 1280x720 / 3^2 LR pixels (not an integer grid)
    assert multi_adds(conv, scale=3) == pytest.approx(12 * 1280 * 720 / 9, rel=1e-12)


PUBLISHED_MULTI_ADDS = published_complexity().dropna(subset=["multi_adds_G"])


def test_published_multi_adds_are_the_two_x4_values():
    assert sorted(zip(PUBLISHED_MULTI_ADDS.model, PUBLISHED_MULTI_ADDS.scale)) == [("awsrn", 4), ("awsrn-s", 4)]


@pytest.mark.parametrize("name,scale,published_G", [
    (r.model, r.scale, r.multi_adds_G) for r in PUBLISHED_MULTI_ADDS.itertuples()])
def test_awsrn_multi_adds_match_the_paper(name, scale, published_G):
    # Counted on the meta device at the full 320x180 LR input: instant, no arithmetic done.
    assert multi_adds(build_model(name, scale), scale=scale) == pytest.approx(published_G * 1e9, rel=0.02)


@pytest.mark.parametrize("name,cfg", [("awsrn-sd", (16, 128, 1, 8)), ("awsrn-m", (32, 128, 3, 4))])
@pytest.mark.parametrize("scale", [2, 3])
def test_awsrn_multi_adds_equal_the_closed_form(name, cfg, scale):
    nf, bf, n_lfb, n_awru = cfg
    out = 3 * scale**2
    per_lr_pixel = (
        9 * 3 * nf  # head
        + n_lfb * (n_awru * 2 * 9 * nf * bf + 9 * n_awru * nf * nf)  # AWRUs + LRFU
        + nf * out * (9 + 25 + 49 + 81)  # AWMS branches
        + 9 * 3 * out  # global skip
    )
    expected = per_lr_pixel * HD[0] * HD[1] / scale**2
    assert multi_adds(build_model(name, scale), scale=scale) == pytest.approx(expected, rel=1e-9)


def test_multi_adds_leave_the_model_usable():
    model = build_model("awsrn-s", 2)
    multi_adds(model, scale=2, out_hw=(16, 16))
    assert next(model.parameters()).device.type == "cpu"
    assert model(torch.rand(1, 3, 4, 4)).shape == (1, 3, 8, 8)


class _Holds(nn.Module):
    """Allocates (and touches) ``mib`` MiB and holds it for ``seconds`` during forward."""

    def __init__(self, mib=64, seconds=0.05):
        super().__init__()
        self.n, self.seconds = mib * 2**20 // 4, seconds
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        buf = torch.ones(self.n)
        time.sleep(self.seconds)
        return x + buf[:1]


def test_peak_memory_sees_a_large_temporary():
    for _ in range(3):  # the same temporary, seen again on each call (not cached by the allocator)
        assert peak_memory(_Holds(64, seconds=0), (8, 8)) >= 48 * 2**20
    assert isinstance(peak_memory(nn.Conv2d(3, 3, 3, padding=1), (8, 8)), int)


def test_time_forward_is_a_median_of_seconds():
    assert time_forward(_Holds(1, seconds=0.01), (4, 4), repeats=3, warmup=1) >= 0.01
    assert 0 < time_forward(nn.Conv2d(3, 3, 3, padding=1), (16, 16), repeats=3, warmup=1) < 1


def test_peak_memory_counts_memory_an_earlier_model_left_in_the_allocator():
    # measured without the heap trim: 39.7 MiB, then 0.0 MiB after an IMDN pass (the pages reused)
    a, b = build_model("awsrn-s", 4).eval(), build_model("imdn", 4).eval()
    first = peak_memory(a, (96, 128))
    peak_memory(b, (96, 128))
    again = peak_memory(a, (96, 128))
    assert first > 16 * 2**20 and again > first / 2, (first, again)
