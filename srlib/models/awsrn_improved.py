"""Improved AWSRN (Dong et al. 2025, "Research on the Improvement of Image Super Resolution
Reconstruction Algorithm Based on AWSRN Model", IJANMC, doi 10.2478/ijanmc-2025-0015; seed 000).

:class:`ImprovedAWSRN` is :class:`~srlib.models.awsrn.AWSRN` (same configuration arguments,
same module and state-dict names) plus five switches, one per improvement of the paper, all on
by default:

- ``gap_awru``: global-context AWRU (Eq. 1-2): the AWRU's two scalars become per-channel,
  input-dependent weights from global average pooling and a small bottleneck
  (:class:`GlobalContextAWRU`).
- ``lrfu_fusion``: LRFU with focus weighting and hierarchical integration (:class:`FocusLRFU`).
- ``awms_plus``: AWMS with two dilated depthwise-separable branches (receptive fields 13 and
  17) beside the 3/5/7/9 convs and input-dependent branch weights (:class:`AWMSPlus`).
- ``dsconv_head``: depthwise-separable feature extraction with attention scores that re-weight
  the features (Eq. 3-6, :class:`DSAttentionHead`).
- ``nonlocal_ca``: feature fusion by long-range structural recurrence (a non-local block,
  embedded Gaussian, keys max-pooled to a fixed grid) and channel dependence (channel
  attention) (Eq. 7-12, :class:`NonLocalCA`).

All switches off *is* AWSRN: the same modules, keys, parameter count and output. Every switch
is **function-preserving**: with a trained AWSRN's weights loaded by key (e.g.
:func:`srlib.train.recipes.load_init_checkpoint`) and the new parameters at their
initialisation, the model computes exactly what the AWSRN computed, whatever its trained
scalars are. Each new part starts as a pass-through: a gate ``2 sigmoid(z)`` whose last layer
is zero (so it starts at 1), a softmax over ``n`` branches multiplied by ``n`` (starts at 1),
a residual branch whose last layer is zero, or a new AWMS branch whose adaptive weight is 0.
A zero-initialised last layer gives the layers before it zero gradient at the first step; they
start learning from the second step on, once the last layer has moved (the tests check both).

Readings chosen (the paper's equations (1)-(12) were lost in extraction; its prose names the
modules, not their sizes, and cites no work for them, so each reading follows the standard
module the prose describes):

- Eq. 1 (GAP): ``g = mean_{H,W}(x)`` of the AWRU's input, per channel, as in SE (Hu et al.
  2018, Eq. 2), which "global context aware weight learning" describes.
- Eq. 2 (weights from the context): an SE bottleneck ``C -> C/4 -> ReLU -> 2C`` gives ``z_res,
  z_x``; ``w_res = l_res * 2 sigmoid(z_res)``, ``w_x = l_x * 2 sigmoid(z_x)``, per channel, and
  ``y = w_res * body(x) + w_x * x``. The paper's "weights" read as the AWRU's two weights made
  input-dependent; keeping AWSRN's scalars ``l`` as factors lets the unit start as the trained
  AWRU (a bare sigmoid cannot give ``l = 1.3``), and ``2 sigmoid`` in (0, 2) lets the context
  raise or lower each weight. Reduction 4 (SE's 16 would leave 2 channels of 32).
- LRFU (no equation): "focus weighting" is selective-kernel attention (SKNet, Li et al. 2019,
  Sec. 3.1): ``s = mean_{H,W}(sum_i f_i)``, a bottleneck ``C -> C/4 -> ReLU -> n C``, softmax
  over the ``n`` AWRU outputs per channel; each output is scaled by ``n a_i`` (1 at the start, so
  the 3x3 fusion conv sees what it saw in AWSRN). "Hierarchical integration" is a progressive
  fusion (ESPNet's hierarchical feature fusion, Mehta et al. 2018; the issue's "fused
  progressively"): ``h_1 = u_1``, ``h_k = lrelu(conv1x1([h_{k-1}, u_k]))``, the last step
  linear and zero-initialised; ``h_n`` is *added* to the concat + 3x3 fusion rather than
  replacing it, since replacing it cannot start from the trained LRFU.
- AWMS (no equation): "richer scale information ... more efficient feature extraction" reads as
  large receptive fields at low cost: two depthwise-separable branches (depthwise 5x5, dilation
  3 and 4, receptive fields 13 and 17; MobileNet's factorisation plus dilation, Yu & Koltun
  2016) beside 3/5/7/9, each 2-4% of the 9x9 branch's Multi-Adds. Branch weights become
  input-dependent: ``w_k(x) = w_k * 2 sigmoid(gate_k(relu(W mean_{H,W} x)))``, one sigmoid per
  branch (not a softmax), so that dropping a branch leaves the others' weights unchanged and
  pruning stays exact. New branches start with ``w_k = 0``. Pruning ranks branches by their
  mean effective weight over given (validation) images, as the paper's pruning ranks AWSRN's
  scalars.
- Eq. 3 (depthwise conv): a per-channel 5x5 conv of the head's features ("independent spatial
  filtering per channel"); Eq. 4 (pointwise): a 1x1 conv mixing channels ("linear channel
  combination"), MobileNet (Howard et al. 2017); no activation between (the attention follows).
  The prose says "input feature map", so it filters the head conv's output, not the 3-channel
  image (a depthwise-separable conv of RGB would be a restricted 3x3 conv, nothing new beside
  the head conv).
- Eq. 5 (importance scores): ``A = sigmoid(conv1x1(P))``, one score per pixel and channel
  (PAN's pixel attention, Zhao et al. 2020); Eq. 6 (weighted features): ``P * A``. The result
  is added to the head conv's output (a residual beside it, its pointwise conv zero-initialised).
- Eq. 7-10 (long-range structural recurrence): the embedded-Gaussian non-local block (Wang et
  al. 2018, Eq. 1-3, 6): ``theta, phi, g`` 1x1 convs to ``C/2``, ``y = softmax(theta^T phi) g``
  (no ``1/sqrt(d)``), ``z = x + W y`` with ``W`` zero-initialised. Bounded: ``phi`` and ``g`` are
  max-pooled (Wang et al.'s subsampling) to at most a 16x16 grid, so every query sees the whole
  image through <= 256 keys, and queries are processed in chunks of 4096; cost is linear in
  the pixels (:func:`nonlocal_cost`). Windows were the other option; they lose the long range.
- Eq. 11-12 (channel dependence): RCAN's channel attention (Zhang et al. 2018, Sec. 3.4)
  ``s = 2 sigmoid(W_2 relu(W_1 mean_{H,W}(F)))``, ``F * s`` channel-wise, reduction 4,
  ``W_2`` zero-initialised so ``s`` starts at 1. Order: non-local, then channel attention,
  between the LFBs (and BAM, if on) and AWMS ("feature fusion stage").

Other choices: the new convs are plain (no weight norm), as in the modules they follow;
``fuse()`` exists only with every switch off (the input-dependent weights cannot be folded).

New state-dict keys (all other keys are AWSRN's; ``i`` LFB, ``j`` AWRU, ``k`` AWMS branch):

======================  ============================================  ==========================
switch                  key prefix                                    what
======================  ============================================  ==========================
``gap_awru``            ``lfbs.i.awrus.j.context.{0,2}``              bottleneck C->C/4->2C
``lrfu_fusion``         ``lfbs.i.lrfu.focus.{0,2}``                   bottleneck C->C/4->nC
``lrfu_fusion``         ``lfbs.i.lrfu.hier.{0..n-2}``                 progressive 1x1 2C->C
``awms_plus``           ``awms.convs.{dw13,dw17}.{depthwise,pointwise}``  dilated DS branches
``awms_plus``           ``awms.weights.{dw13,dw17}.scale``            their weights (start 0)
``awms_plus``           ``awms.squeeze.0``, ``awms.gates.k``          branch gate C->C/4->1
``dsconv_head``         ``head_ds.dsconv.{depthwise,pointwise}``      Eq. 3-4
``dsconv_head``         ``head_ds.attention.conv``                    Eq. 5 scores
``nonlocal_ca``         ``fusion.nl.{theta,phi,g,W}``                 Eq. 7-10
``nonlocal_ca``         ``fusion.ca.conv_du.{0,2}``                   Eq. 11-12
======================  ============================================  ==========================
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .awsrn import AWMS, AWRU, AWSRN, LFB, LRFU, choose_dropped
from .blocks import (
    DIV2K_RGB_MEAN,
    ChannelAttention,
    DepthwiseSeparableConv,
    NonLocalBlock,
    PixelAttention,
    Scale,
    avg_pool,
    lrelu,
)

SWITCHES = ("gap_awru", "lrfu_fusion", "awms_plus", "dsconv_head", "nonlocal_ca")
REDUCTION = 4  # bottleneck ratio of every new gate
AWMS_EXTRA = {"dw13": (5, 3), "dw17": (5, 4)}  # name: (depthwise kernel, dilation); RF = d (k - 1) + 1
HEAD_KERNEL = 5
KEY_GRID = 16  # the non-local block's keys: max-pooled to at most KEY_GRID x KEY_GRID
QUERY_CHUNK = 4096


def _hidden(channels: int, reduction: int = REDUCTION) -> int:
    return max(1, channels // reduction)


def _zero_(layer: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _bottleneck(channels: int, out: int, hidden: int) -> nn.Sequential:
    """``conv1x1(channels -> hidden), ReLU, conv1x1(hidden -> out)``, the last zero-initialised."""
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), _zero_(nn.Conv2d(hidden, out, 1)))


def _not_foldable(name: str):
    raise NotImplementedError(f"{name} has input-dependent weights and cannot be fused; "
                              "evaluate it unfused, or build ImprovedAWSRN with every switch off")


class GlobalContextAWRU(AWRU):
    """AWRU whose two weights depend on the input's global context (Eq. 1-2).

    ``y = l_res 2 sigmoid(z_res) * conv2(relu(conv1(x))) + l_x 2 sigmoid(z_x) * x`` with
    ``[z_res, z_x] = context(mean_{H,W} x)``, per channel; ``context`` ends in a zero conv, so
    the unit starts as the AWRU with scalars ``l_res, l_x``.
    """

    def __init__(self, n_feats: int, block_feats: int, kernel_size: int = 3, reduction: int = REDUCTION):
        super().__init__(n_feats, block_feats, kernel_size)
        self.context = _bottleneck(n_feats, 2 * n_feats, _hidden(n_feats, reduction))

    def weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w_res, w_x)``, each (N, C, 1, 1)."""
        z_res, z_x = self.context(avg_pool(x)).chunk(2, dim=1)
        return self.res_scale.scale * 2 * torch.sigmoid(z_res), self.x_scale.scale * 2 * torch.sigmoid(z_x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_res, w_x = self.weights(x)
        return self.conv2(F.relu(self.conv1(x))) * w_res + x * w_x

    def fuse_(self) -> None:
        _not_foldable("GlobalContextAWRU")


class FocusLRFU(LRFU):
    """LRFU with focus weighting (SK attention over the AWRU outputs) and hierarchical integration.

    ``a = softmax_i(focus(mean_{H,W} sum_i f_i))`` per channel, ``u_i = n a_i f_i``;
    ``h_1 = u_1``, ``h_k = hier_k([h_{k-1}, u_k])`` (lrelu between steps, the last step linear and
    zero-initialised); output ``l_res (conv3x3([u_1..u_n]) + h_n) + l_x x``.
    """

    def __init__(self, n_feats: int, n_inputs: int, kernel_size: int = 3, reduction: int = REDUCTION):
        super().__init__(n_feats, n_inputs, kernel_size)
        self.n_inputs = n_inputs
        self.focus = _bottleneck(n_feats, n_inputs * n_feats, _hidden(n_feats, reduction))
        self.hier = nn.ModuleList(nn.Conv2d(2 * n_feats, n_feats, 1) for _ in range(n_inputs - 1))
        if n_inputs > 1:
            _zero_(self.hier[-1])

    def focus_weights(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Softmax over the ``n`` inputs, per image and channel: (N, n, C, 1, 1), sums to 1 over dim 1."""
        s = avg_pool(sum(features))
        n, c = s.shape[:2]
        return self.focus(s).reshape(n, self.n_inputs, c, 1, 1).softmax(dim=1)

    def forward(self, features: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        a = self.focus_weights(features) * self.n_inputs
        u = [f * a[:, i] for i, f in enumerate(features)]
        fused = self.conv(torch.cat(u, dim=1))
        if len(self.hier):
            h = u[0]
            for i, step in enumerate(self.hier):
                h = step(torch.cat([h, u[i + 1]], dim=1))
                h = lrelu(h) if i < len(self.hier) - 1 else h
            fused = fused + h
        return self.res_scale(fused) + self.x_scale(x)

    def fuse_(self) -> None:
        _not_foldable("FocusLRFU")


class ImprovedLFB(LFB):
    """LFB built from :class:`GlobalContextAWRU` and/or :class:`FocusLRFU` (AWSRN's where off)."""

    def __init__(self, n_feats: int, block_feats: int, n_awru: int, gap_awru: bool = True,
                 lrfu_fusion: bool = True, reduction: int = REDUCTION):
        nn.Module.__init__(self)
        self.awrus = nn.ModuleList(
            GlobalContextAWRU(n_feats, block_feats, reduction=reduction) if gap_awru
            else AWRU(n_feats, block_feats) for _ in range(n_awru))
        self.lrfu = FocusLRFU(n_feats, n_awru, reduction=reduction) if lrfu_fusion else LRFU(n_feats, n_awru)


class AWMSPlus(AWMS):
    """AWMS with dilated depthwise-separable branches and input-dependent branch weights.

    Branches: AWSRN's ``k3 .. k9`` plus ``dw13``, ``dw17`` (:data:`AWMS_EXTRA`; adaptive weights
    start at 0). Effective weight of branch ``k`` for an image: ``w_k * 2 sigmoid(gates[k](
    squeeze(mean_{H,W} x)))``, each gate zero-initialised (starts at ``w_k``).
    """

    def __init__(self, n_feats: int, scale: int, n_colors: int = 3, kernel_sizes=(3, 5, 7, 9),
                 reduction: int = REDUCTION):
        super().__init__(n_feats, scale, n_colors, kernel_sizes)
        out = n_colors * scale * scale
        for name, (k, d) in AWMS_EXTRA.items():
            self.convs[name] = DepthwiseSeparableConv(n_feats, out, k, dilation=d)
            self.weights[name] = Scale(0.0)
        hidden = _hidden(n_feats, reduction)
        self.squeeze = nn.Sequential(nn.Conv2d(n_feats, hidden, 1), nn.ReLU())
        self.gates = nn.ModuleDict({k: _zero_(nn.Conv2d(hidden, 1, 1)) for k in self.convs})

    def gate_weights(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's effective weight for each image of ``x`` (features), (N, 1, 1, 1)."""
        s = self.squeeze(avg_pool(x))
        return {k: self.weights[k].scale * 2 * torch.sigmoid(self.gates[k](s)) for k in self.convs}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.gate_weights(x)
        return F.pixel_shuffle(sum(c(x) * w[k] for k, c in self.convs.items()), self.scale)

    def contributions(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's weighted, pixel-shuffled output; they sum to ``forward(x)``."""
        w = self.gate_weights(x)
        return {k: F.pixel_shuffle(c(x) * w[k], self.scale) for k, c in self.convs.items()}

    def branch_weights(self, x: torch.Tensor | None = None) -> dict[str, float]:
        """Mean effective weight over the images of ``x`` (features); the bare ``w_k`` without ``x``."""
        if x is None:
            return super().branch_weights()
        return {k: w.mean().item() for k, w in self.gate_weights(x).items()}

    def prune(self, threshold: float | None = None, keep: int | None = None,
              weights: dict[str, float] | None = None) -> list[str]:
        """Drop branches by ``weights`` (each branch's mean effective weight over validation
        images, :meth:`ImprovedAWSRN.awms_branch_weights`), like :meth:`AWMS.prune`. In place."""
        if weights is None:
            raise ValueError("AWMSPlus branch weights depend on the input: pass weights=, each "
                             "branch's mean weight over validation images "
                             "(ImprovedAWSRN.awms_branch_weights(images))")
        if set(weights) != set(self.convs):
            raise ValueError(f"weights must name the branches {sorted(self.convs)}, got {sorted(weights)}")
        dropped = choose_dropped(weights, threshold, keep)
        for k in dropped:
            del self.convs[k], self.weights[k], self.gates[k]
        return dropped

    def fused(self):
        _not_foldable("AWMSPlus")


class DSAttentionHead(nn.Module):
    """Depthwise-separable feature extraction re-weighted by attention scores (Eq. 3-6).

    ``P = pointwise(depthwise(f))`` (Eq. 3-4), ``A = sigmoid(conv1x1(P))`` (Eq. 5),
    output ``f + P * A`` (Eq. 6 as a residual beside the head conv); ``pointwise`` is
    zero-initialised, so it starts as the identity.
    """

    def __init__(self, n_feats: int, kernel_size: int = HEAD_KERNEL):
        super().__init__()
        self.dsconv = DepthwiseSeparableConv(n_feats, n_feats, kernel_size)
        _zero_(self.dsconv.pointwise)
        self.attention = PixelAttention(n_feats)

    def scores(self, f: torch.Tensor) -> torch.Tensor:
        """The importance scores ``A`` (Eq. 5), same shape as ``f``, in (0, 1)."""
        return torch.sigmoid(self.attention.conv(self.dsconv(f)))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f + self.attention(self.dsconv(f))


class BoundedNonLocal(NonLocalBlock):
    """Embedded-Gaussian non-local block (:class:`~srlib.models.blocks.NonLocalBlock`) whose keys
    and values are max-pooled to at most ``key_grid x key_grid`` positions, queries taken in
    chunks of ``chunk``: every pixel attends over the whole image, memory and compute linear in
    the pixels. ``W`` is zero-initialised (starts as the identity)."""

    def __init__(self, channels: int, inter: int | None = None, key_grid: int = KEY_GRID,
                 chunk: int = QUERY_CHUNK):
        super().__init__(channels, inter, sub_sample=False)
        if key_grid < 1 or chunk < 1:
            raise ValueError(f"key_grid and chunk must be >= 1, got {key_grid} and {chunk}")
        self.key_grid, self.chunk = key_grid, chunk

    def _qkv(self, x: torch.Tensor):
        h, w = x.shape[2:]
        grid = (min(h, self.key_grid), min(w, self.key_grid))

        def tokens(t):
            return t.flatten(2).transpose(1, 2)  # (N, positions, inter)

        pool = (lambda t: t) if grid == (h, w) else (lambda t: F.adaptive_max_pool2d(t, grid))
        return tokens(self.theta(x)), tokens(pool(self.phi(x))), tokens(pool(self.g(x)))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The whole attention matrix ``softmax(theta^T phi)``, (N, HW, K): small inputs only."""
        q, k, _ = self._qkv(x)
        return torch.softmax(q @ k.transpose(1, 2), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q, k, v = self._qkv(x)
        kt = k.transpose(1, 2)
        y = torch.cat([torch.softmax(qc @ kt, dim=-1) @ v for qc in q.split(self.chunk, dim=1)], dim=1)
        return x + self.W(y.transpose(1, 2).reshape(n, -1, h, w))


class NonLocalCA(nn.Module):
    """Feature fusion (Eq. 7-12): :class:`BoundedNonLocal`, then channel attention
    ``x * 2 sigmoid(...)`` whose last conv is zero-initialised (starts as the identity)."""

    def __init__(self, n_feats: int, reduction: int = REDUCTION, key_grid: int = KEY_GRID):
        super().__init__()
        self.nl = BoundedNonLocal(n_feats, key_grid=key_grid)
        self.ca = ChannelAttention(n_feats, reduction=reduction)
        _zero_(self.ca.conv_du[2])

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``s`` of Eq. 11, (N, C, 1, 1) in (0, 2)."""
        return 2 * self.ca.weights(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.nl(x)
        return y * self.channel_weights(y)


def nonlocal_cost(n_feats: int, scale: int, out_hw: tuple[int, int] = (720, 1280),
                  inter: int | None = None, key_grid: int = KEY_GRID, chunk: int = QUERY_CHUNK) -> dict:
    """Size and Multi-Adds of :class:`BoundedNonLocal` for an ``out_hw`` output at ``scale``.

    ``queries`` = LR pixels, ``keys`` = pooled positions, ``matrix_entries`` = queries x keys
    (the full attention matrix, never held at once), ``chunk_bytes`` = fp32 bytes of one chunk's
    logits (held twice, logits and softmax), ``multi_adds`` = the two products (``theta^T phi``
    and ``A g``) plus the four 1x1 convs, as ``torch.utils.flop_counter`` counts them.
    """
    inter = inter if inter is not None else max(1, n_feats // 2)
    h, w = out_hw[0] // scale, out_hw[1] // scale
    queries, keys = h * w, min(h, key_grid) * min(w, key_grid)
    products = 2 * queries * keys * inter
    convs = 4 * queries * n_feats * inter  # theta, phi, g, W; phi and g run before the pooling
    return {"lr_hw": (h, w), "queries": queries, "keys": keys, "matrix_entries": queries * keys,
            "matrix_bytes_fp32": 4 * queries * keys, "chunk_bytes": 4 * min(chunk, queries) * keys,
            "multi_adds": products + convs}


class ImprovedAWSRN(AWSRN):
    """AWSRN with the five improvements of Dong et al. 2025 behind switches (all on by default).

    Args:
        scale, n_feats, block_feats, n_lfb, n_awru, bam, kernel_sizes, n_colors, mean_shift,
            rgb_mean, bam_reduction: as :class:`~srlib.models.awsrn.AWSRN`.
        gap_awru, lrfu_fusion, awms_plus, dsconv_head, nonlocal_ca: the improvements (see the
            module docstring); all False gives AWSRN exactly.
        reduction: bottleneck ratio of the new gates (4). key_grid: the non-local block's pooled
            key grid (16).

    Input and output: float RGB in [0, 1], (N, 3, h, w) -> (N, 3, h*scale, w*scale), unclamped.
    """

    def __init__(
        self, scale: int, n_feats: int = 32, block_feats: int = 128, n_lfb: int = 4,
        n_awru: int = 4, bam: bool = False, *, gap_awru: bool = True, lrfu_fusion: bool = True,
        awms_plus: bool = True, dsconv_head: bool = True, nonlocal_ca: bool = True,
        kernel_sizes=(3, 5, 7, 9), n_colors: int = 3, mean_shift: bool | None = None,
        rgb_mean=DIV2K_RGB_MEAN, bam_reduction: int = 8, reduction: int = REDUCTION,
        key_grid: int = KEY_GRID,
    ):
        super().__init__(scale, n_feats, block_feats, n_lfb, n_awru, bam, kernel_sizes=kernel_sizes,
                         n_colors=n_colors, mean_shift=mean_shift, rgb_mean=rgb_mean,
                         bam_reduction=bam_reduction)
        switches = dict(gap_awru=gap_awru, lrfu_fusion=lrfu_fusion, awms_plus=awms_plus,
                        dsconv_head=dsconv_head, nonlocal_ca=nonlocal_ca)
        for name, value in switches.items():
            if not isinstance(value, bool):
                raise ValueError(f"ImprovedAWSRN switch {name} must be True or False, not {value!r}")
        self.switches = switches
        if gap_awru or lrfu_fusion:
            self.lfbs = nn.Sequential(*(ImprovedLFB(n_feats, block_feats, n_awru, gap_awru, lrfu_fusion,
                                                    reduction) for _ in range(n_lfb)))
        if awms_plus:
            self.awms = AWMSPlus(n_feats, self.scale, n_colors, kernel_sizes, reduction)
        self.head_ds = DSAttentionHead(n_feats) if dsconv_head else None
        self.fusion = NonLocalCA(n_feats, reduction, key_grid) if nonlocal_ca else None
        self.n_feats = n_feats

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(normalised input, AWMS input)`` for an image batch ``x``."""
        if self.mean_shift is not None:
            x = self.mean_shift.normalize(x)
        f = self.head(x)
        if self.head_ds is not None:
            f = self.head_ds(f)
        f = self.lfbs(f)
        if self.attention is not None:
            f = self.attention(f)
        if self.fusion is not None:
            f = self.fusion(f)
        return x, f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, f = self.features(x)
        y = self.awms(f) + F.pixel_shuffle(self.skip(x), self.scale)
        return y if self.mean_shift is None else self.mean_shift.denormalize(y)

    def extra_key_prefixes(self) -> dict[str, list[str]]:
        """Per switch that is on, the state-dict key prefixes it adds to AWSRN's keys."""
        n_lfb, n_awru = len(self.lfbs), len(self.lfbs[0].awrus)
        table = {
            "gap_awru": [f"lfbs.{i}.awrus.{j}.context." for i in range(n_lfb) for j in range(n_awru)],
            "lrfu_fusion": [f"lfbs.{i}.lrfu.{part}." for i in range(n_lfb) for part in ("focus", "hier")],
            "awms_plus": [f"awms.{part}.{k}." for part in ("convs", "weights") for k in AWMS_EXTRA]
            + ["awms.squeeze.", "awms.gates."],
            "dsconv_head": ["head_ds."],
            "nonlocal_ca": ["fusion."],
        }
        return {name: table[name] for name, on in self.switches.items() if on}

    @torch.no_grad()
    def awms_branch_weights(self, images) -> dict[str, float]:
        """Each AWMS branch's mean effective weight over ``images`` (an LR batch, or an iterable
        of LR batches, RGB in [0, 1]): what :meth:`prune_awms` ranks. Without ``awms_plus`` the
        weights are AWSRN's scalars, the same for every image."""
        if not isinstance(self.awms, AWMSPlus):
            return self.awms.branch_weights()
        batches = [images] if isinstance(images, torch.Tensor) else list(images)
        if not batches:
            raise ValueError("awms_branch_weights needs at least one image batch")
        total, count = dict.fromkeys(self.awms.convs, 0.0), 0
        for batch in batches:
            w = self.awms.gate_weights(self.features(batch)[1])
            for k in total:
                total[k] += w[k].sum().item()
            count += batch.shape[0]
        return {k: v / count for k, v in total.items()}

    def prune_awms(self, threshold: float | None = None, keep: int | None = None, images=None) -> list[str]:
        """Remove low-weight AWMS branches in place (:meth:`AWMS.prune`). With ``awms_plus`` the
        weights depend on the input: pass ``images`` (validation LR batches) to rank branches by
        their mean effective weight over them."""
        if not isinstance(self.awms, AWMSPlus):
            return self.awms.prune(threshold=threshold, keep=keep)
        if images is None:
            raise ValueError("with awms_plus the AWMS branch weights depend on the input: pass "
                             "images= (validation LR batches) to prune by their mean weight")
        return self.awms.prune(threshold, keep, weights=self.awms_branch_weights(images))

    def fuse(self) -> AWSRN:
        """A fused inference copy (see :meth:`AWSRN.fuse`); only with every switch off."""
        on = [name for name, value in self.switches.items() if value]
        if on:
            raise NotImplementedError(f"fuse() needs every switch off; {', '.join(on)} have "
                                      "input-dependent weights that cannot be folded into convs")
        return super().fuse()

    def nonlocal_cost(self, out_hw: tuple[int, int] = (720, 1280)) -> dict:
        """:func:`nonlocal_cost` of this model's non-local block at ``out_hw`` output."""
        if self.fusion is None:
            raise ValueError("this model has nonlocal_ca=False; build it with nonlocal_ca=True")
        nl = self.fusion.nl
        return nonlocal_cost(self.n_feats, self.scale, out_hw, nl.theta.out_channels, nl.key_grid, nl.chunk)
