"""``rvclab lab`` (``make lab``): prints a URL that works, serves notebooks/ with this venv's kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rvclab_lab_prints_a_working_url_and_stops_on_sigterm(tmp_path):
    from rvclab.cli.lab import free_port, widgets_extension_dir

    assert widgets_extension_dir() is not None, "the ipywidgets JupyterLab extension is not installed"

    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")}
    proc = subprocess.Popen([sys.executable, "-m", "rvclab.cli", "lab", "--no-browser", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, f"rvclab lab exited with {proc.returncode}"
            if line.startswith("open: "):
                url = line.split()[1]
        assert url and url.startswith(f"http://127.0.0.1:{port}/lab?token="), url
        token = url.split("token=")[1]

        def api(path):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/{path}",
                                         headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())

        spec = api("kernelspecs")["kernelspecs"]["python3"]["spec"]
        assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()
        served = {item["name"] for item in api("contents")["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= served
        with urllib.request.urlopen(url, timeout=30) as page:  # the printed URL opens the lab page
            assert page.status == 200 and b"jupyter" in page.read().lower()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    from rvclab.cli.lab import port_in_use

    assert not port_in_use(port), "the JupyterLab server outlived rvclab lab"
