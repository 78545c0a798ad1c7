"""Dedupe of event ids: claim, commit only after the durable write, release on failure.

``DedupeStore`` is the contract the pipeline uses (``base.py``); ``MemoryDedupe`` keeps the ids
in the process (``memory.py``), ``RedisDedupe`` shares them between every replica of a
deployment, with a ``MemoryDedupe`` in front so a duplicate on the same replica costs no round
trip (``redis_store.py``). ``build_dedupe`` picks one from the settings (``factory.py``).
"""

from gateway.dedupe.base import DedupeStore, StoreErrorHook
from gateway.dedupe.factory import build_dedupe
from gateway.dedupe.memory import MemoryDedupe

__all__ = ["DedupeStore", "MemoryDedupe", "StoreErrorHook", "build_dedupe"]
