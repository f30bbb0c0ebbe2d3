"""The systemd units of deploy/systemd: verified by systemd-analyze, hardened like the reporter's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from bos_sim.stack import BIN

from .conftest import DEPLOY, ROOT, readme_settings, source_text

UNITS = DEPLOY / "systemd"
SERVICES = ["bos-server.service", "bos-operators.service"]
REPORTER_UNIT = ROOT / "packaging" / "rpm" / "bos-reporter.service"
# The reporter's hardening that does not apply to a network service without a home directory:
# it reads a token under /root (ProtectHome=read-only) and asks netlink for its addresses.
NOT_INHERITED = {"ProtectHome", "RestrictAddressFamilies", "RuntimeDirectory", "RuntimeDirectoryMode",
                 "Type", "ExecStart", "Restart", "RestartSec", "RestartPreventExitStatus"}


def parse(path: Path) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def installed_copy(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this venv's scripts (verify needs them to exist)."""
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.glob("*.service"):
        (out / unit.name).write_text(unit.read_text().replace("/opt/bos/bin/", f"{BIN}/"))
    for unit in UNITS.glob("*.timer"):
        shutil.copy(unit, out / unit.name)
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not available")
def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    units = installed_copy(tmp_path)
    paths = sorted(str(p) for p in units.iterdir())
    done = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True,
                          env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bos-" not in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not available")
@pytest.mark.parametrize("service", SERVICES)
def test_services_are_hardened(tmp_path: Path, service: str) -> None:
    unit = installed_copy(tmp_path) / service
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                              capture_output=True, text=True, timeout=120)
    exposure = re.search(rf"Overall exposure level for {service}: ([0-9.]+)", security.stdout)
    if exposure:  # systemd >= 250; 10 is an unhardened unit, the reporter's is about 2
        assert float(exposure.group(1)) <= 2.0, security.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_units_keep_every_hardening_setting_of_the_reporter(service: str) -> None:
    ours, reporter = parse(UNITS / service), parse(REPORTER_UNIT)
    for key, value in reporter.items():
        if key in NOT_INHERITED or key in ("Description", "Wants", "After", "WantedBy"):
            continue
        assert ours.get(key) == value, f"{service}: {key}={value} (the reporter's) is missing or differs"
    assert ours["ProtectHome"] == ["yes"] and ours["DynamicUser"] == ["yes"]
    assert ours["EnvironmentFile"] == [f"/etc/bos/{service.split('.')[0]}.env"]


def test_env_files_hold_every_readme_setting_and_only_real_variables() -> None:
    names = set()
    code = source_text()
    for env in UNITS.glob("*.env"):
        for line in env.read_text().splitlines():
            match = re.match(r"^#?([A-Z][A-Z0-9_]+)=", line)
            if match:
                names.add(match.group(1))
                assert match.group(1) in code, f"{env.name}: {match.group(1)} is read by no server code"
    missing = readme_settings() - names
    assert not missing, f"README settings missing from deploy/systemd/*.env: {sorted(missing)}"
