"""``rvclab lab`` (``make lab``): prints a URL that works, serves notebooks/ with this venv's kernel."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from rvclab.cli.lab import ANNOUNCEMENTS_PLUGIN, START_ENV, free_port, port_in_use, widgets_extension_dir

ROOT = Path(__file__).resolve().parents[1]
HANG_S = 600  # s: only a hung server takes this long, however busy the machine


def _lines(stream) -> queue.Queue:
    """The stream's lines, read on a thread (a blocking readline cannot outlive a deadline); None at EOF."""
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_rvclab_lab_prints_a_working_url_and_stops_on_sigterm(tmp_path):
    assert widgets_extension_dir() is not None, "the ipywidgets JupyterLab extension is not installed"

    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           START_ENV: str(HANG_S)}
    proc = subprocess.Popen([sys.executable, "-m", "rvclab.cli", "lab", "--no-browser", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines, url = _lines(proc.stdout), None
        while url is None:
            try:
                line = lines.get(timeout=HANG_S)
            except queue.Empty:
                raise AssertionError(f"rvclab lab printed no URL in {HANG_S} s") from None
            assert line is not None, f"rvclab lab exited with {proc.wait()} before printing its URL"
            if line.startswith("open: "):
                url = line.split()[1]
        assert url.startswith(f"http://127.0.0.1:{port}/lab?token="), url
        token = url.split("token=")[1]

        def api(path):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/{path}",
                                         headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=HANG_S) as resp:
                return json.loads(resp.read())

        spec = api("kernelspecs")["kernelspecs"]["python3"]["spec"]
        assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()
        served = {item["name"] for item in api("contents")["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= served
        with urllib.request.urlopen(url, timeout=HANG_S) as page:  # the printed URL opens the lab page
            body = page.read().decode()
            assert page.status == 200 and "jupyter" in body.lower()
        # no news pop-up: the announcements plugin is disabled and the server fetches no news
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                      body, re.S).group(1))
        assert ANNOUNCEMENTS_PLUGIN in config["disabledExtensions"], config["disabledExtensions"]
        assert config["news"] == {"disabled": True}, config.get("news")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=HANG_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # rvclab lab waits for the server it started before it exits, so its port is free by now
    assert not port_in_use(port), "the JupyterLab server outlived rvclab lab"
