"""The BOS v1 compatibility API (v1.md §2): one module per resource, routes declared here once."""

from __future__ import annotations

from . import base, sessions, status, templates

ROUTES = base.ROUTES + templates.ROUTES + sessions.ROUTES + status.ROUTES
