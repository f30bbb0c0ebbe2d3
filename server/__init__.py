"""BOS v2 API server, Redis store, operators and service clients."""
