"""Where accepted events go: the embedded local log (default) or Kafka."""

from gateway.sinks.base import Sink

__all__ = ["Sink"]
