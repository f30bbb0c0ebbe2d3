"""BOS v2 wire schema and pure helpers (no I/O, no third-party imports).

Both the server and the node agent depend on this package, so it must stay
importable on Python 3.9 with the standard library only.
"""

__version__ = "2.50.0"
