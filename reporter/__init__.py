"""bos-reporter: the node agent."""
