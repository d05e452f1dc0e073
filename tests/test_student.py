"""Course copies (srlib.course): every notebook 02-05 has an exercise followed by its check; the
solutions pass their checks and the stubs fail them with the checker's message; the checkers
name known slips; the student copies in notebooks/student are up to date, deterministic and lint-clean.
No notebook is executed: each exercise's cells run in a namespace of small given inputs."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from srlib import course
from srlib.course import ExerciseFailed
from srlib.losses import PerceptualLoss
from srlib.models.awsrn import AWMS, AWRU
from srlib.models.awsrn_improved import GlobalContextAWRU
from srlib.pipeline import list_notebooks
from srlib.profiles import get_profile
from srlib.studies import hybrid
from test_notebook_lint import notebook_problems

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS, STUDENT = ROOT / "notebooks", ROOT / "notebooks" / "student"
COURSE = ["02", "03", "04", "05"]


def _notebook(num: str) -> tuple[str, nbformat.NotebookNode]:
    (path,) = NOTEBOOKS.glob(f"{num}_*.ipynb")
    return path.name, nbformat.read(path, as_version=4)


def _all_exercises() -> list[course.Exercise]:
    return [ex for num in COURSE for ex in course.exercises(*reversed(_notebook(num)))]


# ---- the inputs each check needs, as the cells before the exercise give them (small) ----------
def _awru() -> dict:
    awru = AWRU(8, 16)
    torch.nn.init.constant_(awru.res_scale.scale, 0.5)
    torch.nn.init.constant_(awru.x_scale.scale, 1.2)
    return {"awru": awru, "feat": torch.rand(1, 8, 6, 5)}


def _awms() -> dict:
    awms = AWMS(8, 2)
    for k, w in zip(awms.weights, (0.4, 0.1, 0.3, 0.2)):
        torch.nn.init.constant_(awms.weights[k].scale, w)
    return {"awms": awms, "feat": torch.rand(1, 8, 6, 5)}


def _gap_awru() -> dict:
    unit = GlobalContextAWRU(8, 16)
    torch.nn.init.normal_(unit.context[-1].weight, std=0.5)
    torch.nn.init.constant_(unit.res_scale.scale, 0.8)
    return {"unit": unit, "x": torch.rand(2, 8, 6, 5)}


def _hybrid() -> dict:
    r = hybrid.recipe("smoke")
    hr = torch.rand(2, 3, 12, 12)
    sr = (hr + 0.05 * torch.randn_like(hr)).clamp(0, 1)
    percep = PerceptualLoss(layers=r.layers, criterion=r.criterion, weights="random")
    return {"R": r, "hr": hr, "sr": sr, "percep": percep, "feats_sr": percep.vgg(sr), "feats_hr": percep.vgg(hr),
            "d_sr": torch.randn(2, 1), "d_hr": torch.randn(2, 1) + 1}


def _schedules(steps: int = 23) -> dict:
    return {"steps": steps, "P": get_profile("smoke")}


GIVENS = {"check_awru": _awru, "check_awms": _awms, "check_gap_awru": _gap_awru, "check_hybrid_loss": _hybrid,
          "check_schedules": _schedules}


def _run(ex: course.Exercise, source: str, capsys) -> str:
    assert ex.checker in GIVENS, f"{ex.notebook}: give test_student.GIVENS the inputs of {ex.checker}"
    ns = {"torch": torch, **GIVENS[ex.checker]()}
    exec(compile(source, f"{ex.notebook} cell {ex.index}", "exec"), ns)
    exec(compile(ex.check_source, f"{ex.notebook} cell {ex.index + 1}", "exec"), ns)
    return capsys.readouterr().out


# ---- (b) every notebook 02-05 has an exercise and its check ------------------------------------
@pytest.mark.parametrize("num", COURSE)
def test_each_course_notebook_has_an_exercise_followed_by_its_check(num):
    name, nb = _notebook(num)
    exs = course.exercises(nb, name)
    assert exs, f"{name} has no cell tagged 'exercise'"
    for ex in exs:
        nxt = nb.cells[ex.index + 1]
        assert nxt.cell_type == "code" and f"course.{ex.checker}(" in nxt.source
        assert ex.task.startswith("# Exercise") and ex.assigns


# ---- (c) the solution passes its check, the stub fails it with the checker's message ------------
@pytest.mark.parametrize("ex", _all_exercises(), ids=lambda e: f"{e.notebook[:2]}-{e.cell_id}")
def test_the_solution_passes_and_the_stub_fails_with_the_checkers_message(ex, capsys):
    assert _run(ex, ex.source, capsys).startswith("correct: ")
    with pytest.raises(ExerciseFailed, match=rf"`{ex.assigns[0]}` is not written yet \(it is still Ellipsis\)"):
        _run(ex, course.stub_source(ex), capsys)


def test_the_schedule_solution_holds_for_runs_shorter_than_the_periods(capsys):
    (ex,) = course.exercises(*reversed(_notebook("05")))
    for steps in (1, 3, 4, 5, 11):
        GIVENS["check_schedules"] = lambda s=steps: _schedules(s)
        try:
            assert _run(ex, ex.source, capsys).startswith("correct")
        finally:
            GIVENS["check_schedules"] = _schedules


# ---- the checkers say what differs, by how much, and name known slips --------------------------
def test_the_awru_check_names_the_missing_scalars():
    g = _awru()
    awru, feat = g["awru"], g["feat"]
    with torch.no_grad():
        wrong = awru.conv2(torch.relu(awru.conv1(feat))) + feat
    with pytest.raises(ExerciseFailed) as err:
        course.check_awru(awru, feat, wrong)
    msg = str(err.value)
    assert "`y` differs from AWRU.forward(feat): largest |difference| " in msg
    assert "equal the unit without its two adaptive scalars" in msg and "Hint: y = l_res * conv2" in msg
    with pytest.raises(ExerciseFailed, match=r"`y` has shape \(8, 6, 5\), expected a tensor of shape \(1, 8, 6, 5\)"):
        course.check_awru(awru, feat, wrong[0])


def test_the_difference_reported_is_the_largest_and_where_it_is(capsys):
    g = _awru()
    with torch.no_grad():
        y = g["awru"](g["feat"])
    y[0, 3, 2, 1] += 0.25
    with pytest.raises(ExerciseFailed, match=r"largest \|difference\| 0\.25 at index \(0, 3, 2, 1\).* 1 of 240 value"):
        course.check_awru(g["awru"], g["feat"], y)
    y[0, 3, 2, 1] -= 0.25
    course.check_awru(g["awru"], g["feat"], y)
    assert capsys.readouterr().out.startswith("correct: y matches AWRU.forward(feat)")


def test_the_awms_check_names_the_unweighted_sum():
    g = _awms()
    awms, feat = g["awms"], g["feat"]
    with torch.no_grad():
        wrong = F.pixel_shuffle(sum(c(feat) for c in awms.convs.values()), awms.scale)
    with pytest.raises(ExerciseFailed, match="adaptive weights left out"):
        course.check_awms(awms, feat, wrong)


def test_the_gap_awru_check_names_a_missing_factor_and_the_plain_awru():
    g = _gap_awru()
    unit, x = g["unit"], g["x"]
    with torch.no_grad():
        w_res, w_x = unit.weights(x)
        z_res = unit.context(x.mean(dim=(2, 3), keepdim=True)).chunk(2, dim=1)[0]
        plain = unit.res_scale.scale * unit.conv2(torch.relu(unit.conv1(x))) + unit.x_scale.scale * x
    with pytest.raises(ExerciseFailed, match="`w_res` differs.*without the factor 2"):
        course.check_gap_awru(unit, x, unit.res_scale.scale * torch.sigmoid(z_res), w_x, unit(x))
    with pytest.raises(ExerciseFailed, match="`y` differs.*the plain AWRU"):
        course.check_gap_awru(unit, x, w_res, w_x, plain)


def test_the_hybrid_check_names_the_other_criterion_the_vanilla_gan_and_the_unweighted_sum():
    g = _hybrid()
    r, sr, hr, d_sr, d_hr = g["R"], g["sr"], g["hr"], g["d_sr"], g["d_hr"]
    assert r.criterion == "l1" and r.gan_type == "ragan"  # what the exercise's text says
    layer = next(iter(r.layers))
    l_pix = (sr - hr).abs().mean()
    l_percep = (g["feats_sr"][layer] - g["feats_hr"][layer]).abs().mean() * r.layers[layer]
    l_adv = F.softplus(d_hr - d_sr.mean()).mean() + F.softplus(-(d_sr - d_hr.mean())).mean()
    w = r.weights
    loss = w["pixel"] * l_pix + w["perceptual"] * l_percep + w["adversarial"] * l_adv
    args = (r, g["percep"], sr, hr, d_sr, d_hr)
    with pytest.raises(ExerciseFailed, match="`l_percep` differs.*the 'l2' distance"):
        course.check_hybrid_loss(*args, l_pix=l_pix, l_percep=F.mse_loss(g["feats_sr"][layer], g["feats_hr"][layer]),
                                 l_adv=l_adv, loss=loss)
    with pytest.raises(ExerciseFailed, match="`l_adv` differs.*vanilla"):
        course.check_hybrid_loss(*args, l_pix=l_pix, l_percep=l_percep, l_adv=F.softplus(-d_sr).mean(), loss=loss)
    with pytest.raises(ExerciseFailed, match="`loss` differs.*unweighted sum"):
        course.check_hybrid_loss(*args, l_pix=l_pix, l_percep=l_percep, l_adv=l_adv, loss=l_pix + l_percep + l_adv)
    course.check_hybrid_loss(*args, l_pix=l_pix.item(), l_percep=l_percep, l_adv=l_adv, loss=loss)  # floats are fine


def test_the_schedule_check_names_missing_restarts_a_shift_and_a_wrong_length():
    steps, lr = 23, 1e-3
    t0 = steps // 4  # 5: restarts at 5, 10, 15, 20
    good_step = [lr * 0.5 ** (t // (steps // 5)) for t in range(steps)]
    good_cos = [lr * (1 + math.cos(math.pi * (t % t0) / t0)) / 2 for t in range(steps)]
    no_restart = [lr * (1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps)]
    with pytest.raises(ExerciseFailed, match=r"`lrs_cos` differs.*at step \d+.*no warm restarts"):
        course.check_schedules(steps, lr, lrs_step=good_step, lrs_cos=no_restart)
    with pytest.raises(ExerciseFailed, match="`lrs_step` differs.*one step ahead"):
        ahead = [lr * 0.5 ** (t // (steps // 5)) for t in range(1, steps + 1)]  # t counted from 1
        course.check_schedules(steps, lr, lrs_step=ahead, lrs_cos=good_cos)
    with pytest.raises(ExerciseFailed, match=r"`lrs_cos` has 22 values, expected one per step: 23"):
        course.check_schedules(steps, lr, lrs_step=good_step, lrs_cos=good_cos[:-1])
    assert issubclass(ExerciseFailed, AssertionError)


# ---- (a) the copies in notebooks/student are up to date and deterministic ----------------------
def test_the_student_copies_are_up_to_date(tmp_path):
    written = course.write_student_copies(NOTEBOOKS, tmp_path)
    fresh = {p.name: p.read_bytes() for p, _ in written}
    stored = {p.name: p.read_bytes() for p in STUDENT.glob("*.ipynb")}
    assert sorted(fresh) == sorted(stored) == sorted(_notebook(n)[0] for n in COURSE), "run `make student`"
    stale = [name for name in fresh if fresh[name] != stored[name]]
    assert not stale, f"notebooks/student/{stale} differ from their notebooks: run `make student`"
    again = course.write_student_copies(NOTEBOOKS, tmp_path)
    assert [changed for _, changed in again] == [False] * len(fresh)  # a rerun rewrites nothing
    assert all(course.render_student_copy(*reversed(_notebook(n))) == fresh[_notebook(n)[0]].decode() for n in COURSE)


def test_a_copy_holds_the_stubs_no_solution_and_no_outputs():
    for num in COURSE:
        name, nb = _notebook(num)
        copy = nbformat.reads((STUDENT / name).read_text(encoding="utf-8"), as_version=4)
        assert len(copy.cells) == len(nb.cells) + 1 and copy.cells[1].id == course.NOTE_ID
        assert f"notebooks/{name}" in copy.cells[1].source
        for ex in course.exercises(nb, name):
            stub = copy.cells[ex.index + 1]
            assert stub.source == course.stub_source(ex) and course.is_exercise(stub)
            assert copy.cells[ex.index + 2].source == ex.check_source
            solution = [ln for ln in ex.source.splitlines() if ln and not ln.startswith(("#", "import", "from"))]
            code = [ln for ln in stub.source.splitlines() if not ln.startswith("#")]
            assert solution and not set(solution) & set(code)
        code_cells = [c for c in copy.cells if c.cell_type == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code_cells)


# ---- (d) the lint holds for the copies; the pipeline does not run them --------------------------
@pytest.mark.parametrize("num", COURSE)
def test_the_student_copies_pass_the_notebook_lint(num):
    name = _notebook(num)[0]
    problems = notebook_problems(nbformat.read(STUDENT / name, as_version=4))
    assert not problems, f"student/{name}:\n  " + "\n  ".join(problems)


def test_the_pipeline_and_the_lint_list_only_the_numbered_notebooks():
    found = list_notebooks(NOTEBOOKS)
    assert found and all(p.parent == NOTEBOOKS for p in found)


# ---- errors a notebook author can cause --------------------------------------------------------
def test_an_exercise_without_a_check_or_a_task_is_refused(tmp_path):
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("y = 1", metadata={"tags": ["exercise"]}), v4.new_code_cell("print(y)")]
    with pytest.raises(ValueError, match="cell 0 .*must be followed by a code cell calling one of srlib.course's"):
        course.exercises(nb, "x.ipynb")
    nb.cells[1].source = "course.check_awru(awru, feat, y)"
    with pytest.raises(ValueError, match="starts with a comment block saying what to write"):
        course.exercises(nb, "x.ipynb")
    with pytest.raises(ValueError, match="another folder than the notebooks"):
        course.write_student_copies(NOTEBOOKS, NOTEBOOKS)
    with pytest.raises(ValueError, match="no notebook in .* has a cell tagged 'exercise'"):
        course.write_student_copies(tmp_path, tmp_path / "student")
