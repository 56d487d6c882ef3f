"""The notebooks as a user meets them: JupyterLab in Debian's chromium, every cell run in the page.

One JupyterLab server (``rvclab.cli.lab.LabServer``, the server ``rvclab lab`` starts) serves a temp
copy of notebooks/ on a free local port with a token known here, its user settings in a temp folder
(no autosave, no notebook windowing) and the test's environment, so kernels inherit
``RVCLAB_WEIGHTS`` (a temp folder, the root conftest.py) and write nothing into the repository.
Chromium (``/usr/bin/chromium`` driven through ``/usr/bin/chromedriver`` by selenium; nothing
downloaded) opens each notebook. Then, in the page:

* the kernel is this venv's python and has this test's ``RVCLAB_WEIGHTS`` (asked of the kernel);
* notebooks run here (RUN_IN_BROWSER, or all with ``RVCLAB_BROWSER_RUN_ALL=1``) are cleared, all
  cells run, and the kernel waited for: no cell raised and every code cell ran;
* every ``<audio>`` has a playable source (a data/blob URI the browser loaded: readyState >= 1,
  duration > 0), and PLAYERS have at least one;
* every output ``<img>`` decoded (naturalWidth > 0), and PLOTS have at least one;
* no output is wider than its area in a WINDOW_WIDTH window (a table or line read by scrolling sideways);
* every widget is driven as a user would, and must work: each picker (a Dropdown's ``<select>`` or
  a ToggleButtons group, outside the explorer) takes its next option and its output must change;
  every live slider (CSS class ``rvclab-live``, :func:`rvclab.views.widgets.pitch_shift_view`)
  changes its plot, player and text when moved with the keyboard; the conversion explorer
  (``rvclab-explorer``, :func:`rvclab.views.widgets.conversion_explorer`) gets another clip and
  voice (where there is another) and the F0 method pm, each slider one step, the index box
  ticked, then Run, after which its status must name that clip and voice with a parity verdict
  and its players and plots must load; then every
  ``<audio>`` (the A/B players included) is played with a click on its play button and must
  advance. A control of a kind the test does not drive fails the test (extend it);
* no widget callback raised: before any cell runs, the kernel is given a recorder (a wrapper around
  ``InteractiveShell.showtraceback``, which ipywidgets calls for an exception in a widget's message
  handling, ``observe`` and ``on_click`` callbacks included, and an ``Output`` widget for one inside
  ``with out:``; and an ERROR handler on the ``Comm`` logger, for one that escapes them); what it
  writes to a temp file fails the test, at once during a wait. The explorer shows its own errors
  in its status line, which must hold a parity verdict;
* a screenshot is written to a temp folder, or to ``$RVCLAB_SCREENSHOTS`` (e.g.
  ``RVCLAB_SCREENSHOTS=docs/screenshots RVCLAB_BROWSER_RUN_ALL=1`` refreshes the committed ones).

Covered: every notebooks/*.ipynb (parametrized). Run whole in the browser: 05 (the conversion
explorer, the live slider, the A/B players and the profile switcher, after every cell before them).
A saved notebook with a widget (02's clip picker, 02b's method picker, 03's players, 08's stream
explorer) runs its cells up to the last widget cell, leaving the costly rest as saved. The others
(00, 01, 04, 06, 07) hold no widget: they are opened with their saved outputs, which must render
(no error outputs, plots decode, players load and play). Running those in the page again would
prove only what nbval proves (every cell runs, outputs as stored). nbval in
``make test`` executes every notebook. Every wait is a condition polled with a hang guard, never
a fixed delay. Skipped, with the reason, only when chromium or chromedriver cannot be found
(``scripts/setup.sh`` installs both).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from rvclab.cli.lab import LabServer

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
CHROMEDRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).exists()),
                    None)
WINDOW_WIDTH = 1280  # px: a laptop's browser window; no output may need sideways scrolling in it
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                  f"--window-size={WINDOW_WIDTH},1500")
NOTEBOOK_TIMEOUT = 900  # s per notebook, a ceiling for a loaded machine (they take 20-50 s on 2 quiet cores)
HANG_S = 600  # s for any other wait: only a hang takes this long, however busy the machine
RUN_IN_BROWSER = {"05_voice_conversion.ipynb"}
RUN_ALL = os.environ.get("RVCLAB_BROWSER_RUN_ALL", "") not in ("", "0")
PLAYERS = {"00_environment.ipynb", "03_synthesizer_parity.ipynb", "05_voice_conversion.ipynb"}
PLOTS = {"00_environment.ipynb", "02_rmvpe_walkthrough.ipynb", "02b_f0_methods.ipynb",
         "03_synthesizer_parity.ipynb", "04_hubert_parity.ipynb", "05_voice_conversion.ipynb"}
LIVE_SLIDERS = {"05_voice_conversion.ipynb"}
PICKERS = {"02_rmvpe_walkthrough.ipynb", "02b_f0_methods.ipynb"}
EXPLORERS = {"05_voice_conversion.ipynb"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
EXPLORER_PICKS = {"F0 method": "pm"}  # the cheapest F0 method on a CPU; other explorer pickers take their next option
PLAY_BUTTON_X = 20  # px from an <audio>'s left edge: the play button of chromium's media controls
# What a user can operate in an output; the test marks each one it drives (data-rvclab-driven).
CONTROLS = ".jp-OutputArea-output :is(select, input, textarea, button, .noUi-handle, audio, video)"

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

# Opens a notebook, gives its kernel the callback recorder, then runs all its code cells (count
# null: outputs cleared first), its first `count` code cells one by one, or none (count 0).
OPEN_AND_RUN = """
const [path, count, recorder, done] = [arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]];
(async () => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) throw new Error('no kernel started');
  window.rvclabPanel = panel;
  const reply = await kernel.requestExecute({code: recorder, silent: true, store_history: false}).done;
  if (reply.content.status !== 'ok') throw new Error(`the recorder failed: ${reply.content.evalue}`);
  if (count === 0) { window.rvclabRun = {done: true, ok: true, saved: true}; done({started: false}); return; }
  window.rvclabRun = {done: false};
  let run;
  if (count === null) {
    await app.commands.execute('notebook:clear-all-cell-outputs');
    run = app.commands.execute('notebook:run-all-cells');
  } else {
    const code = panel.content.widgets.map((c, i) => [c, i]).filter(([c]) => c.model.type === 'code');
    run = (async () => {
      for (const [, i] of code.slice(0, count)) {
        panel.content.activeCellIndex = i;
        if (!await app.commands.execute('notebook:run-cell')) return false;
      }
      return true;
    })();
  }
  run.then(ok => { window.rvclabRun = {done: true, ok}; },
           e => { window.rvclabRun = {done: true, error: String((e && e.stack) || e)}; });
  done({started: true});
})().catch(e => done({error: String((e && e.stack) || e)}));
"""

# Run in the kernel before any cell: every exception a widget callback raises is appended, one JSON
# line each, to the file named by the placeholder. ipywidgets sends one raised while it handles a
# message (observe and on_click callbacks) to showtraceback, so does an Output widget for one raised
# inside `with out:`; comm logs what escapes on its "Comm" logger. Cell errors land here too
# (PAGE_STATE reports them first).
RECORDER = """
def _rvclab_record_callback_errors(path):
    import json, logging
    from IPython import get_ipython

    shell = get_ipython()

    def note(where, text):
        with open(path, "a") as f:
            f.write(json.dumps({"where": where, "error": text}) + "\\n")

    show = shell.showtraceback

    def showtraceback(exc_tuple=None, *args, **kwargs):
        try:
            etype, value, _ = shell._get_exc_info(exc_tuple)
            note("showtraceback", f"{etype.__name__}: {value}")
        except Exception as exc:  # no exception to show: record that, still show what IPython shows
            note("showtraceback", f"(no exception info: {exc!r})")
        return show(exc_tuple, *args, **kwargs)

    class Recorder(logging.Handler):
        def emit(self, record):
            exc = record.exc_info and record.exc_info[1]
            note(record.name, record.getMessage() + (f": {type(exc).__name__}: {exc}" if exc else ""))

    shell.showtraceback = showtraceback
    logging.getLogger("Comm").addHandler(Recorder(logging.ERROR))

_rvclab_record_callback_errors(PATH)
del _rvclab_record_callback_errors
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

PAGE_STATE = r"""
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
// outputs wider than their area (a table or a line the user would have to scroll sideways to read)
const wide = [];
cells.forEach((c, i) => c.node.querySelectorAll('.jp-OutputArea-output').forEach(area => {
  if (area.scrollWidth > area.clientWidth + 1) {
    const what = area.querySelector('table') ? 'table' : area.querySelector('pre') ? 'text' : 'output';
    wide.push(`cell ${i}: ${what} ${area.scrollWidth}px in ${area.clientWidth}px: ` +
              area.innerText.trim().slice(0, 60).replace(/\s+/g, ' '));
  }
}));
return {errors, unrun, cells: cells.length, audio, imgs, kernel: panel.sessionContext.session.kernel.status,
        live: panel.node.querySelectorAll('.rvclab-live').length, wide};
"""

# The output area that holds a widget (arguments[0]): a signature of its plots, players and text.
AREA_SIGNATURE = """
const live = arguments[0];
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
    assert os.environ.get("RVCLAB_WEIGHTS"), "conftest.py sets RVCLAB_WEIGHTS to a temp folder"
    env = {"JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    _write_reopen_probe(served / REOPEN_PROBE)
    copies = sorted(served.glob("*.ipynb"))  # served as `rvclab lab` serves the project's: trusted, read-only
    server = LabServer(served, data_dir=tmp / "kernelspec", settings_dir=settings, expose_app=True, env=env,
                       log_path=tmp / "lab.log", trust=copies, read_only=copies,
                       extra_args=("--LabApp.extension_manager=readonly",))
    server.start(timeout=HANG_S)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
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


def _callback_errors(record: Path) -> list[dict]:
    """What the kernel's recorder (RECORDER) wrote: one {where, error} per exception."""
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def _until(predicate, what: str, record: Path):
    """_wait with a hang guard that fails at once when a widget callback has raised."""
    def check():
        raised = _callback_errors(record)
        assert not raised, f"a widget callback raised while waiting for {what}: {raised}"
        return predicate()

    return _wait(check, HANG_S, what)


def _widget_cells(notebook: Path) -> int | None:
    """How many code cells the page runs: all (None) in RUN_IN_BROWSER, else up to and including the
    last one whose saved outputs hold a widget (0: none)."""
    if RUN_ALL or notebook.name in RUN_IN_BROWSER:
        return None
    code = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    with_widget = [i for i, c in enumerate(code) if any(WIDGET_VIEW in o.get("data", {}) for o in c["outputs"])]
    return with_widget[-1] + 1 if with_widget else 0


def _driven(driver, *elements) -> None:
    driver.execute_script("for (const e of arguments) e.dataset.rvclabDriven = '1';", *elements)


def _move_live_slider(driver, index: int, record: Path):
    """Press the right arrow on live slider ``index`` three times; the new signature once it lands."""
    live = driver.execute_script("return window.rvclabPanel.node.querySelectorAll('.rvclab-live')[arguments[0]]",
                                 index)
    before = driver.execute_script(AREA_SIGNATURE, live)
    handle = live.find_element(By.CSS_SELECTOR, ".noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
    handle.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    _driven(driver, handle)

    seen = {}

    def changed():
        now = driver.execute_script(AREA_SIGNATURE, live)
        seen.update(value=now["value"], text=now["text"][-300:], imgs=len(now["imgs"]), audio=now["audio"],
                    same_imgs=now["imgs"] == before["imgs"], same_audio=now["audio"] == before["audio"])
        moved = now["imgs"] != before["imgs"] and now["audio"] != before["audio"] and now["text"] != before["text"]
        return now if moved and now["loaded"] and now["imgs"] and now["audio"] else None

    try:
        return before, _until(changed, "the live slider's output to change", record)
    except AssertionError as exc:
        before_text = before['text'][-200:]
        raise AssertionError(f"{exc}; before: value {before['value']}, {before_text!r}; now: {seen}") from None


def _options(picker) -> list:
    """A picker's choices: a <select>'s options or a ToggleButtons group's buttons."""
    if picker.tag_name == "select":
        return Select(picker).options
    return picker.find_elements(By.CSS_SELECTOR, "button")


def _choose(driver, picker, i: int) -> str:
    """Choose option ``i`` of a picker as a user would; its text."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", picker)
    option = _options(picker)[i]
    if picker.tag_name == "select":
        Select(picker).select_by_index(i)
    else:
        option.click()
    _driven(driver, picker, *(_options(picker) if picker.tag_name != "select" else ()))
    return option.text


def _chosen(picker) -> int:
    options = _options(picker)
    if picker.tag_name == "select":
        return next(i for i, o in enumerate(options) if o.is_selected())
    return next(i for i, b in enumerate(options) if "mod-active" in b.get_attribute("class"))


def _drive_pickers(driver, record: Path) -> int:
    """Every picker outside the explorer takes its next option (one change each: the callback is the
    same for every option, and some options cost seconds); its output area must show something new.
    The number of pickers changed."""
    pickers = driver.execute_script("""
        return [...window.rvclabPanel.node.querySelectorAll('.widget-dropdown select, .widget-toggle-buttons')]
            .filter(e => !e.closest('.rvclab-explorer'));""")
    for picker in pickers:
        assert len(_options(picker)) > 1, f"a picker with one option: {picker.get_attribute('outerHTML')[:200]}"
        before = driver.execute_script(AREA_SIGNATURE, picker)
        text = _choose(driver, picker, (_chosen(picker) + 1) % len(_options(picker)))

        def shown(before=before, picker=picker):
            now = driver.execute_script(AREA_SIGNATURE, picker)
            return now if now != before and now["loaded"] else None

        _until(shown, f"the output of picker option {text!r} to show", record)
    return len(pickers)


def _run_stream_explorer(driver, box, record: Path) -> str:
    """Move each of the stream explorer's sliders a step and press run: its status must give the
    new settings' latency and its two players (offline, streaming) must load."""
    for handle in box.find_elements(By.CSS_SELECTOR, ".noUi-handle"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
        handle.send_keys(Keys.ARROW_RIGHT)
        _driven(driver, handle)
    status = box.find_element(By.CSS_SELECTOR, ".rvclab-status")
    button = box.find_element(By.CSS_SELECTOR, ".rvclab-run")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    _driven(driver, button)

    def finished():
        text = status.text
        assert not text.startswith("not run"), f"stream explorer: {text}"
        loaded = driver.execute_script("""
            const audio = [...arguments[0].querySelectorAll('.widget-output audio')];
            return audio.length >= 2 && audio.every(a => a.readyState >= 1 && a.duration > 0);""", box)
        return text if "latency" in text and button.is_enabled() and loaded else None

    text = _until(finished, "the stream explorer's run to finish", record)
    assert "block 0.30 s" in text, f"stream explorer: ran without the moved block slider: {text}"
    return text


def _run_explorer(driver, box, record: Path) -> str:
    """Give the explorer another clip, voice and F0 method (EXPLORER_PICKS, else the next option), move
    each slider a step, tick each box, press Run; its status line once its players and plots have loaded."""
    chosen = {}
    for picker in box.find_elements(By.CSS_SELECTOR, ".widget-dropdown"):
        select = picker.find_element(By.CSS_SELECTOR, "select")
        label = picker.find_element(By.CSS_SELECTOR, "label").text
        texts = [o.text for o in _options(select)]
        if label in EXPLORER_PICKS:
            assert EXPLORER_PICKS[label] in texts, f"explorer: no {EXPLORER_PICKS[label]!r} among its {label}s {texts}"
        i = texts.index(EXPLORER_PICKS[label]) if label in EXPLORER_PICKS else (_chosen(select) + 1) % len(texts)
        chosen[label] = _choose(driver, select, i)
    for handle in box.find_elements(By.CSS_SELECTOR, ".noUi-handle"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
        handle.send_keys(Keys.ARROW_RIGHT)  # one key, one update: each control sends before Run's click
        _driven(driver, handle)
    for tick in box.find_elements(By.CSS_SELECTOR, "input[type=checkbox]"):
        tick.click()
        _driven(driver, tick)
    status = box.find_element(By.CSS_SELECTOR, ".rvclab-status")
    button = box.find_element(By.CSS_SELECTOR, ".rvclab-run")
    idle = status.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    _driven(driver, button)

    def finished():
        done = status.text != idle and button.is_enabled()
        assert not done or "the parity goal" in status.text, f"explorer: Run failed: {status.text}"
        media = driver.execute_script("""
            const out = arguments[0].querySelector('.widget-output');
            const audio = [...out.querySelectorAll('audio')], imgs = [...out.querySelectorAll('img')];
            return audio.length >= 2 && audio.every(a => a.readyState >= 1 && a.duration > 0)
                && imgs.length >= 2 && imgs.every(i => i.complete && i.naturalWidth > 0);""", box)
        return status.text if done and media else None

    text = _until(finished, "the explorer's run to finish", record)
    for label in ("clip", "voice"):
        assert chosen[label] in text, f"explorer: ran without the chosen {label} {chosen[label]!r}: {text}"
    return text


def _play_all(driver, record: Path) -> int:
    """Click the play button of every <audio> (A/B players included); each must start playing."""
    players = driver.execute_script("return [...window.rvclabPanel.node.querySelectorAll('audio')]")
    for i, audio in enumerate(players):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", audio)
        width = driver.execute_script("return arguments[0].getBoundingClientRect().width", audio)
        ActionChains(driver).move_to_element_with_offset(audio, -width / 2 + PLAY_BUTTON_X, 0).click().perform()
        _driven(driver, audio)

        def playing(audio=audio):
            s = driver.execute_script("""const a = arguments[0];
                return {paused: a.paused, time: a.currentTime, played: a.played.length && a.played.end(0)};""", audio)
            return s if s["played"] > 0 else None

        _until(playing, f"player {i} to play after a click on its play button", record)
    return len(players)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_browser(notebook, lab, browser, screenshots, tmp_path):
    name = notebook.name
    start = time.monotonic()
    count = _widget_cells(notebook)
    run = count != 0
    record = tmp_path / "callback_errors.jsonl"
    started = browser.execute_async_script(OPEN_AND_RUN, name, count, RECORDER.replace("PATH", repr(str(record))))
    assert "error" not in started, f"{name}: JupyterLab could not open it: {started.get('error')}"
    result = _wait(lambda: browser.execute_script("return window.rvclabRun.done && window.rvclabRun"),
                   NOTEBOOK_TIMEOUT, f"{name}: its cells to run", interval=1.0)
    assert "error" not in result, f"{name}: running the cells failed: {result.get('error')}"
    cells_s = time.monotonic() - start

    probe = browser.execute_async_script(
        KERNEL_PROBE, "import os, sys; print(sys.executable); print(os.environ.get('RVCLAB_WEIGHTS'))")
    assert "error" not in probe, probe
    executable, weights = probe["text"].split()
    assert Path(executable).resolve() == Path(sys.executable).resolve(), "the kernel is not this venv's python"
    assert weights == os.environ["RVCLAB_WEIGHTS"], "the kernel did not inherit RVCLAB_WEIGHTS"

    state = browser.execute_script(PAGE_STATE)
    assert not state["errors"], f"{name}: cells raised: {state['errors']}"
    assert result["ok"], f"{name}: running the cells stopped early"
    if count is None:
        assert not state["unrun"], f"{name}: code cells {state['unrun']} did not run"

    def media_ready():
        s = browser.execute_script(PAGE_STATE)
        audio_ok = all(a["ready"] >= 1 and a["duration"] > 0 for a in s["audio"])
        return s if audio_ok and all(i["ok"] and i["w"] > 0 for i in s["imgs"]) else None

    state = _until(media_ready, f"{name}: players and plots to load", record)
    assert not state["wide"], f"{name}: outputs wider than the notebook ({WINDOW_WIDTH} px window): {state['wide']}"
    for a in state["audio"]:
        assert a["scheme"] in ("data", "blob"), f"{name}: an <audio> without an embedded source: {a}"
    if name in PLAYERS:
        assert state["audio"], f"{name}: expected audio players, found none"
    if name in PLOTS:
        assert state["imgs"], f"{name}: expected plot images, found none"
    if name in LIVE_SLIDERS and run:
        assert state["live"] >= 1, f"{name}: expected a live slider (rvclab-live), found none"

    widgets_start = time.monotonic()
    picks = _drive_pickers(browser, record) if run else 0
    if name in PICKERS and run:
        assert picks, f"{name}: expected a picker (Dropdown or ToggleButtons), found none"
    for i in range(state["live"] if run else 0):
        before, after = _move_live_slider(browser, i, record)
        assert before["value"] != after["value"], f"{name}: slider {i} did not move"
    explorers = browser.execute_script("return [...window.rvclabPanel.node.querySelectorAll('.rvclab-explorer')]")
    explorers = explorers if run else []
    if name in EXPLORERS and run:
        assert explorers, f"{name}: expected the conversion explorer (rvclab-explorer), found none"
    verdicts = [_run_explorer(browser, box, record) for box in explorers]
    streams = browser.execute_script(
        "return [...window.rvclabPanel.node.querySelectorAll('.rvclab-stream-explorer')]") if run else []
    verdicts += [_run_stream_explorer(browser, box, record) for box in streams]
    played = _play_all(browser, record)
    undriven = browser.execute_script(f"""
        return [...window.rvclabPanel.node.querySelectorAll('{CONTROLS}')].filter(e => !e.dataset.rvclabDriven)
            .map(e => `${{e.tagName.toLowerCase()}}.${{[...e.classList].join('.')}}` +
                      ` in ${{[...(e.closest('.jupyter-widgets') || e.parentElement).classList].join('.')}}`);""")
    assert not undriven, f"{name}: controls this test does not drive (teach it how): {undriven}"

    browser.execute_async_script(KERNEL_PROBE, "pass")  # the kernel has handled every message sent before
    _wait(lambda: browser.execute_script(PAGE_STATE)["kernel"] == "idle", HANG_S, f"{name}: the kernel to be idle")
    raised = _callback_errors(record)
    assert not raised, f"{name}: widget callbacks raised: {raised}"
    ran = "ran" if count is None else f"{count} ran" if count else "shown as saved"
    print(f"{name}: {state['cells']} code cells {ran}, {len(state['imgs'])} plots, {played} players played, "
          f"{picks} picker(s) changed, {state['live'] if run else 0} live slider(s) moved, "
          f"explorer: {verdicts or 'none'}; {cells_s:.0f} s of cells, "
          f"{time.monotonic() - widgets_start:.0f} s of widgets")

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


# --- Stored notebooks as a user first meets them, and a notebook reopened after a run ----------------
WIDGET_NOTEBOOKS = [p for p in NOTEBOOKS
                    if any(WIDGET_VIEW in o.get("data", {}) for c in json.loads(p.read_text())["cells"]
                           for o in c.get("outputs", []))]
RAW_WIDGET_TEXT = ("HBox(", "VBox(", "Error displaying widget", "model not found", "Loading widget")

# Opens a notebook (its kernel starts, no cell runs); once every saved widget output has rendered or
# failed: the texts a broken widget shows, the widget count and whether JupyterLab thinks it modified.
OPEN_AS_SAVED = """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.rvclabPanel = panel;
  done({ok: true});
})().catch(e => done({error: String((e && e.stack) || e)}));
"""
SAVED_STATE = """
const panel = window.rvclabPanel, node = panel.node;
const views = panel.content.widgets.filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON()).filter(o => o.data && o.data[arguments[0]]).length;
const areas = [...node.querySelectorAll('.jp-OutputArea-output')];
const rendered = areas.filter(a => a.matches('.jupyter-widgets') || a.querySelector('.jupyter-widgets')).length;
return {views, rendered,
        text: areas.map(a => a.innerText).join('\\n'), dirty: panel.context.model.dirty,
        kernel: panel.sessionContext.session && panel.sessionContext.session.kernel.status};
"""
CLOSE = """
const done = arguments[arguments.length - 1];
const panel = window.rvclabPanel;
panel.sessionContext.shutdown().then(() => { panel.dispose(); done(true); }, e => done(String(e)));
"""


def _open_as_saved(driver, path: str) -> dict:
    opened = driver.execute_async_script(OPEN_AS_SAVED, path)
    assert "error" not in opened, f"{path}: JupyterLab could not open it: {opened.get('error')}"

    def settled():
        s = driver.execute_script(SAVED_STATE, WIDGET_VIEW)
        broken = any(t in s["text"] for t in RAW_WIDGET_TEXT[:4])
        loading = RAW_WIDGET_TEXT[4] in s["text"]
        return s if s["kernel"] == "idle" and (broken or (s["rendered"] >= s["views"] and not loading)) else None

    return _wait(settled, HANG_S, f"{path}: its saved widgets to render")


@pytest.mark.parametrize("notebook", WIDGET_NOTEBOOKS, ids=[p.stem for p in WIDGET_NOTEBOOKS])
def test_stored_notebook_opens_clean(notebook, lab, browser):
    """Opened and not run: every saved widget shows from its saved state (no raw ``HBox(...)`` text, no
    "Error displaying widget: model not found") and JupyterLab does not mark the notebook modified."""
    state = _open_as_saved(browser, notebook.name)
    try:
        shown = [t for t in RAW_WIDGET_TEXT if t in state["text"]]
        assert not shown, f"{notebook.name}: opened as saved, it shows {shown}"
        assert state["views"] and state["rendered"] >= state["views"], state
        assert state["dirty"] is False, f"{notebook.name}: marked modified on open (tests/test_notebook_pairs.py)"
    finally:
        browser.execute_async_script(CLOSE)


def test_notebook_reopened_after_a_run_shows_its_widgets(lab, browser):
    """A stored notebook is run (new widgets), the save is refused (it is a reference notebook), the kernel
    shut down, the notebook reopened: its stored widgets show, not "model not found", and it opens
    unmodified. The file on disk is unchanged."""
    path = lab.root_dir / REOPEN_PROBE
    before = path.read_bytes()
    started = browser.execute_async_script(OPEN_AND_RUN, REOPEN_PROBE, None, "pass")
    assert "error" not in started, started
    _wait(lambda: browser.execute_script("return window.rvclabRun.done && window.rvclabRun"), HANG_S,
          "the probe notebook to run")
    saved = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        window.rvclabPanel.context.save().then(() => done('saved'), e => done(String(e)));""")
    assert saved != "saved" and "reference outputs" in saved, saved
    browser.execute_async_script(CLOSE)
    assert path.read_bytes() == before, "a reference notebook was overwritten"

    state = _open_as_saved(browser, REOPEN_PROBE)
    try:
        shown = [t for t in RAW_WIDGET_TEXT if t in state["text"]]
        assert not shown and "stored widget" in state["text"], (shown, state["text"][:300])
        assert state["dirty"] is False, state
    finally:
        browser.execute_async_script(CLOSE)


REOPEN_PROBE = "zz_reopen_probe.ipynb"


def _write_reopen_probe(path: Path) -> None:
    """A one-cell notebook executed as `make notebooks-run` executes ours (its widget state stored)."""
    import nbformat
    from nbclient import NotebookClient

    from rvclab.cli.lab import stamp_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import ipywidgets as w\n"
                                          "w.VBox([w.HTML('<b>stored widget</b>'), w.IntSlider(value=7)])")]
    NotebookClient(nb, timeout=HANG_S, kernel_name="python3").execute()
    nbformat.write(nb, path)
    stamp_notebook(path)
