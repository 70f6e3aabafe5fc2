"""JupyterLab serves the jupytext percent-format notebooks as notebooks."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
STARTUP_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str, timeout: float = 5.0) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def test_lab_opens_percent_py_as_notebook(tmp_path):
    pytest.importorskip("jupyterlab")          # the dev extra; jupytext is a dependency of the kit
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    # Keep the server's runtime files and user config out of the developer's home.
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "data")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={NOTEBOOKS}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited early ({proc.returncode}):\n"
                            + (tmp_path / "lab.log").read_text()[-3000:])
            try:
                _get(f"{base}/api/status", token)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not answer within "
                                f"{STARTUP_TIMEOUT_S:.0f} s:\n"
                                + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.5)

        model = _get(f"{base}/api/contents/00_dataset_tour.py?type=notebook&content=1",
                     token, timeout=30.0)
        assert model["type"] == "notebook", model.get("type")
        cells = model["content"]["cells"]
        assert len(cells) > 3
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1 and tagged[0]["cell_type"] == "code"
        assert 'profile = "smoke"' in "".join(tagged[0]["source"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
