#!/usr/bin/env python3
"""Render a kustomization of deploy/k8s/ without kubectl: `python3 deploy/k8s/render.py DIR`.

`kubectl kustomize DIR` (or `kubectl apply -k DIR`) is what sites use. This renders the
subset of kustomize the folder uses (resources, components, strategic-merge patches,
images, namespace), so `make test` can render and validate every overlay on a machine
without kubectl; where kubectl exists, the tests check both renderings agree.
Needs PyYAML.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

Obj = Dict[str, Any]
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass"}
SUPPORTED = {"apiVersion", "kind", "resources", "components", "patches", "images", "namespace"}


class RenderError(Exception):
    pass


def load_docs(path: Path) -> List[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def build(folder: Path) -> List[Obj]:
    """The objects of the kustomization in `folder`."""
    spec = _kustomization(folder)
    objects: List[Obj] = []
    for entry in spec.get("resources", []):
        target = folder / entry
        objects.extend(build(target) if target.is_dir() else load_docs(target))
    for entry in spec.get("components", []):
        objects = apply_component(folder / entry, objects)
    return transform(folder, spec, objects)


def apply_component(folder: Path, objects: List[Obj]) -> List[Obj]:
    spec = _kustomization(folder)
    if spec.get("kind") != "Component":
        raise RenderError(f"{folder}: not a kustomize Component")
    objects = objects + [o for entry in spec.get("resources", []) for o in load_docs(folder / entry)]
    return transform(folder, spec, objects)


def transform(folder: Path, spec: Obj, objects: List[Obj]) -> List[Obj]:
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise RenderError(f"{folder}: only `patches: - path: FILE` (strategic merge) is supported")
        for doc in load_docs(folder / patch["path"]):
            target = _target(objects, doc, folder / patch["path"])
            merged = merge(target, doc)
            target.clear()
            target.update(merged)
    for image in spec.get("images", []):
        for container in _containers(objects):
            container["image"] = retag(container["image"], image)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return objects


def _kustomization(folder: Path) -> Obj:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise RenderError(f"{folder}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise RenderError(f"{path}: fields this renderer does not implement: {sorted(unknown)}")
    return spec


def _target(objects: List[Obj], patch: Obj, where: Path) -> Obj:
    name = patch.get("metadata", {}).get("name")
    found = [o for o in objects if o["kind"] == patch.get("kind") and o["metadata"]["name"] == name]
    if len(found) != 1:
        raise RenderError(f"{where}: patch of {patch.get('kind')} {name} matches {len(found)} objects")
    return found[0]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize does it for these files: maps merge, named lists merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        out = copy.deepcopy(base)
        index = {item["name"]: n for n, item in enumerate(out)}
        for item in patch:
            if item["name"] in index:
                out[index[item["name"]]] = merge(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _named(items: List[Any]) -> bool:
    return all(isinstance(i, dict) and "name" in i for i in items)


def _containers(objects: List[Obj]) -> List[Obj]:
    found = []
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        found += pod.get("containers", []) + pod.get("initContainers", [])
    return found


def retag(image: str, rule: Obj) -> str:
    name, tag = image, ""
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    if name != rule["name"]:
        return image
    name = rule.get("newName", name)
    tag = str(rule.get("newTag", tag))
    return f"{name}:{tag}" if tag else name


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print("usage: render.py KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        objects = build(Path(argv[0]))
    except (RenderError, OSError, yaml.YAMLError) as exc:
        print(f"render.py: error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
