"""Storage interface and its implementations."""

from .base import AlreadyExists, NotFound, StaleVersion, Storage
from .sqlite import SqliteStorage

__all__ = ["AlreadyExists", "NotFound", "StaleVersion", "Storage", "SqliteStorage"]
