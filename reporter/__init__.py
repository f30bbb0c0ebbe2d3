"""bos-reporter: the node agent that reports the booted BOS state of a node (spec/reporter.md).

Modules in the order a report flows: cmdline (bos_shared) -> config -> identity ->
payload -> auth -> send -> schedule -> watch -> agent -> main.
"""

__version__ = "2.50.0"
