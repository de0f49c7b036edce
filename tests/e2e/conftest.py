"""Starts the real moeserve binary on a free loopback port for the end-to-end tests.

MOESERVE_BIN and MOESERVE_MODEL (set by `make test`) point at the binary and the model;
the defaults match the Makefile's.
"""
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MOESERVE_BIN", ROOT / "build/server/moeserve"))
MODEL = Path(os.environ.get("MOESERVE_MODEL", ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
SERVED_NAME = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra_args: str, model: Path = MODEL):
        if not BIN.exists():
            pytest.fail(f"{BIN} not built (run `make test`)")
        if not model.exists():
            pytest.fail(f"{model} missing (run scripts/bootstrap.sh)")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"moeserve-e2e-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(BIN), "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port),
             "--served-model-name", SERVED_NAME, *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"moeserve exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"moeserve did not become healthy in 120 s:\n{self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    code = s.stop()
    assert code == 0, f"moeserve exited with {code} on SIGTERM:\n{s.logs()}"
