"""Missed-webhook reconciliation: every expected job ends with exactly one terminal event.

* ``store.py``: the open expectations in Redis (a record per job and a due-time index),
  shared by the edge, the admin endpoint and every reconciler instance;
* ``register.py``: validates an expectation against the configured sources;
* ``intake.py``: the ``webhooks.job-expectations`` topic, consumed by the reconcilers;
* ``runner.py``: takes due expectations, polls the provider, publishes the terminal event;
* ``process.py``: ``webhook-gateway reconcile``, the process around them.

The terminal slot per job (``terminal:{source}:{job_id}``) is claimed in the shared dedupe
store with its owner-token protocol, so whichever of the webhook and the poll publishes first
wins and the other is a duplicate.
"""
