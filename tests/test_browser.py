"""The notebooks as a user meets them: JupyterLab in Debian's chromium, every cell run in the page.

One JupyterLab server (``rvclab.cli.lab.LabServer``, the server ``rvclab lab`` starts) serves a temp
copy of notebooks/ on a free local port with a token known here, its user settings in a temp folder
(no autosave, no notebook windowing) and the test's environment, so kernels inherit
``RVCLAB_WEIGHTS`` (a temp folder, tests/conftest.py) and write nothing into the repository.
Chromium (``/usr/bin/chromium`` driven through ``/usr/bin/chromedriver`` by selenium; nothing
downloaded) opens each notebook. Then, in the page:

* the kernel is this venv's python and has this test's ``RVCLAB_WEIGHTS`` (asked of the kernel);
* notebooks run here (RUN_IN_BROWSER, or all with ``RVCLAB_BROWSER_RUN_ALL=1``) are cleared, all
  cells run, and the kernel waited for: no cell raised and every code cell ran;
* every ``<audio>`` has a playable source (a data/blob URI the browser loaded: readyState >= 1,
  duration > 0), and PLAYERS have at least one;
* every output ``<img>`` decoded (naturalWidth > 0), and PLOTS have at least one;
* every live slider (CSS class ``rvclab-live``, :func:`rvclab.views.widgets.pitch_shift_view`) changes
  its plot, player and text when moved with the keyboard; notebook 05 must have one;
* a screenshot is written to a temp folder, or to ``$RVCLAB_SCREENSHOTS`` (e.g.
  ``RVCLAB_SCREENSHOTS=docs/screenshots RVCLAB_BROWSER_RUN_ALL=1`` refreshes the committed ones).

Covered: every notebooks/*.ipynb (parametrized). Run in the browser: 00, 01, 02b, 03, 04 and 05
(players, tables, plots, widgets and the live slider). Opened with their saved outputs,
which must render (no error outputs, plots decode, players load), to keep within the 4-minute
budget: 02 (89 s of cells in the browser: RMVPE under every candidate bug), 06 (113 s: every
documented fix) and 07 and any newer notebook not listed (benchmarks by others; nbval in
``make test`` executes all of them). Measured on the 2-core build machine shared with other
jobs: this default run 4 min 28 s at load ~5.5 (3 min of CPU; notebook 05 is 117 s of it,
including writing the seeded HuBERT, RMVPE and voice into the fresh weights folder that nbval then
reuses); all nine run in the browser (``RVCLAB_BROWSER_RUN_ALL=1``) 8 min at load ~9. Skipped, with the reason,
only when chromium or chromedriver cannot be found (``scripts/setup.sh`` installs both).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
CHROMEDRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).exists()),
                    None)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1500")
NOTEBOOK_TIMEOUT = 900  # s per notebook, a ceiling for a loaded machine (they take 20-50 s on 2 quiet cores)
HANG_S = 600  # s for any other wait: only a hang takes this long, however busy the machine
RUN_IN_BROWSER = {"00_environment.ipynb", "01_conversion.ipynb", "02b_f0_methods.ipynb", "03_synthesizer_parity.ipynb",
                  "04_hubert_parity.ipynb", "05_voice_conversion.ipynb"}
RUN_ALL = os.environ.get("RVCLAB_BROWSER_RUN_ALL", "") not in ("", "0")
PLAYERS = {"00_environment.ipynb", "03_synthesizer_parity.ipynb", "05_voice_conversion.ipynb"}
PLOTS = {"00_environment.ipynb", "02_rmvpe_walkthrough.ipynb", "02b_f0_methods.ipynb",
         "03_synthesizer_parity.ipynb", "04_hubert_parity.ipynb", "05_voice_conversion.ipynb"}
LIVE_SLIDERS = {"05_voice_conversion.ipynb"}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason=f"needs Debian's chromium and chromium-driver (found chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}); "
           "scripts/setup.sh installs them when run as root: apt-get install chromium chromium-driver",
)

# JupyterLab user settings for the test: autosave off (the page never writes the notebooks back),
# every cell kept in the DOM (windowing off), no blank page past the last cell, no news prompt.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                          "checkForUpdates": False},
}

OPEN_AND_RUN = """
const [path, run, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
(async () => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  if (!panel.sessionContext.session || !panel.sessionContext.session.kernel) throw new Error('no kernel started');
  window.rvclabPanel = panel;
  if (!run) { window.rvclabRun = {done: true, ok: true, saved: true}; done({started: false}); return; }
  await app.commands.execute('notebook:clear-all-cell-outputs');
  window.rvclabRun = {done: false};
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.rvclabRun = {done: true, ok}; },
    e => { window.rvclabRun = {done: true, error: String((e && e.stack) || e)}; });
  done({started: true});
})().catch(e => done({error: String((e && e.stack) || e)}));
"""

KERNEL_PROBE = """
const [code, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const kernel = window.rvclabPanel.sessionContext.session.kernel;
  let text = '';
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') text += msg.content.text; };
  await future.done;
  done({text, status: kernel.status});
})().catch(e => done({error: String(e)}));
"""

PAGE_STATE = """
const panel = window.rvclabPanel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const errors = [], unrun = [];
cells.forEach((c, i) => {
  for (const o of c.model.outputs.toJSON()) {
    if (o.output_type === 'error') errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
  }
  if (!c.model.executionCount) unrun.push(i);
});
const audio = [...panel.node.querySelectorAll('audio')].map(a => {
  const src = a.currentSrc || a.src || (a.querySelector('source') || {}).src || '';
  return {scheme: src.split(':')[0], ready: a.readyState, duration: a.duration, error: a.error && a.error.code};
});
const imgs = [...panel.node.querySelectorAll('.jp-OutputArea-output img')]
  .map(i => ({w: i.naturalWidth, ok: i.complete}));
return {errors, unrun, cells: cells.length, audio, imgs, kernel: panel.sessionContext.session.kernel.status,
        live: panel.node.querySelectorAll('.rvclab-live').length};
"""

# The output area that holds a live slider: a signature of its plots, players and text.
LIVE_SIGNATURE = """
const live = window.rvclabPanel.node.querySelectorAll('.rvclab-live')[arguments[0]];
const area = live.closest('.jp-OutputArea-output');
const fnv = s => { let h = 0x811c9dc5; for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
                   return s.length + ':' + (h >>> 0).toString(16); };  // FNV-1a of the whole data URI
const imgs = [...area.querySelectorAll('img')].map(i => fnv(i.src));
const audio = [...area.querySelectorAll('audio source')].map(a => fnv(a.src || ''));
return {imgs, audio, text: area.innerText, loaded: [...area.querySelectorAll('img')].every(i => i.naturalWidth > 0),
        value: (live.querySelector('.widget-readout') || {}).innerText};
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from rvclab.cli.lab import LabServer

    tmp = tmp_path_factory.mktemp("lab")
    served = tmp / "notebooks"
    served.mkdir()
    for nb in NOTEBOOKS:
        shutil.copy2(nb, served / nb.name)
    settings = tmp / "settings"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    assert os.environ.get("RVCLAB_WEIGHTS"), "tests/conftest.py sets RVCLAB_WEIGHTS to a temp folder"
    env = {"JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    server = LabServer(served, data_dir=tmp / "kernelspec", settings_dir=settings, expose_app=True, env=env,
                       log_path=tmp / "lab.log", extra_args=("--LabApp.extension_manager=readonly",))
    server.start(timeout=HANG_S)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=CHROMEDRIVER, log_output=str(profile.parent / "chromedriver.log"))
    offline = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # selenium: never fetch drivers or browsers (both paths are given)
    try:
        driver = webdriver.Chrome(options=opts, service=service)
    finally:
        if offline is None:
            del os.environ["SE_OFFLINE"]
        else:
            os.environ["SE_OFFLINE"] = offline
    driver.set_script_timeout(HANG_S)  # each script returns quickly; long runs are polled
    try:
        driver.get(lab.url)
        _wait(lambda: driver.execute_script("return !!(window.jupyterapp && window.jupyterapp.shell)"), HANG_S,
              "JupyterLab's page to load")
        driver.execute_script("window.jupyterapp.shell.collapseLeft()")
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    target = os.environ.get("RVCLAB_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    if not folder.is_absolute():
        folder = ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last})")


def _move_live_slider(driver, index: int):
    """Press the right arrow on live slider ``index`` three times; the new signature once it lands."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = driver.execute_script(LIVE_SIGNATURE, index)
    live = driver.execute_script("return window.rvclabPanel.node.querySelectorAll('.rvclab-live')[arguments[0]]",
                                 index)
    handle = live.find_element(By.CSS_SELECTOR, ".noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
    handle.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)

    seen = {}

    def changed():
        now = driver.execute_script(LIVE_SIGNATURE, index)
        seen.update(value=now["value"], text=now["text"][-300:], imgs=len(now["imgs"]), audio=now["audio"],
                    same_imgs=now["imgs"] == before["imgs"], same_audio=now["audio"] == before["audio"])
        moved = now["imgs"] != before["imgs"] and now["audio"] != before["audio"] and now["text"] != before["text"]
        return now if moved and now["loaded"] and now["imgs"] and now["audio"] else None

    try:
        return before, _wait(changed, HANG_S, "the live slider's output to change")
    except AssertionError as exc:
        before_text = before['text'][-200:]
        raise AssertionError(f"{exc}; before: value {before['value']}, {before_text!r}; now: {seen}") from None


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_browser(notebook, lab, browser, screenshots):
    name = notebook.name
    run = RUN_ALL or name in RUN_IN_BROWSER
    started = browser.execute_async_script(OPEN_AND_RUN, name, run)
    assert "error" not in started, f"{name}: JupyterLab could not open it: {started.get('error')}"
    result = _wait(lambda: browser.execute_script("return window.rvclabRun.done && window.rvclabRun"),
                   NOTEBOOK_TIMEOUT, f"{name}: all cells to run", interval=1.0)
    assert "error" not in result, f"{name}: running the cells failed: {result.get('error')}"

    probe = browser.execute_async_script(
        KERNEL_PROBE, "import os, sys; print(sys.executable); print(os.environ.get('RVCLAB_WEIGHTS'))")
    assert "error" not in probe, probe
    executable, weights = probe["text"].split()
    assert Path(executable).resolve() == Path(sys.executable).resolve(), "the kernel is not this venv's python"
    assert weights == os.environ["RVCLAB_WEIGHTS"], "the kernel did not inherit RVCLAB_WEIGHTS"

    state = browser.execute_script(PAGE_STATE)
    assert not state["errors"], f"{name}: cells raised: {state['errors']}"
    assert result["ok"], f"{name}: run-all stopped early"
    if run:
        assert not state["unrun"], f"{name}: code cells {state['unrun']} did not run"

    def media_ready():
        s = browser.execute_script(PAGE_STATE)
        audio_ok = all(a["ready"] >= 1 and a["duration"] > 0 for a in s["audio"])
        return s if audio_ok and all(i["ok"] and i["w"] > 0 for i in s["imgs"]) else None

    state = _wait(media_ready, HANG_S, f"{name}: players and plots to load")
    for a in state["audio"]:
        assert a["scheme"] in ("data", "blob"), f"{name}: an <audio> without an embedded source: {a}"
    if name in PLAYERS:
        assert state["audio"], f"{name}: expected audio players, found none"
    if name in PLOTS:
        assert state["imgs"], f"{name}: expected plot images, found none"
    if name in LIVE_SLIDERS and run:
        assert state["live"] >= 1, f"{name}: expected a live slider (rvclab-live), found none"
    for i in range(state["live"] if run else 0):
        before, after = _move_live_slider(browser, i)
        assert before["value"] != after["value"], f"{name}: slider {i} did not move"
    _wait(lambda: browser.execute_script(PAGE_STATE)["kernel"] == "idle", HANG_S, f"{name}: the kernel to be idle")
    print(f"{name}: {state['cells']} code cells {'ran' if run else 'shown as saved'}, {len(state['audio'])} players, "
          f"{len(state['imgs'])} plots, {state['live'] if run else 0} live slider(s) moved")

    _scroll_to_showcase(browser)
    shot = screenshots / f"{notebook.stem}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const panel = window.rvclabPanel;
        panel.sessionContext.shutdown().then(() => { panel.dispose(); done(true); }, e => done(String(e)));""")


def _scroll_to_showcase(driver) -> None:
    """Bring the notebook's most telling output to the top: a live slider, else the first widget
    showing a plot or player, else the first player or plot, else the first table."""
    driver.execute_script("""
        window.jupyterapp.shell.collapseLeft();
        const node = window.rvclabPanel.node;
        const target = node.querySelector('.rvclab-live')
            || [...node.querySelectorAll('.jp-OutputArea-output .jupyter-widgets')]
                .find(w => w.querySelector('img, audio'))
            || node.querySelector('.jp-OutputArea-output audio, .jp-OutputArea-output img')
            || node.querySelector('.jp-OutputArea-output table');
        const cell = target && target.closest('.jp-Cell');
        if (cell) cell.scrollIntoView({block: 'start'});
        document.activeElement && document.activeElement.blur();""")
    time.sleep(0.5)
