"""A researcher's first hour, in a real browser: JupyterLab (started by ``make lab``, as root where CI runs)
opens a ``.py`` notebook as a notebook on a plain open, opens an executed run record, and runs
all cells of a visualization notebook with its defaults, as a fresh clone has it: no error, its
figures drawn, and, where ``runs/cpu`` holds no main-job models, the published reference models of
``results/models`` (one line naming their commit, no untrained banner).

Debian's Chromium and its driver drive it (``.ci/run`` installs them). Without them the test is
skipped with the command that installs them. Screenshots land in ``runs/browser_test/`` (or
``$DISTILKIT_ARTIFACTS``) as artifacts.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from distilkit.experiments.figure_models import main_job_checkpoints
from distilkit.viz.session import UNTRAINED_BANNER
from lab_server import REPO, lab_server

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [pytest.mark.notebook, pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's Chromium and driver: apt-get install chromium chromium-driver")]
RUN_ALL_TIMEOUT_S = 420


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("DISTILKIT_ARTIFACTS", REPO / "runs" / "browser_test"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1600,1100", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)  # no driver download
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, smoke_root) -> Path:
    """A copy of the notebooks and one executed run record (a smoke train_eval run)."""
    import papermill as pm

    from distilkit.experiments.runner import KERNEL_ARGS, notebook_ipynb

    root = tmp_path_factory.mktemp("lab_root")
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("*.ipynb"))
    run = root / "runs" / "smoke_run"
    run.mkdir(parents=True)
    pm.execute_notebook(str(notebook_ipynb("train_eval", root / "nb_cache")), str(run / "train_eval.ipynb"),
                        parameters=dict(profile="smoke", data_root=str(smoke_root), epochs=1, out_dir=str(run),
                                        progress=False),
                        kernel_name="python3", progress_bar=False, cwd=str(root / "notebooks"),
                        extra_arguments=KERNEL_ARGS)
    return root


def _wait(driver, css: str, timeout: float = 90.0, minimum: int = 1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.find_elements("css selector", css)
        if len(found) >= minimum:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {css!r} (at least {minimum}) within {timeout:.0f} s")


def _menu(driver, menu: str, item: str) -> None:
    driver.find_element("xpath", f"//div[contains(@class,'lm-MenuBar-itemLabel') and text()='{menu}']").click()
    _wait(driver, ".lm-Menu-content")
    driver.find_element("xpath", f"//div[contains(@class,'lm-Menu-itemLabel') and text()='{item}']").click()


def _errors(driver) -> list[str]:
    return [e.text[:300] for e in driver.find_elements(
        "css selector", "[data-mime-type='application/vnd.jupyter.error'], .jp-Dialog-content")]


def test_a_py_notebook_opens_as_a_notebook_and_a_run_record_opens(browser, workspace, tmp_path, artifacts):
    with lab_server(workspace, tmp_path) as lab:
        browser.get(lab.url("notebooks/viz_heatmaps.py"))         # a plain open: the default viewer
        cells = _wait(browser, ".jp-NotebookPanel .jp-Cell", minimum=4)
        browser.save_screenshot(str(artifacts / "py_notebook_opened.png"))
        assert len(cells) >= 4 and not browser.find_elements("css selector", ".jp-FileEditor")
        browser.get(lab.url("runs/smoke_run/train_eval.ipynb"))    # an executed run record
        outputs = _wait(browser, ".jp-NotebookPanel .jp-OutputArea-output", minimum=2)
        browser.save_screenshot(str(artifacts / "run_record_opened.png"))
        assert outputs and _errors(browser) == []
        assert _wait(browser, ".jp-NotebookPanel .jp-RenderedImage img")   # its learning curves


def test_run_all_of_a_viz_notebook_renders_the_published_models_without_error(
        browser, workspace, tmp_path, artifacts, smoke_root):
    with lab_server(workspace, tmp_path, env={"OMP_NUM_THREADS": "1"}) as lab:   # DISTILKIT_DATA: smoke_root
        browser.get(lab.url("notebooks/viz_heatmaps.py"))
        _wait(browser, ".jp-NotebookPanel .jp-Cell", minimum=4)
        _wait(browser, ".jp-Notebook-ExecutionIndicator, .jp-KernelStatus, .jp-Toolbar", timeout=60)
        time.sleep(2)                                               # let the kernel come up
        _menu(browser, "Run", "Run All Cells")
        deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
        while time.monotonic() < deadline:
            prompts = [p.text for p in browser.find_elements(
                "css selector", ".jp-CodeCell .jp-InputArea-prompt")]
            if prompts and all(p.strip() not in ("", "[ ]:", "[*]:") for p in prompts) or _errors(browser):
                break
            time.sleep(2)
        browser.save_screenshot(str(artifacts / "viz_notebook_run_all.png"))
        assert _errors(browser) == [], _errors(browser)
        assert all("[*]" not in p and p.strip() not in ("", "[ ]:") for p in prompts), prompts
        images = browser.find_elements("css selector", ".jp-RenderedImage img")
        assert images and all(int(img.get_attribute("naturalWidth") or 0) > 100 for img in images)
        shown = " ".join(o.get_attribute("textContent") or "" for o in browser.find_elements(
            "css selector", ".jp-NotebookPanel .jp-OutputArea-output"))
    assert UNTRAINED_BANNER not in shown
    if not main_job_checkpoints("cpu", REPO):      # a fresh clone: the committed models are drawn
        assert "published reference models (teacher, full)" in shown, shown[:500]


def test_the_explorer_redraws_its_figure_when_a_widget_changes(browser, workspace, tmp_path, artifacts):
    """notebooks/explore.py in Lab: Run All draws the explorer's figure; picking another joint in
    its dropdown draws a new one, of that joint."""
    from selenium.webdriver.support.ui import Select

    figure = ".jp-NotebookPanel .jupyter-widgets.widget-output img, .jp-NotebookPanel .widget-output img"
    with lab_server(workspace, tmp_path, env={"OMP_NUM_THREADS": "1"}) as lab:
        browser.get(lab.url("notebooks/explore.py"))
        _wait(browser, ".jp-NotebookPanel .jp-Cell", minimum=3)
        _wait(browser, ".jp-Notebook-ExecutionIndicator, .jp-KernelStatus, .jp-Toolbar", timeout=60)
        time.sleep(2)                                               # let the kernel come up
        _menu(browser, "Run", "Run All Cells")
        _wait(browser, figure, timeout=RUN_ALL_TIMEOUT_S)
        # read in the page: the output area replaces its <img> on each redraw (a held element goes stale)
        src = f"const img = document.querySelector({figure!r}); return img ? img.src : null;"
        before = browser.execute_script(src)
        joint = browser.find_element(
            "xpath", "//div[contains(@class,'widget-dropdown')][label[normalize-space()='joint']]//select")
        assert Select(joint).first_selected_option.text == "right ankle"
        Select(joint).select_by_visible_text("left wrist")
        deadline, after = time.monotonic() + 120, before
        while time.monotonic() < deadline and after in (before, None):
            time.sleep(0.5)
            after = browser.execute_script(src)
        for news in browser.find_elements("xpath", "//button[normalize-space()='No']"):
            news.click()                                            # Lab's "notified about news?" toast
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", joint)
        time.sleep(1)
        browser.save_screenshot(str(artifacts / "explorer_in_lab.png"))
        assert _errors(browser) == [], _errors(browser)
        assert before and after not in (before, None), "the figure did not change after the joint was picked"
        width = f"const img = document.querySelector({figure!r}); return img ? img.naturalWidth : 0;"
        assert int(browser.execute_script(width) or 0) > 400
