"""Perceptual loss (seed 000 Eq. 13) on VGG19 features, the weights it needs, and LPIPS.

Seed 000 (Dong et al. 2025, "hybrid loss"): "The perceptual discrepancy metric computes either
L1 or L2 norms between the feature activations of reconstructed and reference images, extracted
from designated VGG network layers ... aggregating L2-norm distances across all feature map
layers". The equation itself was lost in extraction. The shape follows BasicSR's
``VGGFeatureExtractor`` / ``PerceptualLoss`` (``basicsr/archs/vgg_arch.py``,
``basicsr/losses/basic_loss.py``): named VGG19 layers with per-layer weights, ImageNet
normalisation of [0, 1] inputs, the network frozen, in eval mode and cut after the deepest layer
used.

Readings chosen where the text is silent:

- ``L_percep = sum_l w_l * D(phi_l(SR), phi_l(HR))`` with ``D`` the mean squared difference
  (``criterion='l2'``, Eq. 13 "sums L2 distances over layers"; SRGAN's VGG loss, normalised per
  element) or the mean absolute one (``'l1'``, ESRGAN's choice). The mean, not the sum, so that
  layer weights do not depend on the patch size.
- Default layer ``conv5_4`` *before* its ReLU, weight 1 (ESRGAN, Sec. 3.4: features before
  activation are denser and keep brightness); the seed names no layer.
- The HR branch runs under ``no_grad``; both branches run under the trainer's autocast when it
  passes one (context ``autocast``), the distances in fp32.
- Weights: torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (``vgg19-dcbb9e9d.pth``), found in
  ``$SRLIB_WEIGHTS_DIR`` (or its ``VGG19/`` folder), then torch's hub cache, then downloaded
  where the network allows; otherwise :class:`VGGWeightsNotFound` says what to do.
  ``weights='random'`` builds the same network with Kaiming-normal weights from a fixed seed
  (``torch.Generator``, so the global RNG is untouched): a loss on random features, *not the
  paper's loss*; ``.weights_used`` records which one a loss object holds and ``.note`` is the
  label tables print (:data:`RANDOM_VGG_NOTE`). ``weights='auto'`` takes the file when it is on
  disk, else random with a warning; a study should call :func:`resolve_vgg_weights` with its
  profile instead, so the choice is in its configuration (``smoke``/``quick`` fall back to random,
  any other profile refuses).
"""
from __future__ import annotations

import contextlib
import os
import urllib.error
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Loss, register_loss

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
VGG19_SIZE = "548 MB (548,051 kB, torchvision's VGG19_Weights.IMAGENET1K_V1)"
VGG19_HASH_PREFIX = "dcbb9e9d"  # the first 8 hex digits of the file's SHA-256, as torch.hub checks
WEIGHTS_ENV = "SRLIB_WEIGHTS_DIR"
RANDOM_SEED = 0
RANDOM_VGG_NOTE = "random-feature VGG19 \u2014 not the paper's loss"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# profiles that may train on random VGG features when the file is absent (the rest refuse)
RANDOM_OK_PROFILES = ("smoke", "quick")
VGG_WEIGHTS = ("imagenet", "random", "auto")

_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # VGG19: (channels, convs) per block


def vgg19_layer_names() -> list[str]:
    """Names of ``torchvision.models.vgg19().features`` in order: ``conv1_1, relu1_1, ..., pool5``."""
    names = []
    for b, (_, n) in enumerate(_BLOCKS, 1):
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


VGG19_LAYERS = tuple(vgg19_layer_names())


class VGGWeightsNotFound(FileNotFoundError):
    """The ImageNet VGG19 file is neither on disk nor downloadable here; the message says what to do."""


def _missing_message(reason: str) -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return (f"VGG19 ImageNet weights {VGG19_FILE} ({VGG19_SIZE}) are not available: {reason}. "
            f"Put the file at ${WEIGHTS_ENV}/VGG19/{VGG19_FILE} (or ${WEIGHTS_ENV}/{VGG19_FILE}) or at "
            f"{hub}; it comes from {VGG19_URL}. Without it, pass weights='random' (a random-feature "
            "VGG19, not the paper's loss) or use a profile that allows it (smoke, quick).")


def find_vgg19_weights() -> Path | None:
    """The VGG19 file on this machine: ``$SRLIB_WEIGHTS_DIR`` (root or ``VGG19/``), then torch's
    hub cache; None when absent. Never downloads."""
    return _local_weights(VGG19_FILE, "VGG19")


def _local_weights(fname: str, subdir: str) -> Path | None:
    """``fname`` in ``$SRLIB_WEIGHTS_DIR/<subdir>/``, ``$SRLIB_WEIGHTS_DIR/`` or torch's hub cache."""
    places = []
    root = os.environ.get(WEIGHTS_ENV)
    if root:
        places += [Path(root).expanduser() / subdir / fname, Path(root).expanduser() / fname]
    places.append(Path(torch.hub.get_dir()) / "checkpoints" / fname)
    return next((p for p in places if p.is_file()), None)


def _download() -> Path:
    """Download the file into torch's hub cache (hash-checked by torch.hub); where the network allows."""
    dest = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(VGG19_URL, str(dest), hash_prefix=VGG19_HASH_PREFIX, progress=False)
    return dest


def vgg19_weights_path(download: bool = True) -> Path:
    """The VGG19 file: found (:func:`find_vgg19_weights`) or downloaded; :class:`VGGWeightsNotFound`
    naming the file, its size, where to put it and where it comes from otherwise."""
    path = find_vgg19_weights()
    if path is not None:
        return path
    if not download:
        raise VGGWeightsNotFound(_missing_message("not on disk and download=False"))
    try:
        return _download()
    except (urllib.error.URLError, OSError, RuntimeError) as exc:  # offline, refused, bad hash
        raise VGGWeightsNotFound(_missing_message(f"not on disk and the download failed ({exc})")) from None


def resolve_vgg_weights(profile) -> str:
    """``'imagenet'`` or ``'random'`` for a profile (its name or an object with ``.name``).

    The file on disk: ``'imagenet'``. Absent: ``smoke``/``quick`` take ``'random'`` (with a
    warning: tables must say :data:`RANDOM_VGG_NOTE`); any other profile tries the download and
    raises :class:`VGGWeightsNotFound` when it fails, so a paper-scale run never trains on random
    features by accident.
    """
    name = getattr(profile, "name", profile)
    if find_vgg19_weights() is not None:
        return "imagenet"
    if name in RANDOM_OK_PROFILES:
        warnings.warn(f"{VGG19_FILE} is not on disk: profile {name!r} uses a {RANDOM_VGG_NOTE}",
                      stacklevel=2)
        return "random"
    vgg19_weights_path(download=True)
    return "imagenet"


_FEATURES: dict[str, dict] = {}  # path -> the 'features.*' tensors of a loaded file


def _imagenet_features(download: bool) -> dict:
    path = str(vgg19_weights_path(download))
    if path not in _FEATURES:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (a truncated or foreign file)
            raise VGGWeightsNotFound(_missing_message(f"{path} could not be read ({exc})")) from None
        _FEATURES[path] = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    return _FEATURES[path]


class VGG19Features(nn.Module):
    """``torchvision``'s VGG19 ``features``, cut after ``last``; returns the named layers' outputs.

    Args:
        layers: names of :data:`VGG19_LAYERS` to return (e.g. ``['conv5_4']``).
        weights: ``'imagenet'`` (the torchvision file, see :func:`vgg19_weights_path`) or
            ``'random'`` (Kaiming normal, fan-out, from seed :data:`RANDOM_SEED`).
        normalize: subtract the ImageNet mean and divide by its std (inputs in [0, 1]).
        download: allow the download when the file is not on disk.

    Frozen (``requires_grad=False``) and always in eval mode. Submodule ``body.<i>`` is
    ``features.<i>`` of torchvision's model, so the official file loads by index.
    """

    def __init__(self, layers, weights: str = "imagenet", normalize: bool = True, download: bool = True):
        super().__init__()
        layers = list(layers)
        unknown = [n for n in layers if n not in VGG19_LAYERS]
        if unknown or not layers:
            raise ValueError(f"VGG19Features: unknown layers {unknown or layers}; known: {list(VGG19_LAYERS)}")
        if weights not in ("imagenet", "random"):
            raise ValueError(f"VGG19Features: weights must be 'imagenet' or 'random', got {weights!r}")
        self.layers, self.weights_used, self.normalize = layers, weights, normalize
        depth = max(VGG19_LAYERS.index(n) for n in layers) + 1
        body, c_in = [], 3
        with torch.random.fork_rng(devices=[]):  # nn.Conv2d's own init must not move the global RNG
            for name in VGG19_LAYERS[:depth]:
                if name.startswith("conv"):
                    c_out = _BLOCKS[int(name[4]) - 1][0]
                    body.append(nn.Conv2d(c_in, c_out, 3, padding=1))
                    c_in = c_out
                else:
                    body.append(nn.ReLU(inplace=False) if name.startswith("relu") else nn.MaxPool2d(2, 2))
        self.body = nn.Sequential(*body)
        self.names = VGG19_LAYERS[:depth]
        if weights == "imagenet":
            sd = _imagenet_features(download)
            self.body.load_state_dict({k: v for k, v in sd.items() if int(k.split(".")[0]) < depth})
        else:
            g = torch.Generator().manual_seed(RANDOM_SEED)
            for m in self.body:
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
                    nn.init.zeros_(m.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":
        return super().train(False)  # frozen feature extractor: eval mode always

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out, want = {}, set(self.layers)
        for name, module in zip(self.names, self.body):
            x = module(x)
            if name in want:
                out[name] = x
        return out


@register_loss("perceptual")
class PerceptualLoss(Loss):
    """``loss_weight * sum_l w_l * D(phi_l(sr), phi_l(hr))`` on VGG19 features (seed 000 Eq. 13).

    Args:
        loss_weight: factor on the sum (the hybrid loss's perceptual weight).
        reduction: ``'mean'`` (per layer, over elements) or ``'sum'``; ``'none'`` is refused
            (layers differ in shape).
        layers: ``{layer: weight}`` (or a list of layers, weight 1 each) of :data:`VGG19_LAYERS`;
            default ``{'conv5_4': 1.0}``.
        criterion: ``'l2'`` (squared difference, Eq. 13) or ``'l1'`` (ESRGAN).
        weights: ``'imagenet'``, ``'random'`` or ``'auto'`` (see the module docstring).
        normalize: ImageNet normalisation of [0, 1] inputs.
        download: allow downloading the ImageNet file when it is not on disk.

    ``weights_used`` is ``'imagenet'`` or ``'random'``; ``note`` is the label a table must carry
    (:data:`RANDOM_VGG_NOTE` for random features, else ``''``).
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", layers=None,
                 criterion: str = "l2", weights: str = "imagenet", normalize: bool = True,
                 download: bool = True):
        super().__init__(loss_weight, reduction)
        if reduction == "none":
            raise ValueError("PerceptualLoss: reduction='none' is not supported (layers differ in shape); "
                             "use 'mean' or 'sum'")
        if criterion not in ("l1", "l2"):
            raise ValueError(f"PerceptualLoss: criterion must be 'l1' or 'l2', got {criterion!r}")
        if weights not in VGG_WEIGHTS:
            raise ValueError(f"PerceptualLoss: weights must be one of {VGG_WEIGHTS}, got {weights!r}")
        layers = {"conv5_4": 1.0} if layers is None else layers
        self.layer_weights = ({str(k): float(v) for k, v in layers.items()} if isinstance(layers, dict)
                              else {str(k): 1.0 for k in layers})
        if weights == "auto":
            weights = "imagenet" if find_vgg19_weights() is not None else "random"
            if weights == "random":
                warnings.warn(f"{VGG19_FILE} is not on disk: PerceptualLoss(weights='auto') uses a "
                              f"{RANDOM_VGG_NOTE}", stacklevel=2)
        self.criterion = criterion
        self.vgg = VGG19Features(list(self.layer_weights), weights, normalize, download)

    @property
    def weights_used(self) -> str:
        return self.vgg.weights_used

    @property
    def note(self) -> str:
        return RANDOM_VGG_NOTE if self.weights_used == "random" else ""

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fn = F.l1_loss if self.criterion == "l1" else F.mse_loss
        return fn(a.float(), b.float(), reduction=self.reduction)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, autocast=None, **context) -> torch.Tensor:
        amp = autocast if autocast is not None else contextlib.nullcontext
        with amp():
            f_sr = self.vgg(sr)
        with torch.no_grad(), amp():
            f_hr = self.vgg(hr.detach())
        total = None
        for name, w in self.layer_weights.items():
            term = w * self.distance(f_sr[name], f_hr[name])
            total = term if total is None else total + term
        return self.loss_weight * total

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, layers={self.layer_weights}, criterion={self.criterion!r}, "
                f"weights={self.weights_used!r}")


# ---- LPIPS (Zhang et al. 2018), a measurement beside PSNR/SSIM --------------------------------
LPIPS_BACKBONES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def _lpips_backbone(net: str) -> Path | None:
    return _local_weights(LPIPS_BACKBONES[net], "LPIPS")


_LPIPS: dict[tuple, nn.Module] = {}  # (net, backbone path) -> model


def lpips_distance(sr: torch.Tensor, hr: torch.Tensor, net: str = "alex") -> tuple[float | None, str]:
    """``(mean LPIPS of sr vs hr, '')``, or ``(None, why it was not measured)``.

    Images are (N, 3, H, W) in [0, 1]. The ``lpips`` package ships its linear layers; the
    torchvision backbone (``alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``) must be on disk
    (``$SRLIB_WEIGHTS_DIR``, its ``LPIPS/`` folder, or torch's hub cache): this never downloads.
    """
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"lpips_distance: net must be one of {sorted(LPIPS_BACKBONES)}, got {net!r}")
    try:
        import lpips
    except ImportError:
        return None, "LPIPS not measured: the lpips package is not installed (pip install lpips)"
    path = _lpips_backbone(net)
    if path is None:
        return None, (f"LPIPS not measured: its {net} backbone {LPIPS_BACKBONES[net]} (torchvision ImageNet "
                      f"weights) is not on disk; put it in ${WEIGHTS_ENV}/LPIPS/ or torch's hub cache")
    key = (net, str(path))
    if key not in _LPIPS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        sd = torch.load(path, map_location="cpu", weights_only=True)
        feats = OrderedDict((k[len("features."):], v) for k, v in sd.items() if k.startswith("features."))
        _load_lpips_backbone(model.net, feats)
        _LPIPS[key] = model.eval().requires_grad_(False)
    model = _LPIPS[key]
    dev = sr.device
    with torch.no_grad():
        d = model.to(dev)(sr.float() * 2 - 1, hr.float() * 2 - 1)
    return float(d.mean()), ""


def _load_lpips_backbone(pnet: nn.Module, feats: dict) -> None:
    """Copy torchvision ``features.<i>`` tensors into lpips' sliced backbone (``sliceK.<i>``)."""
    own = pnet.state_dict()
    by_index = {}
    for key in own:  # e.g. 'slice1.0.weight' -> feature index 0
        _, idx, kind = key.split(".")
        by_index[key] = f"{idx}.{kind}"
    missing = [k for k, src in by_index.items() if src not in feats]
    if missing:
        raise ValueError(f"LPIPS backbone file lacks {missing[:3]}")
    pnet.load_state_dict({k: feats[src] for k, src in by_index.items()})
