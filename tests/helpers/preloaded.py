"""``python script.py args`` for tests that run many commands, each started from an interpreter that
has imported torch and Lightning once (multiprocessing's fork server): every command still runs in
a process of its own, with its own argv, folder, environment, stdout, stderr and exit code, as a
fresh ``python`` would give them, but without paying those imports (seconds a command) again.

Only for commands run to their end (``subprocess.run``'s use); a test that signals a command's
process or reads its output while it runs starts a real ``python``.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

PRELOAD = ["torch", "lightning"]


def _clean_sys_path() -> list[str]:
    """A fresh interpreter's sys.path after its script's folder (pytest adds the checkout and more)."""
    out = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _exit_code(code: object) -> int:
    """The process exit code of ``SystemExit(code)``, as the interpreter makes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _command(script: str, args: list[str], cwd: str, env: dict[str, str], sys_path: list[str],
             stdout: str, stderr: str) -> None:
    """In the forked child: become ``python script args`` and exit as it would."""
    for fd, name in ((1, stdout), (2, stderr)):
        target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [script, *args]
    sys.path[:] = [str(Path(script).resolve().parent), *sys_path]
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints an uncaught error
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        atexit._run_exitfuncs()  # os._exit below skips them; a fresh interpreter runs them
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class PreloadedPython:
    """``run([script, *args], cwd=, env=, timeout=)`` -> ``subprocess.CompletedProcess``. The fork
    server is this process's one (multiprocessing keeps one): the first to start it sets its preload."""

    def __init__(self):
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.sys_path = _clean_sys_path()

    def run(self, argv: list[str], cwd: Path | str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        script, *args = argv
        with tempfile.TemporaryDirectory(prefix="preloaded-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            process = self.context.Process(target=_command, args=(str(script), list(args), str(cwd), dict(env),
                                                                  self.sys_path, str(out), str(err)))
            process.start()
            process.join(timeout)
            if process.exitcode is None:
                process.kill()
                process.join()
                raise subprocess.TimeoutExpired([sys.executable, *argv], timeout)
            # A signal's death is -N, as subprocess reports it.
            return subprocess.CompletedProcess([sys.executable, *argv], process.exitcode, out.read_text(errors="replace"),
                                               err.read_text(errors="replace"))


_shared: PreloadedPython | None = None


def run_python(argv: list[str], cwd: Path | str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, *argv], cwd=, env=, capture_output=True, text=True, timeout=)``
    through one preloaded interpreter shared by the session's tests."""
    global _shared
    if _shared is None:
        _shared = PreloadedPython()
    return _shared.run(argv, cwd=cwd, env=env, timeout=timeout)
