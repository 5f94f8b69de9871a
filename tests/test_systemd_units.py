"""The systemd units: `systemd-analyze verify`, and the sandbox's exposure level."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parent.parent / "systemd"
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(
    ANALYZE is None and not os.environ.get("SYNCD_REQUIRE_SYSTEMD"),
    reason="systemd-analyze is not installed (.ci/run installs it)",
)


def installed_units(tmp_path: Path) -> Path:
    """The units as installed, with ExecStart pointing at this environment's syncd."""
    syncd = Path(sys.executable).parent / "syncd"
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/syncd/bin/syncd", str(syncd))
        (tmp_path / unit.name).write_text(text)
    return tmp_path


@needs_analyze
def test_units_verify(tmp_path: Path) -> None:
    assert ANALYZE is not None, "systemd-analyze is required here"
    units = installed_units(tmp_path)
    proc = subprocess.run(
        [ANALYZE, "verify", "syncd.service", "syncd-once.service", "syncd-once.timer"],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


@needs_analyze
@pytest.mark.parametrize("unit", ["syncd.service", "syncd-once.service"])
def test_exposure_level_is_2_or_lower(tmp_path: Path, unit: str) -> None:
    assert ANALYZE is not None, "systemd-analyze is required here"
    units = installed_units(tmp_path)
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", unit],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0, proc.stdout


def test_service_essentials() -> None:
    text = (UNITS / "syncd.service").read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "StateDirectory=syncd",
        "ConfigurationDirectory=syncd",
        "LoadCredential=okta-token:",
        "LoadCredential=scim-token:",
        "DynamicUser=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
    ):
        assert re.search(rf"^{re.escape(line)}", text, re.M), line
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert re.search(r"^ExecStart=\S+ run --config", text, re.M)
    once = (UNITS / "syncd-once.service").read_text()
    assert re.search(r"^ExecStart=\S+ run --once ", once, re.M)
    assert "OnCalendar=" in (UNITS / "syncd-once.timer").read_text()
