"""The Docker Engine API over a unix socket (``pydock system service``): HTTP/1.1 with h11 on
trio, endpoints onto the engine's services. Only ``system service`` imports this package."""

from pydock.api.service import DEFAULT_IDLE_SECONDS, default_uri, serve

__all__ = ["DEFAULT_IDLE_SECONDS", "default_uri", "serve"]
