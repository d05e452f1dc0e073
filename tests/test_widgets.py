"""The swipe comparer of notebook 07 in pure Python: set a control's ``.value``, read the PNG the
widget would send, and compare it with pictures computed here by hand from the HR image.

Two fake methods on small images: ``nearest`` (torch nearest-neighbour, so its reconstruction of
an LR taken as every second pixel is known exactly from the HR) and ``bilinear``."""
from __future__ import annotations

import base64
from types import SimpleNamespace

import numpy as np
import pytest
import torch.nn.functional as F

from srlib.viz.widgets import BOX, HR, LINE, SwipeComparer, difference_map, enlarge, from_png

S = 2


def _item(name, hr):
    return SimpleNamespace(name=name, hr=hr, lr=np.ascontiguousarray(hr[::S, ::S]))


def _nearest(x):
    return F.interpolate(x, scale_factor=S, mode="nearest")


def _bilinear(x):
    return F.interpolate(x, scale_factor=S, mode="bilinear", align_corners=False)


@pytest.fixture
def comparer(textured):
    other = np.ascontiguousarray(textured[:40, :48, ::-1])  # a second, smaller image
    items = [_item("a", textured), _item("b", other)]
    return SwipeComparer(items, {"nearest": _nearest, "bilinear": _bilinear}, S, zoom_size=16, zoom_px=64)


def _nearest_of(hr):
    """Nearest x2 of hr[::2, ::2], by hand: pixel (i, j) is hr[2 (i // 2), 2 (j // 2)]."""
    return hr[::S, ::S].repeat(S, 0).repeat(S, 1)


def test_defaults_and_the_view_sent_is_the_view_computed(comparer, textured):
    assert (comparer.image.value, comparer.left.value, comparer.right.value) == ("a", "nearest", "bilinear")
    assert comparer.left.options == (HR, "nearest", "bilinear")
    shown = from_png(comparer.view.value)
    assert shown.shape == textured.shape
    np.testing.assert_array_equal(shown, comparer.view_array())
    # the zoom box sits inside the image, LR-aligned
    top, left, size = comparer.box()
    assert size == 16 and top % S == 0 and left % S == 0
    assert 0 <= top <= 60 - size and 0 <= left <= 52 - size


def test_swipe_splits_the_view_at_the_cut(comparer, textured):
    near, bil = _nearest_of(textured), comparer.cache.get("bilinear", "a")
    comparer.swipe.value = 0
    np.testing.assert_array_equal(comparer.view_array(overlays=False), bil)
    comparer.swipe.value = 100
    np.testing.assert_array_equal(comparer.view_array(overlays=False), near)
    before = comparer.view.value
    comparer.swipe.value = 25  # cut = round(0.25 * 52) = 13
    assert comparer.view.value != before
    view = comparer.view_array(overlays=False)
    np.testing.assert_array_equal(view[:, :13], near[:, :13])
    np.testing.assert_array_equal(view[:, 13:], bil[:, 13:])
    shown = from_png(comparer.view.value)
    assert (shown[:, 13] == LINE).all()
    top, left, size = comparer.box()
    assert (shown[top, left:left + size] == BOX).all() and (shown[top:top + size, left + size - 1] == BOX).all()


def test_model_picker_changes_the_side_it_names(comparer, textured):
    comparer.swipe.value = 100  # the left side only
    before = comparer.view.value
    comparer.left.value = HR
    assert comparer.view.value != before
    np.testing.assert_array_equal(comparer.view_array(overlays=False), textured)
    with pytest.raises(ValueError, match="left='nope' is not a method"):
        SwipeComparer([_item("a", textured)], {"nearest": _nearest}, S, left="nope")


def test_zoom_crops_are_the_box_of_each_method_enlarged(comparer, textured):
    comparer.zoom_x.value, comparer.zoom_y.value = 10, 6
    crops = comparer.crop_arrays()
    assert list(crops) == [HR, "nearest", "bilinear"]
    f = 64 // 16
    assert comparer.zoom_factor() == f
    np.testing.assert_array_equal(crops[HR], textured[6:22, 10:26].repeat(f, 0).repeat(f, 1))
    np.testing.assert_array_equal(crops["nearest"], enlarge(_nearest_of(textured)[6:22, 10:26], f))
    assert crops["bilinear"].shape == (64, 64, 3)
    strip = from_png(comparer.crops.value)  # three crops in a row, captions above
    assert strip.shape[1] == 3 * 64 + 2 * 4
    np.testing.assert_array_equal(strip[-64:, :64], crops[HR])
    # a bigger box is clipped to the image and its sliders' bounds follow
    comparer.zoom_size.value = 48
    assert comparer.zoom_x.max == 52 - 48 and comparer.zoom_y.max == 60 - 48
    assert comparer.zoom_x.value <= 4 and comparer.crop_arrays()[HR].shape == (48, 48, 3)


def test_difference_toggle_shows_each_side_minus_the_hr(comparer, textured):
    comparer.swipe.value = 100
    before = comparer.view.value
    comparer.diff.value = True
    assert comparer.view.value != before
    near = _nearest_of(textured)
    d = np.abs(near.astype(int) - textured.astype(int)).mean(axis=2) * 4
    expected = difference_map(near, textured)
    from matplotlib import colormaps

    lut = (colormaps["magma"](np.arange(256))[:, :3] * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(expected, lut[np.clip(np.round(d), 0, 255).astype(np.uint8)])
    np.testing.assert_array_equal(comparer.view_array(overlays=False), expected)
    assert (comparer.crop_arrays()[HR] == lut[0]).all()  # the HR differs from itself by nothing


def test_reconstructions_are_computed_once_per_method_and_image(comparer):
    assert sorted(comparer.cache.computed) == [("bilinear", "a"), ("nearest", "a")]  # the strip needs all
    comparer.image.value = "b"
    assert from_png(comparer.view.value).shape == (40, 48, 3)
    top, left, size = comparer.box()
    assert top + size <= 40 and left + size <= 48
    comparer.image.value = "a"
    comparer.swipe.value = 10
    comparer.diff.value = True
    assert sorted(comparer.cache.computed) == [("bilinear", "a"), ("bilinear", "b"), ("nearest", "a"),
                                               ("nearest", "b")]


def test_static_twin_is_the_current_state_as_png(comparer):
    bundle = comparer._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == comparer.widget.model_id
    png = from_png(base64.b64decode(bundle["image/png"]))
    np.testing.assert_array_equal(png, comparer.snapshot())
    view_h = comparer.view_array().shape[0]
    np.testing.assert_array_equal(png[20:20 + view_h, :52], comparer.view_array())
    comparer.right.value = HR
    assert comparer._repr_mimebundle_()["image/png"] != bundle["image/png"]


def test_errors_name_the_problem(textured):
    items = [_item("a", textured)]
    with pytest.raises(ValueError, match="methods is empty"):
        SwipeComparer(items, {}, S)
    with pytest.raises(ValueError, match="'HR' is reserved"):
        SwipeComparer(items, {HR: _nearest}, S)
    with pytest.raises(ValueError, match="method 'x4' returned .* expected the HR's"):
        SwipeComparer(items, {"x4": lambda x: F.interpolate(x, scale_factor=4)}, S)


# ---- notebook 07's study side: what is shown comes from finished runs only --------------------

def test_methods_and_paper_figures_come_from_finished_runs_only(monkeypatch, tmp_path, data_dir, weights_dir):
    from srlib.models import build_upscaler
    from srlib.studies import visuals
    from srlib.studies.core import Study

    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("SRLIB_PROJECT_DIR", str(tmp_path))  # a project where nothing has run
    assert list(visuals.widget_items("smoke")) == ["Set5 baby", "Set5 bird"]
    methods, table = visuals.widget_methods("smoke")
    assert list(methods) == ["bicubic"] + [f"{m} (official)" for m in ("pan", "imdn", "carn-m", "latticenet",
                                                                       "a2f-sd", "a2f-s", "rfdn")]
    assert not table.shown[table.method.str.startswith("ours")].any()
    assert table.set_index("method").why["ours: imfm (05)"].endswith("notebook 05 trains it (make reproduce runs "
                                                                      "02-06 before 07)")
    assert all(f.skipped and f.status.startswith("skipped: study ") for f in visuals.paper_figures("smoke"))

    # every run finished (each trained model stood in for by bicubic): all are shown, figures are built
    monkeypatch.setattr(Study, "state", lambda self, arm: {"state": "finished", "status": "finished",
                                                           "run_dir": tmp_path / arm.name})
    monkeypatch.setattr(Study, "load_model", lambda self, name, seed=None, checkpoint="best":
                        build_upscaler("bicubic", 4))
    methods, table = visuals.widget_methods("smoke", official=False)
    assert table.shown.all() and list(methods) == ["bicubic"] + [label for _, _, label, _ in visuals.TRAINED]
    f4, f56, f2 = visuals.paper_figures("smoke")
    assert (f4.skipped, list(f4.methods), [it.name for it in f4.items]) == (
        None, ["bicubic", "baseline", "improved (all-on)"], ["baby"])  # smoke evaluates no Urban100
    assert (f56.skipped, [it.name for it in f56.items]) == (None, ["253027", "img_012"])
    assert list(f56.methods) == ["bicubic", "IMFM (ours)", "imdn (ours, same budget)", "imdn (official weights)"]
    assert f2.skipped.startswith("the ne x4 dictionary is not learned yet") and "notebook 06 learns it" in f2.skipped
