"""The HTTP API: an ASGI app factory and one module per API family."""
