"""Notebook 07 end to end, once: it runs under smoke (papermill, as ``make reproduce`` runs it), its
exported HTML shows the comparer's static twin, and in a real browser the comparer answers.

The browser: headless Chromium from Debian's packages (``/usr/bin/chromium``), driven by Selenium
through ``/usr/bin/chromedriver`` (given explicitly, so Selenium downloads nothing), opening the
executed notebook served by Voila on 127.0.0.1 (Voila runs it in a kernel, as a reader would).
The test moves the swipe slider and the left model picker and checks that the picture shown
changed each time (the screenshot of the image element differs), and saves its screenshots under
``results/smoke/browser/`` of the project the notebook ran in. It skips, saying why, only where
Chromium, chromedriver, Selenium or Voila are missing (``.ci/run`` installs Chromium with apt-get,
``make`` the Python packages).

In a scratch project no study has run, so the notebook shows bicubic and the official weights and
says that each paper figure is skipped and why; ``make reproduce`` runs 02-06 first."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from srlib.pipeline import reproduce

pytestmark = pytest.mark.slow

NB = "07_visual_comparisons.ipynb"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1200")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def executed(tmp_path_factory, data_dir):
    """A scratch project (``SRLIB_PROJECT_DIR``) holding notebook 07, run under smoke."""
    from srlib.paths import notebooks_dir

    project = tmp_path_factory.mktemp("proj07")
    (project / "notebooks").mkdir()
    (project / "pyproject.toml").write_text("")
    (project / "notebooks" / NB).write_bytes((notebooks_dir() / NB).read_bytes())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRLIB_PROJECT_DIR", str(project))
        t0 = time.perf_counter()
        runs = reproduce("smoke", only=["07"], log=lambda *a: None)
        yield project, runs, time.perf_counter() - t0


def _comparer_output(nb) -> dict:
    """The first output that carries both the widget view and a PNG (the comparer and its twin)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}) and "image/png" in out["data"]:
                return out["data"]
    raise AssertionError("no output holds a widget view with a PNG beside it")


def test_notebook_07_runs_under_smoke(executed):
    project, runs, seconds = executed
    assert [r.status for r in runs] == ["ok"], runs[0].error
    print(f"notebook 07 under smoke: {seconds:.0f} s")
    for name in ("07_comparer", "07_comparer_difference"):
        assert (project / "figures" / "smoke" / f"{name}.png").stat().st_size > 5_000
    out = project / "results" / "smoke" / "notebooks"
    nb = nbformat.read(out / NB, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for title in ("seed 000 Fig. 4", "seed 003 Figs 5-6", "seed 002 Fig. 2"):  # no study ran here
        assert f"{title} skipped: study " in text and "trains it" in text
    # the static twin: the exported HTML shows the comparer's PNG (no widget state, so no widget view)
    png = "".join(_comparer_output(nb)["image/png"].split())
    html = (out / NB.replace(".ipynb", ".html")).read_text()
    assert f'src="data:image/png;base64,{png}"' in "".join(html.split("\n"))
    assert WIDGET_VIEW not in html


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Until the server accepts connections (a GET of the page would already run the notebook)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}; see voila.log beside the screenshots")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"voila did not listen on port {port} within {timeout:.0f} s")


def _browser_or_skip():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.skip(f"Chromium is not installed ({', '.join(missing)} missing): apt-get install chromium "
                    "chromium-driver (.ci/run does it as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[dev]'")
    pytest.importorskip("voila", reason="voila is not installed: pip install -e '.[dev]'")
    return webdriver


def test_the_comparer_answers_in_a_real_browser(executed):
    project, runs, _ = executed
    webdriver = _browser_or_skip()
    from PIL import Image
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    assert runs[0].status == "ok", runs[0].error
    shots = project / "results" / "smoke" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    served = project / "results" / "smoke" / "notebooks" / NB
    with open(shots / "voila.log", "w") as log:
        voila = subprocess.Popen([sys.executable, "-m", "voila", str(served), "--no-browser", "--Voila.ip=127.0.0.1",
                                  f"--port={port}", "--show_tracebacks=True"], env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
    driver = None
    try:
        _wait_listening(port, voila)
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='srlib-chromium-')}"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
        driver.get(url)  # Voila runs the notebook in a kernel, then shows its outputs
        view = WebDriverWait(driver, 180).until(lambda d: d.find_element(By.CSS_SELECTOR, "img.srlib-view"))

        def shot(name: str) -> np.ndarray:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", view)
            time.sleep(0.3)
            driver.save_screenshot(str(shots / f"{name}_page.png"))
            png = view.screenshot_as_png
            (shots / f"{name}_view.png").write_bytes(png)
            return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)

        def changed(before: np.ndarray, after: np.ndarray) -> float:
            assert before.shape == after.shape, (before.shape, after.shape)
            return float((np.abs(before - after).sum(axis=2) > 0).mean())

        start, src = shot("1_start"), view.get_attribute("src")
        assert start.shape[:2] == (512, 512)  # Set5 baby at x4, shown pixel for pixel

        handle = driver.find_element(By.CSS_SELECTOR, ".srlib-swipe .noUi-handle")
        ActionChains(driver).click_and_hold(handle).move_by_offset(-60, 0).release().perform()
        WebDriverWait(driver, 60).until(lambda d: view.get_attribute("src") != src)
        readout = int(driver.find_element(By.CSS_SELECTOR, ".srlib-swipe .widget-readout").text)
        assert readout < 50
        swiped, src = shot("2_swiped"), view.get_attribute("src")
        assert changed(start, swiped) > 0.05  # the columns between the two cuts changed method

        Select(driver.find_element(By.CSS_SELECTOR, ".srlib-left select")).select_by_value("HR")
        WebDriverWait(driver, 60).until(lambda d: view.get_attribute("src") != src)
        picked = shot("3_left_is_hr")
        assert changed(swiped, picked) > 0.01  # left of the cut: bicubic -> HR
        title = driver.find_element(By.CSS_SELECTOR, ".srlib-comparer .widget-html").text
        assert title.startswith("Set5 baby: HR | ") and f"at {readout}%" in title
        (shots / "summary.json").write_text(json.dumps({"swipe": readout, "changed_by_swipe": changed(start, swiped),
                                                        "changed_by_picker": changed(swiped, picked)}))
    finally:
        if driver is not None:
            driver.quit()
        voila.terminate()
        try:
            voila.wait(timeout=30)
        except subprocess.TimeoutExpired:
            voila.kill()
