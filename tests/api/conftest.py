"""A second, simulator-backed stack for API tests that need S3, IMS or TAPMS.

The shared `api` fixture talks to a server without S3, IMS or TAPMS. Tests of
boot/reboot validation, template validation and tenancy use `sim_api`
instead: a module-scoped `bos-sim` (services.md §9) loaded with the inventory
below, its own redis-server and its own `bos-server` whose BOS_* and S3_*
settings point at the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from tests.support.client import Api
from tests.support.stacks import ServiceStack, service_stack

IMAGE = "9e3c75e1-ac42-42c7-873c-e758048897d6"          # x86_64, kernel + initrd + boot parameters
IMAGE_ARM = "4b1c0a2e-6f57-4d0b-9c3a-2d8e7f6a5b41"      # aarch64
IMAGE_NO_ARCH = "5c2d1b3f-7a68-4e1c-8d4b-3e9f8a7b6c52"  # IMS record without `arch` (means x86_64)
IMAGE_NO_INITRD = "6d3e2c4a-8b79-4f2d-9e5c-4fa09b8c7d63"
MISSING_IMAGE = "0badf00d-0000-4000-8000-000000000000"   # manifest in S3, no IMS record


def manifest_url(image: str) -> str:
    return f"s3://boot-images/{image}/manifest.json"


def _artifact(kind: str, path: str) -> Dict[str, Any]:
    types = {"kernel": "application/vnd.cray.image.kernel", "initrd": "application/vnd.cray.image.initrd",
             "boot_parameters": "application/vnd.cray.image.parameters.boot"}
    return {"type": types[kind], "link": {"type": "s3", "path": path, "etag": ""}}


def _manifest(*artifacts: Dict[str, Any]) -> str:
    return json.dumps({"version": "1.0", "created": "2024-05-01 12:00:00", "artifacts": list(artifacts)})


KERNEL = f"s3://boot-images/{IMAGE}/kernel"
INITRD = f"s3://boot-images/{IMAGE}/initrd"
# Extra manifests (bucket boot-images): name -> (key, body)
MANIFESTS = {
    "flat": ("flat-manifest.json", _manifest(_artifact("kernel", KERNEL), _artifact("initrd", INITRD))),
    "missing-image": (f"{MISSING_IMAGE}/manifest.json",
                      _manifest(_artifact("kernel", KERNEL), _artifact("initrd", INITRD))),
    "not-json": ("broken/manifest.json", "this is not JSON"),
    "list": ("list/manifest.json", "[1, 2]"),
    "no-kernel": ("nokernel/manifest.json", _manifest(_artifact("initrd", INITRD))),
    "gone-kernel": ("gonekernel/manifest.json",
                    _manifest(_artifact("kernel", "s3://boot-images/gone/kernel"), _artifact("initrd", INITRD))),
    "gone-initrd": ("goneinitrd/manifest.json",
                    _manifest(_artifact("kernel", KERNEL), _artifact("initrd", "s3://boot-images/gone/initrd"))),
    "two-kernels": ("twokernels/manifest.json", _manifest(_artifact("kernel", KERNEL), _artifact("kernel", KERNEL))),
    # valid JSON, but larger than the 1 MiB a manifest may have (services.md §7)
    "huge": ("huge/manifest.json", '{"artifacts": []' + " " * 1048576 + "}"),
}


def extra_manifest_url(name: str) -> str:
    return f"s3://boot-images/{MANIFESTS[name][0]}"


# Tenants and the xnames TAPMS says they own (services.md §8). Each tenancy test that needs
# a fresh TAPMS answer uses its own tenant: the server caches tenant look-ups for 10 s (D5).
TENANTS: Dict[str, List[str]] = {
    "vcluster-blue": ["x1000c0s0b0n0", "x1000c0s0b0n1"],
    "vcluster-red": ["x1000c0s0b1n0"],
    "vcluster-empty": [],
    **{f"vcluster-spare{i}": ["x1000c0s1b0n0"] for i in range(6)},
}
NODES = ["x1000c0s0b0n0", "x1000c0s0b0n1", "x1000c0s0b1n0", "x1000c0s0b1n1", "x1000c0s1b0n0"]


def inventory() -> Dict[str, Any]:
    return {
        "nodes": [{"xname": x, "nid": i + 1} for i, x in enumerate(NODES)],
        "tenants": [{"name": name, "xnames": xnames} for name, xnames in TENANTS.items()],
        "images": [{"id": IMAGE, "name": "compute"}, {"id": IMAGE_ARM, "name": "arm", "arch": "aarch64"},
                   {"id": IMAGE_NO_ARCH, "name": "no-arch", "arch": None},
                   {"id": IMAGE_NO_INITRD, "name": "no-initrd", "initrd": False}],
        "s3_objects": [{"bucket": "boot-images", "key": key, "body": body} for key, body in MANIFESTS.values()],
    }


SimStack = ServiceStack


@pytest.fixture(scope="module")
def sim_stack(workdir: Path, request: pytest.FixtureRequest) -> Iterator[SimStack]:
    where = workdir / f"sim-{request.module.__name__.rsplit('.', 1)[-1]}"
    where.mkdir(parents=True, exist_ok=True)
    inventory_file = where / "inventory.json"
    inventory_file.write_text(json.dumps(inventory()))
    with service_stack(where, inventory=inventory_file) as stack:
        yield stack


@pytest.fixture
def sim_api(sim_stack: SimStack) -> Api:
    return sim_stack.api()

