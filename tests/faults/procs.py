"""Real processes for fault tests: the standalone Bot API test server and `restart-tutor run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-TOKEN"


class ApiServerProcess:
    def __init__(self, *extra: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.botapi", "--port", "0", *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base = self.proc.stdout.readline().strip()
        assert self.base.startswith("http"), self.proc.stderr.read() if self.proc.stderr else ""

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.base}/_test/{path}", timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.base}/_test/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def sent_chats(self) -> list[int]:
        sent = self.get("sent?method=sendMessage")
        sent = sent.get("result", sent)["sent"]
        return [m["chat"]["id"] for m in sent]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class TutorProcess:
    def __init__(self, database_url: str, api_base: str, log: Path, **env: str):
        environment = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": api_base,
            "DATABASE_URL": database_url,
            **env,
        }
        self.log = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "--port", "0", "--listen", "127.0.0.1"],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
