"""Storage backends behind one protocol (``base.Store``), chosen by database URL."""

from sinergia.storage.base import Store, open_store

__all__ = ["Store", "open_store"]
