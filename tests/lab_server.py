"""A JupyterLab server on 127.0.0.1 for the tests, started by ``make lab``: in a folder, with the kit's settings,
its runtime and user config kept in the test's own temporary folder, stopped afterwards."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 90.0


@dataclass
class Lab:
    base: str
    token: str

    def get(self, path: str, timeout: float = 30.0) -> dict:
        req = urllib.request.Request(f"{self.base}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    def url(self, path: str) -> str:
        return f"{self.base}/lab/tree/{path}?token={self.token}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(root: Path, scratch: Path, env: dict | None = None):
    """JupyterLab serving ``root``, started by ``make lab`` (the README's command, which adds
    ``--allow-root`` as root) with the port and token passed through its ``ARGS`` and the folder as ``LAB_ROOT``."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, **(env or {}), "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
           "JUPYTER_CONFIG_DIR": str(scratch / "config"), "JUPYTER_DATA_DIR": str(scratch / "data")}
    lab_args = (f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
                f"--ServerApp.token={token}")
    # -o: the venv running the tests is the one to use, whatever the stamp's age
    cmd = ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed", "lab",
           f"BIN={Path(sys.executable).parent}", f"LAB_ROOT={root}", f"ARGS={lab_args}"]
    log_path = scratch / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=scratch,
                                start_new_session=True)   # make and jupyter stop together
    lab = Lab(f"http://127.0.0.1:{port}", token)
    try:
        _wait_until_up(proc, lab, log_path)
        yield lab
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_up(proc, lab: Lab, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited early ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            lab.get("/api/status", timeout=5.0)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
