"""The dependency audit (tools/audit_deps.py) against a real HTTP server on 127.0.0.1 that serves
project documents shaped like PyPI's `/pypi/<name>/json`, with AUDIT_PYPI_JSON pointed at it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tools import audit_deps


def project(name: str, latest: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    """A project document shaped like PyPI's JSON API (what the audit reads, and a bit more)."""
    return {
        "info": {"name": name, "version": latest, "summary": f"{name} for tests"},
        "releases": {latest: []},
        "urls": [],
        "vulnerabilities": list(vulns),
        "last_serial": 1,
    }


def vuln(
    id: str, fixed_in: list[str], aliases: list[str] | None = None, withdrawn: str | None = None
) -> dict[str, Any]:
    return {
        "id": id,
        "aliases": aliases or [],
        "details": f"{id}: remote code execution in the parser.\nMore details.",
        "summary": None,
        "fixed_in": fixed_in,
        "link": f"https://osv.dev/vulnerability/{id}",
        "source": "osv",
        "withdrawn": withdrawn,
    }


PROJECTS = {
    "cleanlib": project("cleanlib", "2.0.0"),
    "badlib": project(
        "badlib",
        "1.4.0",
        vuln("PYSEC-2099-1", [], aliases=["CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"]),
        # The same advisory again under its GHSA id, as PyPI lists it: reported once.
        vuln("GHSA-aaaa-bbbb-cccc", [], aliases=["CVE-2099-0001", "PYSEC-2099-1"]),
        vuln("PYSEC-2099-2", ["1.5.0"], withdrawn="2099-01-02T00:00:00Z"),
    ),
    # The latest release 3.0 is affected by an advisory fixed in 3.0.1 (not released yet here).
    "fixlib": project("fixlib", "3.0.0", vuln("GHSA-fix1-fix1-fix1", ["2.9.9", "3.0.1"])),
    # The latest release's only advisory is fixed in 1.1, older than what is installed.
    "oldlib": project("oldlib", "2.0.0", vuln("GHSA-old1-old1-old1", ["1.1.0"])),
    "flaky-lib": project("flaky-lib", "1.0"),
    "futurelib": {
        **project("futurelib", "9.0"),
        "info": {"version": "9.0", "requires_python": ">=4"},
    },
}


class Handler(BaseHTTPRequestHandler):
    requests: list[str]
    fail_once: set[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "pypi" or parts[2] != "json":
            self.send_error(400)
            return
        name = parts[1]
        if name in self.fail_once:
            self.fail_once.discard(name)
            self.send_error(503)
            return
        if name not in PROJECTS:
            self.send_error(404, "Not Found")
            return
        body = json.dumps(PROJECTS[name]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pypi(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Handler]]:
    """A PyPI JSON API on a free port of 127.0.0.1; AUDIT_PYPI_JSON points at it."""
    handler = type("PypiHandler", (Handler,), {"requests": [], "fail_once": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setenv(audit_deps.BASE_URL_ENV, f"http://127.0.0.1:{server.server_port}/pypi")
    monkeypatch.setattr(audit_deps, "RETRY_DELAY", 0.0)
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_ignores(tmp_path: Path) -> Path:
    path = tmp_path / "audit-ignore.txt"
    path.write_text("# nothing accepted\n")
    return path


def run(
    capsys: pytest.CaptureFixture[str], dists: list[tuple[str, str]], *argv: str
) -> tuple[int, str]:
    code = audit_deps.main(list(argv), distributions=dists)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_clean_package_at_latest_passes(pypi, no_ignores, capsys):
    code, out = run(capsys, [("CleanLib", "2.0.0")], "--ignore-file", str(no_ignores))
    assert code == 0
    assert out.strip().splitlines()[-1] == (
        "audit: 1 packages, 1 audited, 0 vulnerable, 0 behind latest (not audited)"
    )
    assert pypi.requests == ["/pypi/cleanlib/json"]  # the PEP 503 name is asked


def test_vulnerable_package_at_latest_fails_with_the_id(pypi, no_ignores, capsys):
    dists = [("badlib", "1.4"), ("cleanlib", "2.0.0")]
    code, out = run(capsys, dists, "--ignore-file", str(no_ignores))
    assert code == 1
    assert "VULNERABLE:" in out
    assert "badlib 1.4: PYSEC-2099-1 (CVE-2099-0001, GHSA-aaaa-bbbb-cccc): no fixed release" in out
    assert out.count("CVE-2099-0001") == 1  # the GHSA duplicate is merged into the PYSEC record
    assert "PYSEC-2099-2" not in out  # withdrawn
    assert "1 vulnerable" in out.splitlines()[-1]


@pytest.mark.parametrize("listed", ["PYSEC-2099-1", "ghsa-aaaa-bbbb-cccc"])
def test_an_ignored_id_passes_and_shows_the_reason(pypi, tmp_path, capsys, listed):
    ignore = tmp_path / "ignore.txt"
    ignore.write_text(
        f"# accepted\n\n{listed}   # only the CLI is affected; we never run it\n"
        "GHSA-gone-gone-gone  # fixed long ago\n"
    )
    code, out = run(capsys, [("badlib", "1.4.0")], "--ignore-file", str(ignore))
    assert code == 0, out
    assert "VULNERABLE" not in out
    assert "badlib 1.4.0: PYSEC-2099-1: only the CLI is affected; we never run it" in out
    assert "ignore entries that matched nothing (remove them?):\n  ghsa-gone-gone-gone" in out
    assert out.splitlines()[-1].endswith(
        "0 vulnerable, 0 behind latest (not audited), 1 advisories ignored"
    )


def test_an_ignore_entry_without_a_reason_is_refused(pypi, tmp_path, capsys):
    ignore = tmp_path / "ignore.txt"
    ignore.write_text("PYSEC-2099-1\n")
    code, out = run(capsys, [("badlib", "1.4.0")], "--ignore-file", str(ignore))
    assert code == 2
    assert "PYSEC-2099-1 needs a reason" in out
    assert pypi.requests == []


def test_installed_version_older_than_a_fix_is_a_finding(pypi, no_ignores, capsys):
    code, out = run(capsys, [("fixlib", "2.5.0")], "--ignore-file", str(no_ignores))
    assert code == 1
    assert "fixlib 2.5.0: GHSA-fix1-fix1-fix1: fixed in 2.9.9, 3.0.1" in out
    assert "not audited: fixlib 2.5.0 is behind the latest release 3.0.0" in out
    assert out.splitlines()[-1] == (
        "audit: 1 packages, 0 audited, 1 vulnerable, 1 behind latest (not audited)"
    )


def test_behind_latest_without_a_relevant_fix_is_not_audited_and_passes(
    pypi, no_ignores, capsys, tmp_path
):
    report = tmp_path / "audit.json"
    dists = [("oldlib", "1.2.0"), ("cleanlib", "2.0.0")]
    code, out = run(capsys, dists, "--ignore-file", str(no_ignores), "--json", str(report))
    assert code == 0, out
    assert (
        "not audited: oldlib 1.2.0 is behind the latest release 2.0.0 "
        "(PyPI's JSON here only describes the latest)"
    ) in out
    assert "VULNERABLE" not in out
    assert out.splitlines()[-1] == (
        "audit: 2 packages, 1 audited, 0 vulnerable, 1 behind latest (not audited)"
    )
    written = json.loads(report.read_text())
    assert written["exit_code"] == 0
    assert written["summary"]["behind_latest"] == 1
    assert {p["name"]: p["status"] for p in written["packages"]} == {
        "cleanlib": "audited",
        "oldlib": "behind",
    }


def test_a_404_is_not_on_pypi_not_an_error(pypi, no_ignores, capsys):
    dists = [("private-thing", "0.1"), ("cleanlib", "2.0.0")]
    code, out = run(capsys, dists, "--ignore-file", str(no_ignores))
    assert code == 0, out
    assert "not on PyPI:\n  private-thing 0.1" in out
    assert out.splitlines()[-1].endswith(", 1 not on PyPI")
    assert pypi.requests.count("/pypi/private-thing/json") == 1  # a 404 is not retried


def test_a_server_error_is_retried_once(pypi, no_ignores, capsys):
    pypi.fail_once.add("flaky-lib")
    code, out = run(capsys, [("flaky_lib", "1.0")], "--ignore-file", str(no_ignores))
    assert code == 0, out
    assert pypi.requests == ["/pypi/flaky-lib/json", "/pypi/flaky-lib/json"]
    assert "1 audited" in out


def test_server_down_exits_2(monkeypatch, no_ignores, capsys, tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(audit_deps.BASE_URL_ENV, f"http://127.0.0.1:{port}/pypi")
    monkeypatch.setattr(audit_deps, "RETRY_DELAY", 0.0)
    report = tmp_path / "audit.json"
    dists = [("cleanlib", "2.0.0"), ("badlib", "1.4.0"), ("oldlib", "1.0")]
    code, out = run(capsys, dists, "--ignore-file", str(no_ignores), "--json", str(report))
    assert code == 2
    assert f"PyPI's JSON API at http://127.0.0.1:{port}/pypi could not be reached" in out
    assert "for 3 of 3 packages" in out
    assert json.loads(report.read_text())["exit_code"] == 2


def test_the_real_environment_is_listed_without_the_project_and_pip():
    installed = dict(audit_deps.installed_distributions())
    assert "aiohttp" in installed  # a dependency of the tutor
    assert "pydantic-core" in installed  # PEP 503 name of pydantic_core
    assert not {"restart-tutor", "pip", "setuptools", "wheel"} & installed.keys()
    assert all(name == audit_deps.normalize(name) for name in installed)


def test_behind_because_the_latest_needs_a_newer_python_says_so(pypi, no_ignores, capsys):
    code, out = run(capsys, [("futurelib", "8.0")], "--ignore-file", str(no_ignores))
    assert code == 0, out
    assert (
        "not audited: futurelib 8.0 is behind the latest release 9.0 "
        "(PyPI's JSON here only describes the latest); the latest needs Python >=4"
    ) in out
