"""Interactive comparers for notebook 07, from core ipywidgets only (no custom JavaScript, so they
work alike in JupyterLab 4, Notebook 7, VS Code and Voila), each with a static twin.

:class:`SwipeComparer` shows one image's reconstructions by several methods:

- an image picker and a model picker for each side of a swipe slider: the view shows the left
  method's reconstruction left of the cut and the right one's from the cut on;
- a zoom box (position and size in HR pixels) drawn on the view, whose crop is shown for every
  method (and the HR) side by side, enlarged by nearest neighbour, each labelled with the crop's
  PSNR on Y (the protocol, no border shave: a crop has no border);
- a difference-map toggle: every panel shows its absolute difference to the HR instead.

Images travel as lossless PNG (``ipywidgets.Image(format='png')``). Reconstructions are computed
once per (method, image), on first use, and kept in memory (:class:`ReconstructionCache`).

The static twin: displaying a comparer gives the widget view *and* an ``image/png`` of its
current state (:meth:`SwipeComparer._repr_mimebundle_`), so a notebook exported to HTML
without its widget state, or rendered by GitHub, still shows the panels without a kernel.

Readings chosen (the issue names the controls, not their behaviour):

- *swipe*: ``cut = round(position / 100 * width)``; columns ``< cut`` come from the left side,
  the rest from the right; a 1-pixel :data:`LINE` column at ``cut`` marks it when ``0 < cut <
  width`` (so 0 shows the right side alone and 100 the left side alone, untouched).
- *zoom box*: default the square with the most gradient energy (:func:`~srlib.viz.figures.detail_crop`,
  LR-aligned); its outline (:data:`BOX`, 1 pixel, inside the box) is drawn on the view only,
  never on the crops; crops are enlarged by ``max(1, zoom_px // size)``.
- *difference map*: ``|side - HR|`` averaged over RGB, times ``diff_gain`` (default 4: a
  1/64 error is then a quarter of the scale), clipped to 255, through matplotlib's ``magma``
  colour map; the HR itself is then the map's black.
- *models*: anything callable on a float (1, 3, h, w) tensor in [0, 1] returning (1, 3, s*h, s*w),
  run through :func:`srlib.evaluate.upscale` (clamped to [0, 1], quantised to 8 bits).
"""
from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

HR = "HR"
LINE = (255, 255, 0)  # the swipe cut
BOX = (0, 255, 255)  # the zoom box outline
CAPTION_H = 28  # pixels of caption above each crop in the strip


def to_png(img: np.ndarray, compress_level: int = 3) -> bytes:
    """uint8 HWC (or HW) array -> PNG bytes (lossless)."""
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def from_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 HWC RGB array."""
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def enlarge(img: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a ``factor`` x ``factor`` block."""
    return img if factor == 1 else img.repeat(factor, axis=0).repeat(factor, axis=1)


def difference_map(img: np.ndarray, hr: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """``|img - hr|`` averaged over RGB, times ``gain``, clipped, coloured by ``magma`` (uint8 RGB)."""
    from matplotlib import colormaps

    if img.shape != hr.shape:
        raise ValueError(f"difference_map: image {img.shape} and HR {hr.shape} differ in shape")
    d = np.abs(img.astype(np.int16) - hr.astype(np.int16)).mean(axis=2) * gain
    lut = (colormaps["magma"](np.arange(256))[:, :3] * 255).round().astype(np.uint8)
    return lut[np.clip(np.round(d), 0, 255).astype(np.uint8)]


def _label(item, fallback: str) -> str:
    return str(getattr(item, "name", fallback))


class ReconstructionCache:
    """Each method's reconstruction of each image, computed on first use and kept (uint8 HWC).

    Args:
        items: ``{label: item}``; an item has ``hr`` (uint8 HWC) and ``lr`` (uint8 HWC, ``hr``
            downscaled ``scale`` times), e.g. a :class:`srlib.data.datasets.BenchmarkItem`.
        methods: ``{label: model}``, each model callable on a float (1, 3, h, w) tensor.
    """

    def __init__(self, items: Mapping, methods: Mapping):
        self.items, self.methods = dict(items), dict(methods)
        self._store: dict[tuple[str, str], np.ndarray] = {}
        self.computed: list[tuple[str, str]] = []  # (method, image) in the order computed

    def get(self, method: str, image: str) -> np.ndarray:
        """The reconstruction (or the HR when ``method`` is :data:`HR`) of ``image`` by ``method``."""
        item = self.items[image]
        if method == HR:
            return item.hr
        key = (method, image)
        if key not in self._store:
            from ..data.colour import to_uint8
            from ..evaluate import upscale

            out = to_uint8(upscale(self.methods[method], np.ascontiguousarray(item.lr)))
            if out.shape != item.hr.shape:
                raise ValueError(f"method {method!r} returned {out.shape[:2]} for image {image!r}, expected the "
                                 f"HR's {item.hr.shape[:2]}: give models of the comparer's scale")
            out.setflags(write=False)
            self._store[key] = out
            self.computed.append(key)
        return self._store[key]


class SwipeComparer:
    """A swipe comparer of reconstructions (module docstring); display it in a notebook cell.

    Args:
        items: ``{label: item}`` or a list of items (labelled by ``item.name``); see
            :class:`ReconstructionCache`.
        methods: ``{label: model}`` (at least one).
        scale: the upscaling factor of the models (aligns the default zoom box to LR pixels).
        left, right: the methods shown first on each side (default: the first and the last).
        zoom_size: the zoom box's side in HR pixels (clipped to the image).
        zoom_px: about how wide each enlarged crop is drawn.
        diff_gain: the difference map's gain.
        per_row: crops per row of the strip.

    The controls are attributes (``image``, ``left``, ``right``, ``swipe``, ``diff``, ``zoom_x``,
    ``zoom_y``, ``zoom_size``); setting a control's ``.value`` updates ``view`` and ``crops``
    (``ipywidgets.Image``) at once. ``widget`` is the whole box.
    """

    def __init__(self, items, methods: Mapping, scale: int, left: str | None = None, right: str | None = None,
                 zoom_size: int = 48, zoom_px: int = 160, diff_gain: float = 4.0, per_row: int = 6):
        import ipywidgets as w

        if not isinstance(items, Mapping):
            items = {_label(it, str(i)): it for i, it in enumerate(items)}
        if not items:
            raise ValueError("SwipeComparer: items is empty; give at least one image (an item with .hr and .lr)")
        if not methods:
            raise ValueError("SwipeComparer: methods is empty; give at least one {label: model}")
        if HR in methods:
            raise ValueError(f"SwipeComparer: {HR!r} is reserved for the ground truth; rename that method")
        self.cache = ReconstructionCache(items, methods)
        self.scale, self.zoom_px, self.diff_gain, self.per_row = int(scale), int(zoom_px), diff_gain, int(per_row)
        names = list(methods)
        options = [HR, *names]
        left, right = left or names[0], right or names[-1]
        for side, value in (("left", left), ("right", right)):
            if value not in options:
                raise ValueError(f"SwipeComparer: {side}={value!r} is not a method; the methods: {', '.join(options)}")
        style = {"description_width": "initial"}
        self.image = w.Dropdown(options=list(items), description="image", style=style)
        self.left = w.Dropdown(options=options, value=left, description="left", style=style)
        self.right = w.Dropdown(options=options, value=right, description="right", style=style)
        self.swipe = w.IntSlider(value=50, min=0, max=100, description="swipe (%)", continuous_update=False,
                                 style=style)
        self.diff = w.Checkbox(value=False, description=f"difference to HR (x{diff_gain:g})", indent=False)
        self.zoom_x = w.IntSlider(description="zoom x", continuous_update=False, style=style)
        self.zoom_y = w.IntSlider(description="zoom y", continuous_update=False, style=style)
        self.zoom_size = w.IntSlider(value=zoom_size, min=8, max=256, step=8, description="zoom size",
                                     continuous_update=False, style=style)
        self.view = w.Image(format="png")
        self.crops = w.Image(format="png")
        self.caption = w.HTML()
        for ctl, cls in ((self.image, "image"), (self.left, "left"), (self.right, "right"), (self.swipe, "swipe"),
                         (self.diff, "diff"), (self.zoom_x, "zoom-x"), (self.zoom_y, "zoom-y"),
                         (self.zoom_size, "zoom-size"), (self.view, "view"), (self.crops, "crops")):
            ctl.add_class(f"srlib-{cls}")
        self.widget = w.VBox([w.HBox([self.image, self.left, self.right]), w.HBox([self.swipe, self.diff]),
                              w.HBox([self.zoom_x, self.zoom_y, self.zoom_size]), self.caption, self.view,
                              self.crops])
        self.widget.add_class("srlib-comparer")
        self._quiet = False
        self._reset_zoom(zoom_size)
        self.image.observe(self._on_image, names="value")
        for ctl in (self.left, self.right, self.swipe, self.diff, self.zoom_x, self.zoom_y, self.zoom_size):
            ctl.observe(self._on_change, names="value")
        self.render()

    # ---- state --------------------------------------------------------------------------
    @property
    def hr(self) -> np.ndarray:
        return self.cache.items[self.image.value].hr

    def box(self) -> tuple[int, int, int]:
        """(top, left, size) of the zoom box in HR pixels."""
        return self.zoom_y.value, self.zoom_x.value, self.zoom_size.value

    def _reset_zoom(self, size: int | None = None):
        """Bounds of the zoom sliders for the current image; the box on its busiest square."""
        from .figures import detail_crop

        h, w = self.hr.shape[:2]
        size = min(size or self.zoom_size.value, h, w)
        size, top, left = detail_crop(self.hr, max(size, self.scale), self.scale)
        self._quiet = True
        try:
            self.zoom_size.max = max(8, min(h, w))
            self.zoom_size.value = size
            self.zoom_x.max, self.zoom_y.max = max(0, w - size), max(0, h - size)
            self.zoom_x.value, self.zoom_y.value = min(left, w - size), min(top, h - size)
        finally:
            self._quiet = False

    def _on_image(self, change):
        self._reset_zoom()
        self.render()

    def _on_change(self, change):
        if self._quiet:
            return
        if change["owner"] is self.zoom_size:  # keep the box inside the image
            h, w = self.hr.shape[:2]
            size = min(self.zoom_size.value, h, w)
            self._quiet = True
            try:
                self.zoom_x.max, self.zoom_y.max = max(0, w - size), max(0, h - size)
            finally:
                self._quiet = False
        self.render()

    # ---- pictures -----------------------------------------------------------------------
    def panel(self, method: str) -> np.ndarray:
        """What one side shows for ``method`` on the current image: its reconstruction, or its
        difference map when the toggle is on."""
        img = self.cache.get(method, self.image.value)
        return difference_map(img, self.hr, self.diff_gain) if self.diff.value else img

    def view_array(self, overlays: bool = True) -> np.ndarray:
        """The swipe view: left side before the cut, right side from it; with ``overlays`` the cut
        line and the zoom box outline."""
        left, right = self.panel(self.left.value), self.panel(self.right.value)
        width = left.shape[1]
        cut = int(round(self.swipe.value / 100 * width))
        out = right.copy()
        out[:, :cut] = left[:, :cut]
        if overlays:
            top, lft, size = self.box()
            out[top, lft:lft + size] = out[top + size - 1, lft:lft + size] = BOX
            out[top:top + size, lft] = out[top:top + size, lft + size - 1] = BOX
            if 0 < cut < width:
                out[:, cut] = LINE
        return out

    def zoom_factor(self) -> int:
        return max(1, self.zoom_px // self.zoom_size.value)

    def crop_arrays(self) -> dict[str, np.ndarray]:
        """``{label: enlarged crop}`` of the zoom box for the HR and every method (panels as shown)."""
        top, left, size = self.box()
        f = self.zoom_factor()
        return {m: enlarge(self.panel(m)[top:top + size, left:left + size], f) for m in (HR, *self.cache.methods)}

    def crop_psnr(self) -> dict[str, float]:
        """PSNR (dB, Y, no shave) of each method's crop against the HR crop (of the reconstructions)."""
        from ..metrics import psnr

        top, left, size = self.box()
        hr = self.hr[top:top + size, left:left + size]
        return {m: psnr(np.ascontiguousarray(self.cache.get(m, self.image.value)[top:top + size, left:left + size]),
                        np.ascontiguousarray(hr), 0) for m in self.cache.methods}

    def strip_array(self) -> np.ndarray:
        """The crops side by side, ``per_row`` a row, each under a caption (label, crop PSNR)."""
        crops, scores = self.crop_arrays(), self.crop_psnr()
        ch, cw = next(iter(crops.values())).shape[:2]
        cols = min(self.per_row, len(crops))
        rows = -(-len(crops) // cols)
        gap = 4
        canvas = PILImage.new("RGB", (cols * (cw + gap) - gap, rows * (ch + CAPTION_H + gap) - gap), "white")
        draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
        for i, (label, crop) in enumerate(crops.items()):
            x, y = (i % cols) * (cw + gap), (i // cols) * (ch + CAPTION_H + gap)
            canvas.paste(PILImage.fromarray(crop), (x, y + CAPTION_H))
            score = "ground truth" if label == HR else f"{scores[label]:.2f} dB"
            draw.text((x + 2, y + 1), _fit(draw, label, font, cw - 4), fill="black", font=font)
            draw.text((x + 2, y + CAPTION_H // 2), score, fill="dimgray", font=font)
        return np.asarray(canvas)

    def title(self) -> str:
        top, left, size = self.box()
        what = f"difference to HR x{self.diff_gain:g}" if self.diff.value else "reconstructions"
        return (f"{self.image.value}: {self.left.value} | {self.right.value} at {self.swipe.value}% ({what}); "
                f"zoom box {size}x{size} at ({left}, {top}), shown x{self.zoom_factor()}")

    def render(self):
        """Recompute the view, the strip and the caption from the controls."""
        view, strip = self.view_array(), self.strip_array()
        # shown pixel for pixel (the default CSS would stretch the picture to the output's width)
        self.view.width, self.crops.width = str(view.shape[1]), str(strip.shape[1])
        self.view.value, self.crops.value = to_png(view), to_png(strip)
        self.caption.value = f"<b>{_html(self.title())}</b>"

    def snapshot(self) -> np.ndarray:
        """The current state as one picture: a title line, the view, and the crop strip below."""
        view, strip = self.view_array(), self.strip_array()
        width = max(view.shape[1], strip.shape[1])
        canvas = PILImage.new("RGB", (width, 20 + view.shape[0] + 8 + strip.shape[0]), "white")
        ImageDraw.Draw(canvas).text((2, 4), self.title(), fill="black", font=ImageFont.load_default())
        canvas.paste(PILImage.fromarray(view), (0, 20))
        canvas.paste(PILImage.fromarray(strip), (0, 20 + view.shape[0] + 8))
        return np.asarray(canvas)

    def to_png(self) -> bytes:
        """:meth:`snapshot` as PNG bytes."""
        return to_png(self.snapshot())

    def save(self, path) -> "Path":
        """Write :meth:`to_png` to ``path`` (atomically); returns the path."""
        from pathlib import Path

        from ..fileio import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, keep_suffix=True) as tmp:
            Path(tmp).write_bytes(self.to_png())
        return path

    # ---- display ------------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """The widget view (live) and a PNG of the current state (the static twin)."""
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs) or {})
        bundle["image/png"] = base64.b64encode(self.to_png()).decode("ascii")
        bundle["text/plain"] = f"SwipeComparer({self.title()})"
        return bundle


def _fit(draw, text: str, font, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _html(text: str) -> str:
    import html

    return html.escape(text)

