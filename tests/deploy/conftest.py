"""Helpers for the deploy/ checks: the repository's files, README's settings tables, the renderer."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import List, Set

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def readme_settings() -> Set[str]:
    """Environment variables of README's service settings tables (`| Flag | Environment | Default |`)."""
    found: Set[str] = set()
    in_table = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| Flag | Environment | Default |"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            in_table = False
        if in_table:
            cells = line.split("|")
            if len(cells) > 2:
                found.update(re.findall(r"`((?:BOS|S3)_[A-Z0-9_]+)`", " ".join(cells[2:])))
    assert found, "README.md has no service settings table"
    return found


def renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bos_k8s_render", DEPLOY / "k8s" / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_text() -> str:
    """Every Python source of the server (to check that a documented variable is really read)."""
    return "\n".join(p.read_text() for p in (ROOT / "server").rglob("*.py"))


def containers(obj: dict) -> List[dict]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    return pod.get("containers", []) + pod.get("initContainers", [])
