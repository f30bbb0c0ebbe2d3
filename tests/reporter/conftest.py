"""Helpers for the reporter's end-to-end and packaging tests (real API, real Redis)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

XNAME = "x3000c0s19b1n0"
ARTIFACTS = {"kernel": "s3://boot-images/9e3c/kernel",
             "kernel_parameters": "console=ttyS0,115200 quiet bos_update_frequency=4h",
             "initrd": "s3://boot-images/9e3c/initrd"}


@dataclass
class Node:
    """The files a booted node gives its reporter."""

    dir: Path
    cmdline: Path
    token_file: Path
    trigger: Path

    def args(self, api_url: str) -> List[str]:
        return ["--cmdline-file", str(self.cmdline), "--api-url", api_url, "--token-file", str(self.token_file)]

    def env(self, **extra: str) -> Dict[str, str]:
        """No config file and no stray reporter settings from the caller's environment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOS_REPORTER_", "NODE_IDENTITY"))}
        env.update(BOS_REPORTER_CONFIG=str(self.dir / "absent.conf"), BOS_REPORTER_TRIGGER_FILE=str(self.trigger))
        env.update(extra)
        return env


def booted_node(directory: Path, bss_token: str, extra: str = "") -> Node:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "run").mkdir(exist_ok=True)
    cmdline = directory / "cmdline"
    cmdline.write_text(f"initrd=initrd console=ttyS0,115200 ip=dhcp quiet nmd_data=url=s3://boot-images/9e3c/rootfs,"
                       f"etag=f04a bos_update_frequency=4h xname={XNAME} nid=1 bss_referral_token={bss_token} "
                       f"ds=nocloud-net;s=http://10.92.100.81:8888/ {extra}\n")
    token_file = directory / "token"
    token_file.write_text("gateway-bearer-token\n")
    return Node(directory, cmdline, token_file, directory / "run" / "report-now")


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return booted_node(tmp_path / "node", "5b0c1f3e-4c2a-4a61-9d7e-0a2f7c9e1b11")


def eventually(check: Callable[[], bool], timeout: float, what: str, log: Optional[Path] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def find_python(version: str) -> Optional[str]:
    """`BOS_REPORTER_PY39`-style override, else pyenv's newest patch release, else PATH."""
    override = os.environ.get("BOS_REPORTER_PY" + version.replace(".", ""))
    if override:
        return override
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / f"python{version}"))
    found.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parts[-3])])
    return found[-1] if found else shutil.which(f"python{version}")
