"""Audit the installed dependencies against the advisories PyPI publishes: `make audit`.

Why this exists instead of pip-audit: the CI machines (and the development machine) reach only the
package registries. pip-audit asks PyPI's per-release JSON (`/pypi/<name>/<version>/json`), which
the registry mirror here answers with 404 for every package, so pip-audit reports each one "not
found on PyPI" and audits nothing; its other source, OSV (api.osv.dev), does not resolve. The
per-project JSON (`/pypi/<name>/json`) does answer, and carries PyPI's advisory data (the same
OSV/PYSEC/GHSA records pip-audit uses) in its `vulnerabilities` list, but only for the project's
LATEST release. So:

* a package installed at its latest release is fully audited: each advisory not withdrawn in the
  list is a finding;
* a package behind its latest release cannot be audited from that list, and is reported as "not
  audited"; an advisory of the latest release that names a fix (`fixed_in`) newer than the
  installed version is still a finding, since the installed version predates that fix.

Where PyPI's per-release endpoint or OSV is reachable, use pip-audit instead: it knows every
release, not just the latest. `tools/audit-ignore.txt` accepts an advisory with a written reason,
like pip-audit's `--ignore-vuln`. The base URL comes from `AUDIT_PYPI_JSON` (default
`https://pypi.org/pypi`), so tests can point it at a local server.

Exit status: 0 nothing to report, 1 a finding that is not ignored, 2 the audit could not run (more
than half of the packages could not be fetched, nothing could be checked, or a bad ignore file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

DEFAULT_BASE_URL = "https://pypi.org/pypi"
BASE_URL_ENV = "AUDIT_PYPI_JSON"
IGNORE_FILE = Path(__file__).with_name("audit-ignore.txt")
# The project itself is not on PyPI; the packaging tools are not imported by the tutor.
SKIP = frozenset({"restart-tutor", "pip", "setuptools", "wheel"})
WORKERS = 8
TIMEOUT = 30.0
RETRY_DELAY = 1.0  # seconds before the one retry after a network error

EXIT_OK, EXIT_FINDINGS, EXIT_UNREACHABLE = 0, 1, 2

# PackageResult.status values.
AUDITED = "audited"  # installed at the latest release: the advisory list applies in full
BEHIND = "behind"  # older than the latest release: only advisories with a newer fix apply
UNAUDITED = "unaudited"  # newer than the latest, or versions that cannot be compared
NOT_ON_PYPI = "not-on-pypi"  # 404: a package PyPI does not know
FAILED = "failed"  # network or server error, after one retry


def normalize(name: str) -> str:
    """The PEP 503 normalised form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> list[tuple[str, str]]:
    """(normalised name, version) of each distribution in the running interpreter's environment,
    without the project itself and pip/setuptools/wheel. Where a name is installed twice, the
    first one on sys.path wins, as it does for imports."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:  # a broken .dist-info without metadata
            continue
        key = normalize(name)
        if key not in SKIP and key not in found:
            found[key] = dist.version
    return sorted(found.items())


class IgnoreFileError(ValueError):
    """The ignore file is missing or has a line without an id or a reason."""


def read_ignores(path: Path) -> dict[str, str]:
    """The ignore file's entries: case-folded advisory id → the written reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IgnoreFileError(f"cannot read the ignore file {path}: {exc.strerror}") from exc
    ignores: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry, _, reason = line.partition("#")
        entry, reason = entry.strip(), reason.strip()
        if not entry:
            continue
        if len(entry.split()) != 1:
            raise IgnoreFileError(f"{path}:{number}: one advisory id a line, then `# reason`")
        if not reason:
            raise IgnoreFileError(f"{path}:{number}: {entry} needs a reason after `#`")
        ignores[entry.casefold()] = reason
    return ignores


class FetchError(Exception):
    """The project JSON could not be fetched (after the retry)."""


def fetch_project(base_url: str, name: str, timeout: float = TIMEOUT) -> dict[str, Any] | None:
    """PyPI's JSON document for the project `name`, or None when PyPI answers 404.

    A network error, a 429 or a 5xx is tried once more after RETRY_DELAY seconds."""
    url = f"{base_url.rstrip('/')}/{urllib.parse.quote(name)}/json"
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "restart-tutor-audit"}
    )
    error = ""
    for attempt in (1, 2):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                document = json.load(response)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return None
            error = f"HTTP {exc.code} from {url}"
            if exc.code != 429 and exc.code < 500:
                break
        except urllib.error.URLError as exc:
            error = f"{url}: {exc.reason}"
        except (OSError, ValueError) as exc:  # timeouts, resets, a truncated or non-JSON body
            error = f"{url}: {exc or type(exc).__name__}"
        else:
            info = document.get("info") if isinstance(document, dict) else None
            if isinstance(info, dict) and info.get("version"):
                return document
            error = f"{url}: not a PyPI project document"
            break
        if attempt == 1:
            time.sleep(RETRY_DELAY)
    raise FetchError(error)


@dataclass
class Advisory:
    """One entry of PyPI's `vulnerabilities` list."""

    id: str
    aliases: list[str]
    fixed_in: list[str]
    link: str
    summary: str
    ignored_because: str | None = None

    @classmethod
    def from_pypi(cls, entry: dict[str, Any]) -> Advisory:
        text = entry.get("summary") or entry.get("details") or ""
        first_line = text.strip().splitlines()[0] if text.strip() else ""
        return cls(
            id=str(entry.get("id", "?")),
            aliases=[str(a) for a in entry.get("aliases") or []],
            fixed_in=[str(v) for v in entry.get("fixed_in") or []],
            link=str(entry.get("link") or ""),
            summary=first_line[:160],
        )

    def ids(self) -> set[str]:
        return {self.id.casefold(), *(alias.casefold() for alias in self.aliases)}

    def describe(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fixed release"
        link = f" {self.link}" if self.link else ""
        return f"{self.id}{aliases}: {fixed}{link}"


@dataclass
class PackageResult:
    """What the audit concluded for one installed distribution."""

    name: str
    version: str
    status: str
    latest: str | None = None
    findings: list[Advisory] = field(default_factory=list)
    ignored: list[Advisory] = field(default_factory=list)
    note: str = ""


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _runs_here(requires_python: str) -> bool:
    """Whether this interpreter satisfies a Requires-Python (True when it cannot be parsed)."""
    try:
        return SpecifierSet(requires_python).contains(platform.python_version(), prereleases=True)
    except InvalidSpecifier:
        return True


def evaluate(
    name: str, installed: str, document: dict[str, Any], ignores: dict[str, str]
) -> PackageResult:
    """Compare an installed version with the advisories of the project's latest release."""
    latest = str(document["info"]["version"])
    advisories: list[Advisory] = []
    for entry in document.get("vulnerabilities") or []:
        if not isinstance(entry, dict) or entry.get("withdrawn"):
            continue
        advisory = Advisory.from_pypi(entry)
        # PyPI often lists a PYSEC record and its GHSA alias apart: merge them into one.
        same = next((a for a in advisories if a.ids() & advisory.ids()), None)
        if same is None:
            advisories.append(advisory)
            continue
        for alias in [advisory.id, *advisory.aliases]:
            if alias.casefold() not in same.ids():
                same.aliases.append(alias)
        same.fixed_in.extend(v for v in advisory.fixed_in if v not in same.fixed_in)
    mine, newest = _version(installed), _version(latest)
    if (mine is not None and newest is not None and mine == newest) or installed == latest:
        result = PackageResult(name, installed, AUDITED, latest)
        relevant = advisories
    elif mine is not None and newest is not None and mine < newest:
        result = PackageResult(name, installed, BEHIND, latest)
        relevant = []
        for advisory in advisories:
            fixes = [_version(v) for v in advisory.fixed_in]
            if any(fix is not None and fix > mine for fix in fixes):
                relevant.append(advisory)
        result.note = (
            f"{name} {installed} is behind the latest release {latest} "
            "(PyPI's JSON here only describes the latest)"
        )
        needs = str(document["info"].get("requires_python") or "")
        if needs and not _runs_here(needs):
            result.note += f"; the latest needs Python {needs}"
        unattributed = [a.id for a in advisories if a not in relevant]
        if unattributed:
            result.note += f"; the latest release itself has: {', '.join(unattributed)}"
    else:
        result = PackageResult(name, installed, UNAUDITED, latest)
        relevant = []
        result.note = (
            f"{name} {installed} is newer than the latest release {latest} on PyPI"
            if mine is not None and newest is not None
            else f"{name} {installed} cannot be compared with the latest release {latest}"
        )
    for advisory in relevant:
        reason = next((ignores[i] for i in sorted(advisory.ids()) if i in ignores), None)
        if reason is None:
            result.findings.append(advisory)
        else:
            advisory.ignored_because = reason
            result.ignored.append(advisory)
    return result


def check(
    name: str, version: str, base_url: str, ignores: dict[str, str], timeout: float
) -> PackageResult:
    """Fetch one project's JSON and evaluate the installed version against it."""
    try:
        document = fetch_project(base_url, name, timeout)
    except FetchError as exc:
        return PackageResult(name, version, FAILED, note=str(exc))
    if document is None:
        return PackageResult(name, version, NOT_ON_PYPI)
    return evaluate(name, version, document, ignores)


@dataclass
class Report:
    """The audit of a whole environment."""

    base_url: str
    packages: list[PackageResult]
    unused_ignores: list[str]

    def count(self, status: str) -> int:
        return sum(p.status == status for p in self.packages)

    @property
    def vulnerable(self) -> list[PackageResult]:
        return [p for p in self.packages if p.findings]

    @property
    def unreachable(self) -> str | None:
        """Why nothing can be concluded from this audit, or None."""
        total, failed = len(self.packages), self.count(FAILED)
        if total == 0:
            return "audit: FAILED: no installed distribution to audit."
        if failed * 2 > total:
            return (
                f"audit: FAILED: PyPI's JSON API at {self.base_url} could not be reached for "
                f"{failed} of {total} packages, so nothing can be concluded (check the network, "
                f"or {BASE_URL_ENV})."
            )
        if self.count(AUDITED) + self.count(BEHIND) == 0:
            return "audit: FAILED: PyPI's JSON API described none of the installed packages."
        return None

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return EXIT_UNREACHABLE
        return EXIT_FINDINGS if self.vulnerable else EXIT_OK

    def summary(self) -> str:
        line = (
            f"audit: {len(self.packages)} packages, {self.count(AUDITED)} audited, "
            f"{len(self.vulnerable)} vulnerable, {self.count(BEHIND)} behind latest (not audited)"
        )
        extras = [
            (self.count(NOT_ON_PYPI), "not on PyPI"),
            (self.count(UNAUDITED), "other not audited"),
            (self.count(FAILED), "failed to fetch"),
            (sum(len(p.ignored) for p in self.packages), "advisories ignored"),
        ]
        return line + "".join(f", {n} {what}" for n, what in extras if n)

    def render(self) -> str:
        """The human-readable report, ending with the summary line."""
        lines: list[str] = []

        def section(title: str | None, entries: list[str]) -> None:
            if entries and title:
                lines.append(f"{title}:")
                lines.extend(f"  {entry}" for entry in entries)
            else:
                lines.extend(entries)

        section(
            "VULNERABLE",
            [f"{p.name} {p.version}: {a.describe()}" for p in self.vulnerable for a in p.findings],
        )
        section(
            "ignored (tools/audit-ignore.txt)",
            [
                f"{p.name} {p.version}: {a.id}: {a.ignored_because}"
                for p in self.packages
                for a in p.ignored
            ],
        )
        section(
            None,
            [f"not audited: {p.note}" for p in self.packages if p.status in (BEHIND, UNAUDITED)],
        )
        section(
            "not on PyPI",
            [f"{p.name} {p.version}" for p in self.packages if p.status == NOT_ON_PYPI],
        )
        section("could not fetch", [p.note for p in self.packages if p.status == FAILED])
        section("ignore entries that matched nothing (remove them?)", self.unused_ignores)
        lines.append(self.summary())
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "summary": {
                "packages": len(self.packages),
                "audited": self.count(AUDITED),
                "vulnerable": len(self.vulnerable),
                "behind_latest": self.count(BEHIND),
                "other_not_audited": self.count(UNAUDITED),
                "not_on_pypi": self.count(NOT_ON_PYPI),
                "failed": self.count(FAILED),
            },
            "exit_code": self.exit_code,
            "error": self.unreachable,
            "packages": [asdict(p) for p in self.packages],
            "unused_ignores": self.unused_ignores,
        }


def audit(
    distributions: Iterable[tuple[str, str]],
    base_url: str,
    ignores: dict[str, str],
    timeout: float = TIMEOUT,
) -> Report:
    """Audit (name, version) pairs against PyPI's project JSON, WORKERS requests at a time."""
    pairs = sorted({normalize(name): version for name, version in distributions}.items())
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        packages = list(
            pool.map(lambda pair: check(pair[0], pair[1], base_url, ignores, timeout), pairs)
        )
    seen: set[str] = set()
    for package in packages:
        for advisory in package.findings + package.ignored:
            seen |= advisory.ids()
    return Report(base_url, packages, sorted(i for i in ignores if i not in seen))


def main(
    argv: Sequence[str] | None = None,
    distributions: Iterable[tuple[str, str]] | None = None,
) -> int:
    """Run the audit and print the report. `distributions` replaces the installed ones (tests)."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.audit_deps",
        description="Audit the installed distributions against the advisories in PyPI's "
        f"project JSON (base URL from ${BASE_URL_ENV}, default {DEFAULT_BASE_URL}).",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.add_argument(
        "--ignore-file",
        type=Path,
        default=IGNORE_FILE,
        metavar="PATH",
        help="advisories to accept, `ID  # reason` a line (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT, help="seconds per request (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        ignores = read_ignores(args.ignore_file)
    except IgnoreFileError as exc:
        print(f"audit: FAILED: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    report = audit(
        installed_distributions() if distributions is None else distributions,
        base_url,
        ignores,
        args.timeout,
    )
    print(report.render())
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    if report.unreachable:
        print(report.unreachable, file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
