"""webhook-gateway: verify provider webhooks, normalize them to job events, publish durably."""

__version__ = "0.1.0"
