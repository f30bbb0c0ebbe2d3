"""The bos-reporter RPM: built by `make rpm`, installed into a scratch root, run against the live API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import requests

from bos_sim.stack import ApiServer, RedisServer
from tests.support.auth import Issuer, auth_server_args, bearer, make_tls
from tests.support.client import Api

from .conftest import XNAME, Node, find_python

ROOT = Path(__file__).resolve().parents[2]
UNIT = "/usr/lib/systemd/system/bos-reporter.service"
CONFIG = "/etc/bos-reporter/bos-reporter.conf"
PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"  # make rpm builds with the venv's Python
SITE = f"/usr/lib/{PY}/site-packages"

SOURCE_UNIT = ROOT / "packaging" / "rpm" / "bos-reporter.service"


def query(rpm: Path, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, str(rpm)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make rpm` into a scratch directory (prerequisites skipped: `make test` has just made them)."""
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild missing: run `make os-deps`")
    out = tmp_path_factory.mktemp("rpm")
    argv = ["make", "-s", "-C", str(ROOT), "-o", "os-deps", "-o", "venv", "rpm", f"RPM_OUT={out}",
            f"PY={sys.executable}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [binary] = out.glob("bos-reporter-*.noarch.rpm")
    assert list(out.glob("bos-reporter-*.src.rpm"))
    return binary


@pytest.fixture(scope="module")
def files(rpm: Path) -> Dict[str, str]:
    """Path -> flags (`c` config, `n` noreplace) of every file in the package."""
    listing = query(rpm, "--queryformat", "[%{FILENAMES}\t%{FILEFLAGS:fflags}\n]")
    return dict(line.split("\t") for line in listing.splitlines())


@pytest.fixture(scope="module")
def scratch_root(rpm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    done = subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", str(rpm)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root


def test_building_leaves_the_build_pythons_own_packages_alone(rpm: Path) -> None:
    """pip --root would otherwise uninstall the venv's editable bos-shared and bos-reporter."""
    code = "import bos_shared, bos_reporter; print(bos_shared.__file__); print(bos_reporter.__file__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(ROOT / "shared" / "__init__.py"), str(ROOT / "reporter" / "__init__.py")]


def test_metadata_names_a_noarch_bos_reporter(rpm: Path) -> None:
    name, version, arch = query(rpm, "--queryformat", "%{NAME} %{VERSION} %{ARCH}").split()
    assert (name, arch) == ("bos-reporter", "noarch")
    assert re.search(r'^version = "' + re.escape(version) + '"$', (ROOT / "reporter/pyproject.toml").read_text(),
                     re.MULTILINE)
    assert "Reports the booted BOS state" in query(rpm, "--queryformat", "%{SUMMARY}")


def test_requires_python_requests_and_pyinotify(rpm: Path) -> None:
    requires = {line.strip() for line in query(rpm, "--requires").splitlines()}
    assert {"python3 >= 3.9", "python3-requests", "python3-pyinotify"} <= requires
    assert f"python(abi) = {PY[6:]}" in requires  # site-packages is per Python version


@pytest.mark.parametrize("version, needs_backport", [("3.9", False), ("3.13", True)])
def test_spec_requires_pyasyncore_only_when_built_for_python_3_12_or_newer(version: str, needs_backport: bool) -> None:
    python = find_python(version)
    if shutil.which("rpmspec") is None or python is None:
        pytest.skip(f"needs rpmspec and python{version}")
    spec = ROOT / "packaging" / "rpm" / "bos-reporter.spec"
    requires = subprocess.run(["rpmspec", "-q", "--requires", "--define", f"__python3 {python}", str(spec)],
                              check=True, capture_output=True, text=True).stdout.split()
    assert ("python3-pyasyncore" in requires) == needs_backport


def test_file_list_has_executable_unit_config_and_both_packages(files: Dict[str, str]) -> None:
    assert "/usr/bin/bos-reporter" in files
    assert UNIT in files
    assert "/usr/lib/systemd/system-preset/90-bos-reporter.preset" in files
    assert files[CONFIG] == "cn"  # %config(noreplace)
    modules = {Path(p).name for p in files if p.startswith(f"{SITE}/bos_reporter/") and p.endswith(".py")}
    assert modules == {p.name for p in (ROOT / "reporter").glob("*.py")}
    shared = {Path(p).name for p in files if p.startswith(f"{SITE}/bos_shared/") and p.endswith(".py")}
    assert shared == {p.name for p in (ROOT / "shared").glob("*.py")}
    assert any(p.startswith(f"{SITE}/bos_reporter-") and p.endswith(".dist-info") for p in files)
    outside = [p for p in files if not p.startswith((SITE, "/usr/bin/", "/usr/lib/systemd/", "/etc/bos-reporter"))]
    assert outside == [], outside
    assert not [p for p in files if "test" in Path(p).name or "egg-info" in p]


def test_installed_files_carry_no_build_host_paths(scratch_root: Path) -> None:
    assert (scratch_root / "usr/bin/bos-reporter").read_text().startswith("#!/usr/bin/python3 -s\n")
    for info in (scratch_root / SITE.lstrip("/")).glob("*.dist-info"):
        assert (info / "INSTALLER").read_text().strip() == "rpm"
        assert not (info / "direct_url.json").exists()
        for item in info.iterdir():
            assert str(ROOT) not in item.read_text(errors="replace"), item


def installed_env(scratch_root: Path, node: Node) -> Dict[str, str]:
    env = node.env()
    env["PYTHONPATH"] = str(scratch_root / SITE.lstrip("/"))  # requests and pyinotify come from the venv
    return env


def test_installed_packages_are_the_ones_imported(scratch_root: Path, node: Node) -> None:
    code = "import bos_reporter.main, bos_shared.cmdline as c; print(bos_reporter.main.__file__); print(c.__file__)"
    done = subprocess.run([sys.executable, "-c", code], env=installed_env(scratch_root, node), capture_output=True,
                          text=True, check=True)
    assert all(line.startswith(str(scratch_root)) for line in done.stdout.splitlines()), done.stdout


def test_installed_bos_reporter_once_reports_to_the_live_api(scratch_root: Path, node: Node, api: Api,
                                                             api_server: ApiServer) -> None:
    assert api.put(f"/v2/components/{XNAME}", json={"enabled": False}).status_code == 200
    exe = str(scratch_root / "usr/bin/bos-reporter")
    done = subprocess.run([sys.executable, exe, "--once", *node.args(f"{api_server.url}/v2")],
                          env=installed_env(scratch_root, node), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    token = node.cmdline.read_text().split("bss_referral_token=")[1].split()[0]
    assert api.get(f"/v2/components/{XNAME}").json()["actual_state"]["bss_token"] == token


def test_installed_bos_reporter_reports_through_tls_with_a_node_token(scratch_root: Path, node: Node,
                                                                    redis_server: RedisServer, tmp_path: Path) -> None:
    """issue 14: the packaged agent, unchanged, against an HTTPS server with auth on (docs/auth.md)."""
    issuer, tls = Issuer(), make_tls(tmp_path / "pki")
    jwks = issuer.write_jwks(tmp_path / "jwks.json")
    server = ApiServer(tmp_path / "api", redis_server.url.rsplit("/", 1)[0] + "/9",
                       extra_args=auth_server_args(jwks, tls), ca_file=tls.ca)
    try:
        admin = {"headers": bearer(issuer.admin()), "verify": str(tls.ca), "timeout": 10}
        url = f"{server.url}/v2/components/{XNAME}"
        assert requests.put(url, json={"enabled": False}, **admin).status_code == 200
        node.token_file.write_text(issuer.node(XNAME) + "\n")  # the JWT-SVID SPIRE would hand the node
        exe = str(scratch_root / "usr/bin/bos-reporter")
        env = dict(installed_env(scratch_root, node), BOS_REPORTER_CA_BUNDLE=str(tls.ca))
        done = subprocess.run([sys.executable, exe, "--once", *node.args(f"{server.url}/v2")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        token = node.cmdline.read_text().split("bss_referral_token=")[1].split()[0]
        assert requests.get(url, **admin).json()["actual_state"]["bss_token"] == token
    finally:
        assert server.stop() == 0, server.log_tail()


def unit_settings(text: str) -> Dict[str, List[str]]:
    settings: Dict[str, List[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_installed_unit_is_the_source_unit(scratch_root: Path) -> None:
    assert (scratch_root / UNIT.lstrip("/")).read_text() == SOURCE_UNIT.read_text()


def test_r2_unit_restarts_on_failure_but_not_on_configuration_error() -> None:
    unit = unit_settings(SOURCE_UNIT.read_text())
    assert unit["ExecStart"] == ["/usr/bin/bos-reporter"]
    assert unit["Restart"] == ["on-failure"] and unit["RestartSec"] == ["10"]  # R2
    assert unit["RestartPreventExitStatus"] == ["78"]  # R4
    assert unit["Wants"] == ["network-online.target"] and unit["After"] == ["network-online.target"]
    assert unit["WantedBy"] == ["multi-user.target"]


def test_unit_is_hardened_but_can_read_proc_cmdline_and_the_token() -> None:
    unit = unit_settings(SOURCE_UNIT.read_text())
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
                       "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": ""}.items():
        assert unit.get(key) == [value], key
    assert "ProcSubset" not in unit  # ProcSubset=pid would hide /proc/cmdline
    assert unit["ProtectHome"] == ["read-only"]  # a token file under /root stays readable
    assert unit["RuntimeDirectory"] == ["bos-reporter"]  # /run/bos-reporter: the trigger file


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not available")
def test_systemd_analyze_verify_accepts_the_installed_unit(scratch_root: Path, tmp_path: Path) -> None:
    # verify needs ExecStart to exist on this machine: point it at the scratch root's executable
    text = (scratch_root / UNIT.lstrip("/")).read_text()
    unit = tmp_path / "bos-reporter.service"
    unit.write_text(text.replace("ExecStart=/usr/bin/bos-reporter",
                                 f"ExecStart={scratch_root / 'usr/bin/bos-reporter'}"))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                          env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bos-reporter.service" not in done.stdout + done.stderr, done.stdout + done.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                              capture_output=True, text=True)
    exposure = re.search(r"Overall exposure level for bos-reporter.service: ([0-9.]+)", security.stdout)
    if exposure:  # systemd >= 250; 10 is an unhardened unit, the reporter's is about 2
        assert float(exposure.group(1)) <= 3.0, security.stdout
