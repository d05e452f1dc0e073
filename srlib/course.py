"""Course copies of the notebooks: exercises, their checkers, and the student copies.

A code cell of notebooks 02-05 tagged ``exercise`` (cell metadata ``tags: ["exercise"]``) holds
something a student writes: a block's forward, a loss, a learning-rate schedule, each as a short
computation that assigns named results from inputs the cells before it give. In the full notebook
it holds the reference solution, after a leading comment block that states the task. The cell
after it calls one ``check_*`` function of this module, which recomputes the same quantity with
srlib's own implementation on the same inputs and prints ``correct``, or raises
:class:`ExerciseFailed` (an ``AssertionError``) saying what differs, by how much, and a hint; where
the answer matches a known slip (a missing scalar, no restart, the other criterion) it names it.

:func:`write_student_copies` (``make student``, or ``python -m srlib.course notebooks
notebooks/student``) writes a copy of each notebook that holds an exercise, outputs cleared, a
note cell after the title, and each exercise cell replaced by a stub: the task comment, a line
naming what to assign and the check that reads it, and ``name = ...  # your code here`` for each
name the check reads, so the check fails with "not written yet" until the student writes it.
Copies are deterministic (nbformat's sorted JSON; byte-identical on a rerun) and written
atomically; a copy whose bytes would not change is left alone.

Readings chosen: the stub keeps the solution's ``import`` lines (they name the tools, not the
answer) and stubs only the names the check reads (a solution's intermediate names are the
student's to choose). Checks compare in float64 with a per-check tolerance.
"""
from __future__ import annotations

import argparse
import ast
import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .fileio import atomic_write_text
from .losses import L1Loss, discriminator_loss, generator_loss

EXERCISE_TAG = "exercise"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"  # the numbered notebooks, as srlib.pipeline runs them
STUB_VALUE = "...  # your code here"
NOTE_ID = "student-copy-note"


class ExerciseFailed(AssertionError):
    """An exercise's result differs from srlib's; the message says what, by how much, and a hint."""


# ---- comparing a student's value with srlib's ------------------------------------------------
def _written(name: str, value) -> None:
    if value is ... or value is None:
        raise ExerciseFailed(f"`{name}` is not written yet (it is still {value!r}): replace the `...` after "
                             f"`{name} =` in the exercise cell above with your code, run that cell, then this one.")


def _as_tensor(name: str, value, want: torch.Tensor) -> torch.Tensor:
    _written(name, value)
    try:
        got = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ExerciseFailed(f"`{name}` should be numbers like {tuple(want.shape)}, got a {type(value).__name__} "
                             f"({exc})") from None
    if got.numel() == want.numel() == 1:
        return got.reshape(want.shape)
    if got.shape != want.shape:
        kind = "a list" if want.dim() == 1 else "a tensor"
        raise ExerciseFailed(f"`{name}` has shape {tuple(got.shape)}, expected {kind} of shape {tuple(want.shape)}.")
    return got


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    return bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def _compare(name: str, value, want, what: str, hint: str, slips: dict | None = None,
             rtol: float = 1e-4, atol: float = 1e-6, index: str = "index") -> float:
    """Largest |difference| of ``value`` and ``want`` (srlib's); raise :class:`ExerciseFailed` when
    they differ beyond the tolerance, naming a slip of ``slips`` (``{description: value}``) the
    answer matches."""
    want = torch.as_tensor(want.detach() if isinstance(want, torch.Tensor) else want, dtype=torch.float64)
    got = _as_tensor(name, value, want)
    if not torch.isfinite(got).all():
        raise ExerciseFailed(f"`{name}` holds non-finite values (nan or inf). Hint: {hint}")
    diff = (got - want).abs()
    if _close(got, want, rtol, atol):
        return float(diff.max()) if diff.numel() else 0.0
    where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape)) if diff.dim() else ()
    n_bad = int((diff > atol + rtol * want.abs()).sum())
    at = f" at {index} {where[0] if len(where) == 1 else where}" if where else ""
    msg = (f"`{name}` differs from {what}: largest |difference| {float(diff.max()):.3g}{at} (yours "
           f"{float(got[where]):.6g}, srlib {float(want[where]):.6g}); {n_bad} of {want.numel()} value(s) outside the "
           f"tolerance (rtol {rtol:g}, atol {atol:g}).")
    for slip, alt in (slips or {}).items():
        alt = torch.as_tensor(alt.detach() if isinstance(alt, torch.Tensor) else alt, dtype=torch.float64)
        if alt.shape == got.shape and _close(got, alt, rtol, atol):
            msg += f" Your values equal {slip}."
            break
    raise ExerciseFailed(f"{msg} Hint: {hint}")


def _correct(names: str, what: str, diff: float) -> None:
    print(f"correct: {names} match{'es' if ',' not in names else ''} {what} (largest |difference| {diff:.1e})")


# ---- notebook 02: AWRU and AWMS ---------------------------------------------------------------
def check_awru(awru, feat: torch.Tensor, y) -> None:
    """``y`` against ``awru(feat)`` (AWSRN Sec. 3: ``l_res conv2(relu(conv1(x))) + l_x x``)."""
    with torch.no_grad():
        body = awru.conv2(F.relu(awru.conv1(feat)))
        slips = {"the unit without its two adaptive scalars (body + x)": body + feat,
                 "the scalars swapped (l_x on the body, l_res on x)":
                 awru.x_scale.scale * body + awru.res_scale.scale * feat,
                 "the body alone, without the residual x": awru.res_scale.scale * body}
        diff = _compare("y", y, awru(feat), "AWRU.forward(feat)",
                        "y = l_res * conv2(relu(conv1(feat))) + l_x * feat, with l_res = awru.res_scale.scale and "
                        "l_x = awru.x_scale.scale (both learnable, shape (1,)).", slips)
    _correct("y", "AWRU.forward(feat)", diff)


def check_awms(awms, feat: torch.Tensor, y) -> None:
    """``y`` against ``awms(feat)`` (AWSRN Sec. 3: ``pixel_shuffle(sum_k w_k conv_k(x))``)."""
    with torch.no_grad():
        outs = {k: c(feat) for k, c in awms.convs.items()}
        slips = {"the unweighted sum of the branches (the adaptive weights left out)":
                 F.pixel_shuffle(sum(outs.values()), awms.scale),
                 "the mean of the branches (equal weights, not the learned ones)":
                 F.pixel_shuffle(sum(outs.values()) / len(outs), awms.scale)}
        diff = _compare("y", y, awms(feat), "AWMS.forward(feat)",
                        "y = F.pixel_shuffle(sum of awms.weights[k].scale * awms.convs[k](feat) over the branches k, "
                        "awms.scale); the shuffle turns 3 s^2 channels at LR size into 3 at HR size.", slips)
    _correct("y", "AWMS.forward(feat)", diff)


# ---- notebook 03: the AWRU with global-context weights (seed 000 Eq. 1-2) ---------------------
def check_gap_awru(unit, x: torch.Tensor, w_res, w_x, y) -> None:
    """``w_res, w_x`` against ``unit.weights(x)`` and ``y`` against ``unit(x)`` (GlobalContextAWRU)."""
    with torch.no_grad():
        z_res, z_x = unit.context(x.mean(dim=(2, 3), keepdim=True)).chunk(2, dim=1)
        want_res, want_x = unit.weights(x)
        hint_w = ("[z_res, z_x] = unit.context(mean of x over H and W, keepdim).chunk(2, dim=1); "
                  "w_res = unit.res_scale.scale * 2 * sigmoid(z_res), w_x = unit.x_scale.scale * 2 * sigmoid(z_x), "
                  "each (N, C, 1, 1).")
        d1 = _compare("w_res", w_res, want_res, "GlobalContextAWRU.weights(x)[0]", hint_w,
                      {"the weights without the factor 2": unit.res_scale.scale * torch.sigmoid(z_res),
                       "the weights without the scalar l_res": 2 * torch.sigmoid(z_res)})
        d2 = _compare("w_x", w_x, want_x, "GlobalContextAWRU.weights(x)[1]", hint_w,
                      {"the weights without the factor 2": unit.x_scale.scale * torch.sigmoid(z_x),
                       "the weights without the scalar l_x": 2 * torch.sigmoid(z_x)})
        body = unit.conv2(F.relu(unit.conv1(x)))
        d3 = _compare("y", y, unit(x), "GlobalContextAWRU.forward(x)",
                      "y = conv2(relu(conv1(x))) * w_res + x * w_x, the weights broadcast over H and W.",
                      {"the plain AWRU (the scalars alone, no context)":
                       unit.res_scale.scale * body + unit.x_scale.scale * x})
    _correct("w_res, w_x, y", "GlobalContextAWRU", max(d1, d2, d3))


# ---- notebook 04: the hybrid loss (seed 000 Eq. 13-15) ---------------------------------------
def check_hybrid_loss(recipe, percep, sr: torch.Tensor, hr: torch.Tensor, d_sr: torch.Tensor, d_hr: torch.Tensor,
                      *, l_pix, l_percep, l_adv, loss) -> None:
    """The three terms and the weighted sum against srlib's ``L1Loss``, ``percep`` (a
    :class:`~srlib.losses.PerceptualLoss`) and :func:`~srlib.losses.generator_loss`."""
    w = recipe.weights
    with torch.no_grad():
        want = {"l_pix": L1Loss()(sr, hr), "l_percep": percep(sr, hr) / percep.loss_weight,
                "l_adv": generator_loss(recipe.gan_type, d_sr, d_hr)}
        f_sr, f_hr = percep.vgg(sr), percep.vgg(hr)
        other = "l2" if percep.criterion == "l1" else "l1"
        kind = "absolute" if percep.criterion == "l1" else "squared"
        dist = {"l1": F.l1_loss, "l2": F.mse_loss}[other]
        slips = {"l_pix": {"the mean squared error, not the mean absolute one": F.mse_loss(sr, hr)},
                 "l_percep": {f"the '{other}' distance (the recipe's criterion is '{percep.criterion}')":
                              sum(lw * dist(f_sr[k], f_hr[k]) for k, lw in percep.layer_weights.items())},
                 "l_adv": {"the discriminator's loss, not the generator's":
                           discriminator_loss(recipe.gan_type, d_hr, d_sr),
                           "the vanilla (non-relativistic) generator loss": generator_loss("vanilla", d_sr)}}
        hints = {"l_pix": "the mean absolute difference of sr and hr over every element.",
                 "l_percep": (f"for each layer k of R.layers, its weight times the mean {kind} difference of "
                              f"feats_sr[k] and feats_hr[k] (criterion '{percep.criterion}'), summed over the layers."),
                 "l_adv": ("relativistic average GAN, generator side (ESRGAN Eq. 2): with -log sigmoid(z) = "
                           "softplus(-z) and -log(1 - sigmoid(z)) = softplus(z): mean softplus(d_hr - mean d_sr) + "
                           "mean softplus(-(d_sr - mean d_hr)).") if recipe.gan_type == "ragan" else
                          f"srlib.losses.generator_loss('{recipe.gan_type}', d_sr, d_hr)."}
        diffs = []
        for name, value in (("l_pix", l_pix), ("l_percep", l_percep), ("l_adv", l_adv)):
            diffs.append(_compare(name, value, want[name], f"srlib's {name[2:]} term", hints[name], slips[name]))
        total = sum(w[k] * want[n] for k, n in (("pixel", "l_pix"), ("perceptual", "l_percep"),
                                                ("adversarial", "l_adv")))
        diffs.append(_compare("loss", loss, total, "Eq. 15's weighted sum of srlib's terms",
                              "loss = R.weights['pixel'] * l_pix + R.weights['perceptual'] * l_percep + "
                              "R.weights['adversarial'] * l_adv.",
                              {"the unweighted sum of the terms": want["l_pix"] + want["l_percep"] + want["l_adv"]}))
    _correct("l_pix, l_percep, l_adv, loss", "srlib's hybrid loss", max(diffs))


# ---- notebook 05: the two schedules of Table 2 (seed 003 Eq. 13) ------------------------------
def check_schedules(steps: int, lr: float, *, lrs_step, lrs_cos) -> None:
    """``lrs_step`` / ``lrs_cos`` against the torch schedulers the trainer builds for Table 2's
    arms (:func:`srlib.studies.imfm.lr_curves`), one learning rate per step."""
    from .studies import imfm

    want = imfm.lr_curves(steps, lr)
    sch = imfm.schedules(steps)
    size, t0 = sch["step"]["step_size"], sch["cos"]["T_0"]
    ts = range(steps)
    d1 = _compare("lrs_step", _as_list("lrs_step", lrs_step, steps), want["step"], "StepLR's rates",
                  f"lrs_step[t] = lr * 0.5 ** (t // step_size), step_size = max(1, steps // 5) = {size}.",
                  {"a halving every step_size + 1 steps": [lr * 0.5 ** (t // (size + 1)) for t in ts],
                   "the schedule one step ahead (the rate after step t, not at it)":
                   [lr * 0.5 ** ((t + 1) // size) for t in ts]},
                  rtol=1e-6, atol=1e-12, index="step")
    cos = [_cos(t, lr, t0) for t in ts]
    d2 = _compare("lrs_cos", _as_list("lrs_cos", lrs_cos, steps), want["cos"], "CosineAnnealingWarmRestarts' rates",
                  f"Eq. 13 with eta_min 0: lrs_cos[t] = lr * (1 + cos(pi * T_cur / T_0)) / 2, "
                  f"T_0 = max(1, steps // 4) = {t0}, T_cur = t % T_0 (the steps since the last restart).",
                  {"one cosine over the whole run (no warm restarts: T_cur must restart at 0 every T_0 steps)":
                   [_cos(t, lr, steps) for t in ts],
                   "the schedule one step ahead (the rate after step t, not at it)": cos[1:] + [_cos(steps, lr, t0)],
                   "cos(T_cur / T_0) without the factor pi": [lr * (1 + math.cos((t % t0) / t0)) / 2 for t in ts]},
                  rtol=1e-6, atol=1e-12, index="step")
    _correct("lrs_step, lrs_cos", f"the trainer's schedulers over {steps} steps", max(d1, d2))


def _cos(t: int, lr: float, period: int) -> float:
    return lr * (1 + math.cos(math.pi * (t % period) / period)) / 2


def _as_list(name: str, value, steps: int) -> list[float]:
    _written(name, value)
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ExerciseFailed(f"`{name}` should be a list of {steps} learning rates, got a {type(value).__name__} "
                             f"({exc})") from None
    if len(out) != steps:
        raise ExerciseFailed(f"`{name}` has {len(out)} values, expected one per step: {steps} (t = 0 .. {steps - 1}); "
                             "hint: build it as [... for t in range(steps)].")
    return out


# ---- the student copies -----------------------------------------------------------------------
@dataclass(frozen=True)
class Exercise:
    """One ``exercise`` cell: where it is, its task comment, the names its check reads, the check."""

    notebook: str
    index: int
    cell_id: str
    task: str
    imports: tuple[str, ...]
    assigns: tuple[str, ...]
    checker: str
    check_call: str
    source: str
    check_source: str


def is_exercise(cell) -> bool:
    return cell.cell_type == "code" and EXERCISE_TAG in cell.metadata.get("tags", [])


def _check_call(source: str) -> ast.Call | None:
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("check_")
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "course"):
            return node
    return None


def _assigned(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name) and n.id not in names:
                    names.append(n.id)
    return names


def exercises(nb, name: str = "notebook") -> list[Exercise]:
    """The exercises of ``nb``; a ``ValueError`` naming the cell when one is not followed by a
    check cell (``course.check_*(...)``), has no task comment, or assigns nothing its check reads."""
    out = []
    for i, cell in enumerate(nb.cells):
        if not is_exercise(cell):
            continue
        where = f"{name}, cell {i} (id {cell.get('id')})"
        nxt = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        call = _check_call(nxt.source) if nxt is not None and nxt.cell_type == "code" else None
        if call is None or call.func.attr not in globals():
            raise ValueError(f"{where}: an exercise cell must be followed by a code cell calling one of srlib.course's "
                             f"checks, e.g. course.check_awru(...); found "
                             f"{'nothing' if nxt is None else repr(nxt.source[:60])}")
        lines = cell.source.splitlines()
        task = []
        for line in lines:
            if not line.startswith("#"):
                break
            task.append(line)
        tree = ast.parse(cell.source)
        read = {n.id for n in ast.walk(ast.parse(nxt.source)) if isinstance(n, ast.Name)}
        assigns = tuple(n for n in _assigned(tree) if n in read)
        if not task or not assigns:
            raise ValueError(f"{where}: an exercise cell starts with a comment block saying what to write and assigns "
                             f"the names its check reads (task: {len(task)} lines, names read: {sorted(read)})")
        imports = tuple(ast.get_source_segment(cell.source, n) for n in tree.body
                        if isinstance(n, (ast.Import, ast.ImportFrom)))
        out.append(Exercise(name, i, cell.get("id", ""), "\n".join(task), imports, assigns, call.func.attr,
                            ast.get_source_segment(nxt.source, call), cell.source, nxt.source))
    return out


def stub_source(ex: Exercise) -> str:
    """The student's version of an exercise cell: the task, what to assign and how it is checked,
    the solution's imports, and ``name = ...`` for each name the check reads."""
    names = ", ".join(f"`{n}`" for n in ex.assigns)
    call = " ".join(ex.check_call.split())
    lines = [ex.task, "#",
             f"# Assign {names}. The next cell checks {'them' if len(ex.assigns) > 1 else 'it'} with",
             f"#     {call}",
             "# against srlib's own implementation on the same inputs: it prints `correct`, or says what",
             "# differs, by how much, and gives a hint. The full notebook holds a solution.",
             *ex.imports]
    lines += [""] * bool(ex.imports) + [f"{n} = {STUB_VALUE}" for n in ex.assigns]
    return "\n".join(lines)


def _note(source_name: str, n: int) -> str:
    return (f"> **Student copy** of `notebooks/{source_name}`, written by `make student` (do not edit it by hand; "
            f"regenerate it). It holds {n} exercise{'s' if n != 1 else ''}: each is a code cell that starts with "
            "`# Exercise`, where you replace every `...` with your code; the cell after it checks your answer "
            "against srlib and prints `correct` or what differs. Run the cells in order.")


def student_copy(nb, name: str):
    """A copy of notebook ``nb`` (file name ``name``) with outputs cleared, a note cell after the
    first cell, and each exercise cell replaced by :func:`stub_source`."""
    exs = {ex.index: ex for ex in exercises(nb, name)}
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if i in exs:
            cell.source = stub_source(exs[i])
    from nbformat.v4 import new_markdown_cell

    out.cells.insert(1, new_markdown_cell(_note(name, len(exs)), id=NOTE_ID))
    return out


def student_notebooks(src: Path) -> list[tuple[Path, object]]:
    """``(path, notebook)`` of each numbered notebook in ``src`` that holds an exercise."""
    import nbformat

    out = []
    for path in sorted(Path(src).glob(NOTEBOOK_GLOB)):
        nb = nbformat.read(path, as_version=4)
        if any(is_exercise(c) for c in nb.cells):
            out.append((path, nb))
    return out


def render_student_copy(nb, name: str) -> str:
    """The copy's file text: nbformat's JSON (sorted keys, one-space indent) and a final newline,
    as the project's notebooks are stored."""
    import nbformat

    copy_ = student_copy(nb, name)
    nbformat.validate(copy_)
    return nbformat.writes(copy_) + "\n"


def write_student_copies(src: str | Path, dst: str | Path) -> list[tuple[Path, bool]]:
    """Write the student copy of each notebook of ``src`` that holds exercises into ``dst``;
    returns ``(path, changed)`` per copy (an unchanged copy is not rewritten)."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"no notebook folder {src}: pass the folder holding NN_*.ipynb (e.g. notebooks)")
    if dst.resolve() == src.resolve():
        raise ValueError(f"the student copies must go to another folder than the notebooks ({src}), "
                         "e.g. notebooks/student")
    notebooks = student_notebooks(src)
    if not notebooks:
        raise ValueError(f"no notebook in {src} has a cell tagged {EXERCISE_TAG!r}")
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for path, nb in notebooks:
        text, target = render_student_copy(nb, path.name), dst / path.name
        changed = not target.is_file() or target.read_text(encoding="utf-8") != text
        if changed:
            atomic_write_text(target, text)
        out.append((target, changed))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srlib.course", description="Write the student copies of the "
                                 "notebooks: outputs cleared, each exercise cell replaced by a stub.")
    ap.add_argument("src", type=Path, help="the notebook folder (notebooks)")
    ap.add_argument("dst", type=Path, help="where the copies go (notebooks/student)")
    args = ap.parse_args(argv)
    for path, changed in write_student_copies(args.src, args.dst):
        print(f"{'wrote' if changed else 'up to date'}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
