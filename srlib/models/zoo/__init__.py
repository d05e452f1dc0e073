"""Comparator models with official weights (see ../shared/pretrained/README.md).

Each model takes RGB in [0, 1] and returns RGB in [0, 1] whatever range its official weights
were trained on; module names follow the official code so the released files load with
:func:`srlib.models.load_weights` (per-model key conversion in ``convert_state_dict``).
Where the files are: :mod:`srlib.models.zoo.weights`.
"""
from __future__ import annotations

from .. import ModelEntry

_Z = "srlib.models.zoo."

ZOO_ENTRIES: dict[str, ModelEntry] = {
    "pan": ModelEntry(
        module=_Z + "pan", cls="PAN", scales=(2, 3, 4), config={"nf": 40, "unf": 24, "nb": 16},
        description="PAN (Zhao et al., ECCVW 2020): SC-PA blocks + pixel-attention upsampling",
    ),
    "imdn": ModelEntry(
        module=_Z + "imdn", cls="IMDN", scales=(2, 3, 4), config={"nf": 64, "num_modules": 6},
        description="IMDN (Hui et al., ACM MM 2019): information multi-distillation blocks",
    ),
    "carn-m": ModelEntry(
        module=_Z + "carn", cls="CARN_M", scales=(2, 3, 4), config={"nf": 64, "group": 4},
        description="CARN-M (Ahn et al., ECCV 2018): cascading efficient residual blocks "
        "(one multi-scale official file)",
    ),
    "latticenet": ModelEntry(
        module=_Z + "latticenet", cls="LatticeNet", scales=(2, 3, 4), config={"nf": 64, "nd": 16},
        description="LatticeNet (Luo et al., ECCV 2020): lattice blocks + backward fusion",
    ),
    "a2f-s": ModelEntry(
        module=_Z + "a2f", cls="A2F", scales=(4,),
        config={"n_feats": 32, "n_layers": 4, "block_feats": 128},
        description="A2F-S (Wang et al., ACCV 2020): attentive auxiliary features, 32 ch x 4 layers",
    ),
    "a2f-sd": ModelEntry(
        module=_Z + "a2f", cls="A2F", scales=(4,),
        config={"n_feats": 16, "n_layers": 8, "block_feats": 128},
        description="A2F-SD (Wang et al., ACCV 2020): attentive auxiliary features, 16 ch x 8 layers",
    ),
    "rfdn": ModelEntry(
        module=_Z + "rfdn", cls="RFDN", scales=(4,), config={"nf": 50, "num_modules": 4},
        description="RFDN, AIM 2020 challenge model (Liu et al., ECCVW 2020): residual feature "
        "distillation + ESA",
    ),
    # no official weights staged: measured with random weights in the complexity table
    "edsr-baseline": ModelEntry(
        module=_Z + "edsr", cls="EDSR", scales=(2, 3, 4), config={"n_resblocks": 16, "nf": 64},
        description="EDSR-baseline (Lim et al., CVPRW 2017): 16 residual blocks, 64 channels (no weights here)",
    ),
    "edsr": ModelEntry(
        module=_Z + "edsr", cls="EDSR", scales=(2, 3, 4),
        config={"n_resblocks": 32, "nf": 256, "res_scale": 0.1},
        description="EDSR (Lim et al., CVPRW 2017): 32 residual blocks, 256 channels, residual "
        "scale 0.1, 43M parameters (no weights here; for complexity tables)",
    ),
    "rdn": ModelEntry(
        module=_Z + "rdn", cls="RDN", scales=(2, 3, 4), config={"g0": 64, "d": 16, "c": 8, "g": 64},
        description="RDN (Zhang et al., CVPR 2018): 16 residual dense blocks (no weights here)",
    ),
}
