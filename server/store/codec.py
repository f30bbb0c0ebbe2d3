"""The store's JSON encoding: the server's one JSON helper (`bos_server.jsonio`)."""

from ..jsonio import clone, dumps, encode, loads, parse

__all__ = ["clone", "dumps", "encode", "loads", "parse"]
