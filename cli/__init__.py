"""`bos` command-line tool."""
