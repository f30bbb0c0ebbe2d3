#!/usr/bin/env python3
"""Build the bos-reporter RPM with rpmbuild: `make rpm`, or `build.py --out dist/rpm`.

Packs shared/, reporter/ and packaging/rpm/ into Source0, runs rpmbuild in a
scratch _topdir with the given Python building the wheels (setuptools, offline),
and copies the binary and source RPMs to --out. The RPM's BuildRequires are
checked here rather than against the rpm database, which is empty on Debian.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "rpm" / "bos-reporter.spec"
PACKED = ("shared", "reporter", "packaging/rpm")
SKIPPED = re.compile(r"(^|/)(__pycache__|build|dist|[^/]*\.egg-info)(/|$)|\.py[co]$")


def version() -> str:
    text = (ROOT / "reporter" / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit("build.py: no version in reporter/pyproject.toml")
    return match.group(1)


def ensure_build_tools(python: str) -> None:
    """pip, and setuptools able to build wheels (>= 70.1, or the `wheel` package)."""
    check = ("from importlib.metadata import version\n"
             "version('pip')\n"
             "if tuple(int(p) for p in version('setuptools').split('.')[:2]) < (70, 1):\n"
             "    version('wheel')\n")
    if subprocess.run([python, "-c", check], capture_output=True).returncode == 0:
        return
    print(f"build.py: installing the wheel package into {python} (setuptools cannot build wheels without it)")
    subprocess.run([python, "-m", "pip", "install", "-q", "wheel"], check=True)


def make_source(dest: Path, name: str) -> Path:
    tarball = dest / f"{name}.tar.gz"

    def keep(info: tarfile.TarInfo) -> "tarfile.TarInfo | None":
        return None if SKIPPED.search(info.name) else info

    with tarfile.open(tarball, "w:gz") as tar:
        for part in PACKED:
            tar.add(ROOT / part, arcname=f"{name}/{part}", filter=keep)
    return tarball


def rpmbuild(topdir: Path, python: str, ver: str) -> None:
    exe = shutil.which("rpmbuild")
    if exe is None:
        raise SystemExit("build.py: rpmbuild is missing; run `make os-deps` (Debian package `rpm`)")
    argv = [exe, "-ba", "--nodeps", "--quiet",
            "--define", f"_topdir {topdir}",
            "--define", f"__python3 {python}",
            "--define", f"bos_version {ver}",
            str(SPEC)]
    subprocess.run(argv, check=True)


def collect(topdir: Path, out: Path) -> List[Path]:
    out.mkdir(parents=True, exist_ok=True)
    built = sorted((topdir / "RPMS").rglob("*.rpm")) + sorted((topdir / "SRPMS").glob("*.rpm"))
    copied = []
    for rpm in built:
        target = out / rpm.name
        shutil.copy2(rpm, target)
        copied.append(target)
    return copied


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "rpm", help="where the RPMs go")
    parser.add_argument("--python", default=sys.executable,
                        help="Python that builds the wheels; its version decides python(abi) and site-packages")
    args = parser.parse_args(argv)
    ver = version()
    ensure_build_tools(args.python)
    with tempfile.TemporaryDirectory(prefix="bos-rpmbuild-") as tmp:
        topdir = Path(tmp)
        (topdir / "SOURCES").mkdir()
        make_source(topdir / "SOURCES", f"bos-reporter-{ver}")
        rpmbuild(topdir, args.python, ver)
        for path in collect(topdir, args.out.resolve()):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
