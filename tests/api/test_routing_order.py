"""Resources are registered variable paths first (api/app._plain_last): a node's report is matched by
the first resource aiohttp tries, and every route still resolves to its own handler."""

from __future__ import annotations

import asyncio
import re
from unittest import mock

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bos_server.api import app as app_module


def _app() -> web.Application:
    return app_module.create_app(mock.MagicMock())


def test_a_report_is_matched_by_the_first_resource_of_its_prefix() -> None:
    """Goes red when the resources are registered in route order: the listing's path and its
    trailing-slash twin come first and fail for every report."""
    index = _app().router._resource_index  # aiohttp's candidates by path prefix, tried in order
    for prefix in ("/v2/components", "/apis/bos/v2/components"):
        assert index[prefix][0].canonical == prefix + "/{component_id}"
    for bucket in index.values():
        kinds = ["{" in resource.canonical for resource in bucket]
        assert kinds == sorted(kinds, reverse=True), [r.canonical for r in bucket]


def _resolved(application: web.Application, method: str, path: str) -> object:
    request = make_mocked_request(method, path, app=application)
    return asyncio.run(application.router.resolve(request)).handler


def test_every_route_resolves_to_its_handler_under_each_prefix_and_with_a_trailing_slash() -> None:
    application = _app()
    for method, path, handler in app_module.all_routes() + app_module.extra_routes():
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        for variant in ([concrete] + ([concrete.rstrip("/")] if concrete != "/" else [])
                        + [concrete.rstrip("/") + "/", "/apis/bos" + concrete.rstrip("/")]):
            found = _resolved(application, method, variant or "/")
            assert found is handler, (method, path, variant, found)
