"""``rvclab lab``: JupyterLab on the project's notebooks, with this environment as the ``python3`` kernel,
without JupyterLab's news pop-up and update check (:data:`QUIET_ARGS`, :func:`write_page_config`).

Listens on 127.0.0.1 only, on a free port (or ``--port``), with a token made here: the printed URL is
the one to open. Kernels inherit the server's environment (``RVCLAB_WEIGHTS`` among it). Needs the
widgets' JupyterLab extension (``jupyterlab_widgets``). :class:`LabServer` is the server as an object.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
from jupyter_core.paths import jupyter_path
from nbformat.sign import NotebookNotary
from tornado.web import HTTPError

from rvclab.cli.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from rvclab.paths import ROOT

NOTEBOOKS = ROOT / "notebooks"
HOST = "127.0.0.1"
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
# JupyterLab's news pop-up ("get notified about official Jupyter news?") and its update check: the
# frontend plugin is disabled in a page_config.json of a config dir the server reads first, and the
# server neither fetches news (news_url None) nor checks for updates (jupyterlab.NeverCheckForUpdate).
ANNOUNCEMENTS_PLUGIN = "@jupyterlab/apputils-extension:announcements"
QUIET_ARGS = ("--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
# The kernel every stored notebook names (metadata.kernelspec): the one write_kernelspec writes, so
# JupyterLab finds nothing to change when it starts it (a different display_name marks the notebook
# modified the moment it opens). tests/test_notebook_pairs.py checks the stored notebooks.
KERNEL_DISPLAY_NAME = "Python 3 (rvclab)"
NOTEBOOK_KERNELSPEC = {"display_name": KERNEL_DISPLAY_NAME, "language": "python", "name": "python3"}
# Defaults for the server's settings (overrides.json in its app settings dir); the user's own settings
# still win. Autosave off: the reference notebooks refuse saves (READ_ONLY_ENV), which autosave would
# keep trying. The widget manager's saveState stays off (its default): on, it marks every notebook
# with saved widgets modified as it opens (it counts each widget it restores as a change).
SETTING_OVERRIDES = {
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
START_TIMEOUT_S = 60.0  # s to wait for the server to answer
START_ENV = "RVCLAB_LAB_START_S"  # overrides START_TIMEOUT_S for ``rvclab lab`` (tests on a busy machine)


class LabError(RuntimeError):
    """JupyterLab cannot start as asked; the message says why."""


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something listens on ``port`` (closed connections in TIME_WAIT do not count,
    as for the server, which binds with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def headless() -> bool:
    """True where no browser window can open (Linux without a display)."""
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def write_kernelspec(data_dir: str | os.PathLike) -> Path:
    """Write ``<data_dir>/kernels/python3/kernel.json`` running this interpreter's ipykernel.

    ``data_dir`` goes first on the server's ``JUPYTER_PATH``, so this spec wins over any other
    ``python3`` kernel. Returns the kernel.json path.
    """
    folder = Path(data_dir) / "kernels" / "python3"
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }
    path = folder / "kernel.json"
    text = json.dumps(spec, indent=1) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def write_page_config(config_dir: str | os.PathLike) -> Path:
    """Write ``<config_dir>/labconfig/page_config.json`` disabling :data:`ANNOUNCEMENTS_PLUGIN`.

    ``config_dir`` goes first on the server's ``JUPYTER_CONFIG_PATH``; the user's own Jupyter
    configuration is left as it is. Returns the page_config.json path.
    """
    folder = Path(config_dir) / "labconfig"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "page_config.json"
    text = json.dumps({"disabledExtensions": {ANNOUNCEMENTS_PLUGIN: True}}, indent=1) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def stamp_notebook(path: str | os.PathLike) -> bool:
    """Give a stored notebook what JupyterLab 4 would otherwise add on open (and so mark it modified):
    ``metadata.kernelspec`` = :data:`NOTEBOOK_KERNELSPEC`, nbformat 4.5 and a cell id on every cell.
    Written in nbformat's own layout (indent 1, sorted keys), only when something changed; True then."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    if nb.get("nbformat") != 4:
        raise ValueError(f"{path}: nbformat {nb.get('nbformat')}, expected 4")
    nb["nbformat_minor"] = max(int(nb.get("nbformat_minor", 0)), 5)
    nb.setdefault("metadata", {})["kernelspec"] = dict(NOTEBOOK_KERNELSPEC)
    for i, cell in enumerate(nb.get("cells", [])):
        cell.setdefault("id", f"cell-{i:03d}")
    new = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def write_setting_overrides(settings_dir: str | os.PathLike) -> Path:
    """Write :data:`SETTING_OVERRIDES` to ``<settings_dir>/overrides.json`` (the server's
    ``LabApp.app_settings_dir``); returns its path."""
    folder = Path(settings_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "overrides.json"
    text = json.dumps(SETTING_OVERRIDES, indent=1) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def trust_notebooks(paths, notary_dir: str | os.PathLike) -> int:
    """Sign ``paths`` (.ipynb) in the notebook notary kept in ``notary_dir`` (the server's
    ``NotebookNotary.data_dir``), so JupyterLab renders their saved widgets, HTML and players on
    open instead of plain text. Only the project's own notebooks are passed here. The count signed."""
    Path(notary_dir).mkdir(parents=True, exist_ok=True)
    notary = NotebookNotary(data_dir=str(notary_dir))
    signed = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not notary.check_signature(nb):
            notary.sign(nb)
            signed += 1
    return signed


READ_ONLY_ENV = "RVCLAB_LAB_READ_ONLY"  # the server's read-only notebooks, os.pathsep-separated


def refuse_saving_reference_notebooks(model=None, path: str = "", contents_manager=None, **kwargs) -> None:
    """The server's pre-save hook: refuse to overwrite a notebook listed in ``$RVCLAB_LAB_READ_ONLY``
    (the project's stored notebooks, whose outputs nbval compares against; ``make notebooks-run`` is
    their one writer). JupyterLab shows the message; File > Save Notebook As... keeps a run."""
    listed = {Path(p).resolve() for p in os.environ.get(READ_ONLY_ENV, "").split(os.pathsep) if p}
    target = (Path(contents_manager.root_dir) / path.lstrip("/")).resolve()
    if target in listed:
        raise HTTPError(403, reason=f"{path} holds the reference outputs the notebook tests compare against; "
                                    "save your run under another name (File > Save Notebook As...), or "
                                    "refresh the reference with: make notebooks-run NB=notebooks/" + target.name)


def widgets_extension_dir() -> Path | None:
    """Where the ipywidgets JupyterLab extension is installed, or None."""
    for base in jupyter_path("labextensions"):
        candidate = Path(base) / WIDGETS_EXTENSION / "package.json"
        if candidate.exists():
            return candidate.parent
    return None


def default_data_dir() -> Path:
    """Where ``rvclab lab`` keeps its kernelspec and its page config (``config/``): inside this
    environment (sys.prefix)."""
    return Path(sys.prefix) / "share" / "rvclab" / "jupyter"


class LabServer:
    """A JupyterLab server process on ``root_dir``; ``url`` carries the token.

    ``data_dir`` holds the kernelspec (see :func:`write_kernelspec`) and, in ``config/``, the page
    config that turns the news pop-up off (:func:`write_page_config`); ``settings_dir`` (optional)
    replaces the user's JupyterLab settings; ``env`` adds variables for the server and its kernels.
    ``expose_app`` sets ``window.jupyterapp`` in the page (for tests driving the browser);
    ``trust``: notebooks signed as trusted in this server's own notary (``data_dir/notary``;
    :func:`trust_notebooks`); ``read_only``: notebooks the server refuses to overwrite
    (:func:`refuse_saving_reference_notebooks`); ``extra_args`` go to ``jupyter lab`` as they are.
    """

    def __init__(self, root_dir: str | os.PathLike = NOTEBOOKS, *, port: int | None = None,
                 data_dir: str | os.PathLike | None = None, settings_dir: str | os.PathLike | None = None,
                 open_browser: bool = False, expose_app: bool = False, env: dict | None = None,
                 log_path: str | os.PathLike | None = None, trust=(), read_only=(),
                 extra_args: tuple[str, ...] = ()):
        self.root_dir = Path(root_dir).resolve()
        if not self.root_dir.is_dir():
            raise LabError(f"{self.root_dir}: no such folder")
        if port is not None and port_in_use(port):
            raise LabError(f"port {port} on {HOST} is in use; pass another --port or leave it out")
        self.port = port if port is not None else free_port()
        self.token = secrets.token_hex(24)
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.config_dir = self.data_dir / "config"
        self.notary_dir = self.data_dir / "notary"
        self.trust = [Path(p) for p in trust]
        self.read_only = [Path(p).resolve() for p in read_only]
        self.settings_dir = Path(settings_dir) if settings_dir else None
        self.open_browser = open_browser
        self.expose_app = expose_app
        self.extra_env = dict(env or {})
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/lab?token={self.token}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "jupyterlab",
               f"--ServerApp.ip={HOST}", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={self.root_dir}", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.open_browser={self.open_browser}", *QUIET_ARGS,
               f"--LabApp.app_settings_dir={self.config_dir / 'lab-settings'}",
               f"--NotebookNotary.data_dir={self.notary_dir}",
               "--ContentsManager.pre_save_hook=rvclab.cli.lab.refuse_saving_reference_notebooks"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # a fresh Debian machine or a container
            cmd.append("--allow-root")
        if self.expose_app:
            cmd.append("--LabApp.expose_app_in_browser=True")
        return cmd + self.extra_args

    def environment(self) -> dict:
        env = dict(os.environ)
        env.update(self.extra_env)
        paths = [str(self.data_dir)] + [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]
        env["JUPYTER_PATH"] = os.pathsep.join(paths)
        env[READ_ONLY_ENV] = os.pathsep.join(str(p) for p in self.read_only)
        configs = [str(self.config_dir)] + [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(configs)
        if self.settings_dir is not None:
            env["JUPYTERLAB_SETTINGS_DIR"] = str(self.settings_dir)
        return env

    def start(self, timeout: float = START_TIMEOUT_S) -> LabServer:
        """Start the server and wait until it answers (raises :class:`LabError` otherwise)."""
        if widgets_extension_dir() is None:
            raise LabError(f"the ipywidgets JupyterLab extension ({WIDGETS_EXTENSION}) is not installed; "
                           f"run: {sys.executable} -m pip install jupyterlab_widgets")
        write_kernelspec(self.data_dir)
        write_page_config(self.config_dir)
        write_setting_overrides(self.config_dir / "lab-settings")
        trust_notebooks(self.trust, self.notary_dir)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(self.command(), env=self.environment(), stdout=log,
                                            stderr=subprocess.STDOUT if self.log_path else None)
        finally:
            if self.log_path:
                log.close()
        self.wait_ready(timeout)
        return self

    def api(self, path: str, timeout: float = 5.0):
        """GET ``/api/<path>`` with the token; the decoded JSON."""
        req = urllib.request.Request(f"{self.base_url}/api/{path}",
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LabError(f"JupyterLab exited with code {self.process.returncode} before answering"
                               + (f" (log: {self.log_path})" if self.log_path else ""))
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise LabError(f"JupyterLab did not answer on {self.base_url} within {timeout:.0f} s")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: the server shuts its kernels down
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LabServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def add_arguments(p) -> None:
    p.add_argument("--port", type=int, default=None,
                   help="port on 127.0.0.1, in [1, 65535] (default: none, a free one)")
    p.add_argument("--dir", default=str(NOTEBOOKS),
                   help="folder to serve; the project's notebooks open trusted and read-only there: save a run "
                        "with File > Save Notebook As... (default %(default)s)")
    browser = p.add_mutually_exclusive_group()
    browser.add_argument("--no-browser", dest="browser", action="store_false", default=None,
                         help="do not open a browser (the default where there is no display)")
    browser.add_argument("--browser", dest="browser", action="store_true", help="open a browser")


def run_cli(args) -> int:
    open_browser = (not headless()) if args.browser is None else args.browser
    if args.port is not None and not 1 <= args.port <= 65535:
        print(f"rvclab lab: --port {args.port} is not a TCP port (1..65535)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        folder = Path(args.dir).resolve()
        shipped = sorted(NOTEBOOKS.glob("*.ipynb")) if folder == NOTEBOOKS.resolve() else []  # ours only
        server = LabServer(folder, port=args.port, open_browser=open_browser, trust=shipped, read_only=shipped)
        server.start(timeout=float(os.environ.get(START_ENV, START_TIMEOUT_S)))
    except LabError as exc:
        print(f"rvclab lab: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))  # stop the server on SIGTERM too
    try:  # from here on, SIGTERM or Ctrl+C (even while the URL is printed) stops the server
        kernel = shutil.which("python", path=str(Path(sys.executable).parent)) or sys.executable
        print(f"JupyterLab on {server.root_dir}, kernel {kernel}", flush=True)
        print(f"open: {server.url}", flush=True)
        print("stop with Ctrl+C", flush=True)
        return EXIT_OK if server.process.wait() == 0 else EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        server.stop()
