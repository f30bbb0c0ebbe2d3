"""An auth-on stack for the auth tests: bos-sim (TAPMS for tenants), redis-server, bos-server.

The server verifies tokens against a JWKS file of locally generated RSA and EC
keys (tests/support/auth.py); issuer and audience are checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import pytest

from bos_shared.options import DEFAULTS
from tests.api.conftest import inventory
from tests.support.auth import Issuer, auth_server_args, bearer
from tests.support.client import Api
from tests.support.stacks import ServiceStack, service_stack


@dataclass
class AuthStack:
    services: ServiceStack
    issuer: Issuer

    @property
    def url(self) -> str:
        return self.services.server.url

    def client(self, token: "str | None") -> Api:
        api = Api(self.url)
        if token is not None:
            api.http.headers.update(bearer(token))
        return api

    def admin(self) -> Api:
        return self.client(self.issuer.admin())

    def fresh(self) -> Api:
        """An admin client of an emptied database with default options."""
        self.services.sim.clear_service_faults()
        self.services.redis_client.flushdb()
        admin = self.admin()
        admin.patch("/v2/options", json=dict(DEFAULTS)).raise_for_status()
        return admin

    def log(self) -> str:
        return self.services.server.log_path.read_text(errors="replace")


@pytest.fixture(scope="package")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="package")
def auth_stack(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[AuthStack]:
    where = tmp_path_factory.mktemp("auth")
    inventory_file = where / "inventory.json"
    inventory_file.write_text(json.dumps(inventory()))
    jwks = issuer.write_jwks(where / "jwks.json")
    with service_stack(where, inventory=inventory_file, api_args=auth_server_args(jwks)) as services:
        yield AuthStack(services, issuer)


@pytest.fixture
def admin(auth_stack: AuthStack) -> Api:
    return auth_stack.fresh()
