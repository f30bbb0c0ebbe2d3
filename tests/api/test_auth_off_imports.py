"""With auth off, an API worker never loads PyJWT or cryptography's primitives (≈10 MiB of RSS
per worker; issue 13's API memory). The app is built in a fresh interpreter exactly as `serve`
builds it. (redis-py imports the bare `cryptography` package to look for OCSP support: that costs
nothing and is not counted.)"""

from __future__ import annotations

import subprocess
import sys

BUILD = """
import sys
from bos_server import auth
from bos_server.api.app import create_app
from bos_server.config import ServerSettings
from bos_server.main import build_context

settings = ServerSettings.parse(sys.argv[1:])
create_app(build_context(settings), auth.build_middleware(settings.auth))
print(" ".join(sorted(name for name in sys.modules if name == "jwt" or name.startswith(("jwt.", "cryptography.hazmat")))))
"""


def loaded(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", BUILD, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_api_worker_without_auth_never_imports_the_token_machinery() -> None:
    assert loaded() == ""


def test_the_check_sees_the_token_machinery_when_auth_is_on(tmp_path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    assert "jwt" in loaded("--auth-jwks-file", str(jwks)).split()
