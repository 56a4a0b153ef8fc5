"""A real TensorBoard server and a real headless browser, for the dashboard tests
(tests/test_tensorboard.py) and the README screenshots (experiments/screenshots.py).

- ``TensorBoard(logdir)`` starts ``tensorboard --logdir LOGDIR --host 127.0.0.1 --port <free>``
  as a subprocess, waits until its HTTP API answers, and stops it on exit (``with``), whatever
  happened inside; ``get``/``post`` call its HTTP API and decode the JSON.
- ``screenshot(url, png)`` shoots one page with Debian's headless ``chromium``, always inside
  an outer ``timeout`` (a headless browser that hangs must not hang the tests).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tensorboard_command() -> list[str]:
    """The ``tensorboard`` script beside this Python (the venv's), else its module."""
    script = Path(sys.executable).with_name("tensorboard")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tensorboard.main"]


def _stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process's group (it was started in a session of its own), SIGKILL it after
    grace_s, and SIGKILL whatever is left in the group (a browser's or a data server's children)."""
    try:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=grace_s)


class TensorBoard:
    """``with TensorBoard(logdir) as tb: tb.get("/data/runs")``: a live server on a free port."""

    def __init__(self, logdir: str | Path, start_timeout_s: float = 90.0, reload_interval_s: int = 2):
        self.logdir = Path(logdir)
        self.start_timeout_s = start_timeout_s
        self.reload_interval_s = reload_interval_s
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "TensorBoard":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        for attempt in range(3):  # another process may take the free port before TensorBoard binds it
            if attempt:
                self._log.close()  # the output of a try whose port was taken
            self.port = free_port()
            self._log = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(
                [*_tensorboard_command(), "--logdir", str(self.logdir), "--host", "127.0.0.1",
                 "--port", str(self.port), "--reload_interval", str(self.reload_interval_s)],
                stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
            if self._wait_until_ready():
                return
            if self.proc.poll() is None:  # alive but silent: no use retrying
                break
        raise RuntimeError(f"TensorBoard on {self.logdir} did not answer on port {self.port} within "
                           f"{self.start_timeout_s:.0f} s. Its output:\n{self.output()[-3000:]}")

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                self.get("/data/environment", timeout=2)
                return True
            except (OSError, ValueError):  # not listening yet, or not serving JSON yet
                time.sleep(0.3)
        return False

    def output(self) -> str:
        """What the server printed so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _request(self, path: str, data: bytes | None, timeout: float) -> bytes:
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET",
                                         headers={"Content-Type": "application/json"} if data is not None else {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def get(self, path: str, timeout: float = 30) -> Any:
        """GET ``path`` (e.g. ``/data/runs``) and decode its JSON."""
        return json.loads(self._request(path, None, timeout))

    def get_bytes(self, path: str, timeout: float = 30) -> bytes:
        """GET ``path`` as it is (e.g. an image)."""
        return self._request(path, None, timeout)

    def post(self, path: str, body: dict[str, Any], timeout: float = 30) -> Any:
        """POST ``body`` as JSON to ``path`` (the hparams plugin's API) and decode the answer."""
        return json.loads(self._request(path, json.dumps(body).encode(), timeout))

    def wait_for_runs(self, expected: set[str], timeout_s: float = 60.0) -> list[str]:
        """The server's run names once every one of ``expected`` is among them (it loads the
        event files in the background, every reload_interval_s)."""
        deadline = time.monotonic() + timeout_s
        while True:
            runs = self.get("/data/runs")
            if expected <= set(runs) or time.monotonic() > deadline:
                return runs
            time.sleep(0.5)

    # ------------------------------------------------------------ the plugins' APIs

    def scalar_tags(self) -> dict[str, set[str]]:
        """{run: {scalar tag, ...}}."""
        return {run: set(tags) for run, tags in self.get("/data/plugin/scalars/tags").items()}

    def image_tags(self) -> dict[str, set[str]]:
        """{run: {image tag, ...}}."""
        return {run: set(tags) for run, tags in self.get("/data/plugin/images/tags").items()}

    def custom_scalars_layout(self) -> dict[str, Any]:
        return self.get("/data/plugin/custom_scalars/layout")

    def hparams_experiment(self) -> dict[str, Any]:
        return self.post("/data/plugin/hparams/experiment", {"experimentName": ""})

    def hparams_session_groups(self, experiment: dict[str, Any]) -> list[dict[str, Any]]:
        """Every session group, with every hparam and metric of ``experiment`` as a column."""
        body = {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [{"hparam": h["name"]} for h in experiment.get("hparamInfos", [])]
                         + [{"metric": m["name"]} for m in experiment.get("metricInfos", [])],
            "startIndex": 0, "sliceSize": 1000, "aggregationType": "AGGREGATION_AVG",
        }
        return self.post("/data/plugin/hparams/session_groups", body).get("sessionGroups", [])


# ---------------------------------------------------------------- headless chromium

def chromium() -> str | None:
    """The path of Debian's chromium, or None where it is not installed (`make test` installs it)."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(url: str, png: str | Path, width: int = 1400, height: int = 900,
               virtual_time_ms: int = 6000, timeout_s: int = 90) -> Path:
    """Shoot ``url`` into ``png`` (width x height) with headless chromium and return the path.

    TensorBoard's line charts render blank in headless chromium unless the URL has
    ``?forceSVG=true``; virtual_time_ms lets the page fetch and draw before the shot.
    """
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("chromium is not installed (make test installs Debian's chromium)")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            "timeout", "--kill-after=5", str(timeout_s), browser, "--headless", "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
            "--mute-audio", f"--user-data-dir={profile}", f"--window-size={width},{height}",
            f"--virtual-time-budget={virtual_time_ms}", f"--screenshot={png}", url,
        ]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s + 15)
        finally:
            _stop(proc, grace_s=5)  # and whatever chromium left in its process group
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {url} (exit code {proc.returncode}):\n"
                           f"{out.decode(errors='replace')[-2000:]}")
    return png
