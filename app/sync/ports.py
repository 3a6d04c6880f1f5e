"""What `app/sync` needs from the local store (the `SyncStore` of `app.storage`), as Protocols.

The sync engine is written against these so that it never reaches past them into storage.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from app.domain.mutations import Change, Mutation, PushResult


@runtime_checkable
class SettingsPort(Protocol):
    """The store's sealed key/value settings (`server_url`, `device_token`, `code_slot`, ...)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


@runtime_checkable
class SyncStorePort(Protocol):
    device_id: str

    def pending_mutations(
        self, max_bytes: int, skip: Collection[str] = (), max_rows: int | None = None
    ) -> list[Mutation]:
        """Outbox, oldest first, as many as fit in `max_bytes` of JSON (at least one) and in
        `max_rows` when given, leaving out the rows named in `skip` (the push in flight) and
        ending before a row whose record has a row in `skip` ahead of it."""
        ...

    def take_set_aside(self) -> list[PushResult]:
        """Queued rows `pending_mutations` set aside since the last call (rows this client's
        own schema refuses), already recorded as rejected, with their reasons."""
        ...

    def record_push_results(self, results: list[PushResult]) -> None:
        """Drop answered mutations from the outbox; record versions, states, rejections."""
        ...

    def sync_lock(self, wait_s: float = 0.0) -> AbstractContextManager[bool]:
        """Held for a whole run: one syncer per store across processes (the app, `commune
        sync`, a scheduled job). Yields False when another still holds it after `wait_s`."""
        ...

    def pull_cursor(self) -> int: ...

    def pulls_own_records(self) -> bool:
        """Whether pulls must ask for the device's own pushes too (a store put back from a
        backup), until `pulled_to_the_end`."""
        ...

    def pulled_to_the_end(self) -> None: ...

    def apply_pull_page(self, changes: list[Change], next_cursor: int) -> None:
        """Merge one page and save the cursor, in one local transaction."""
        ...

    def set_last_synced(self, at: datetime) -> None: ...

    def pending_uploads(self) -> list[str]:
        """sha256 of local attachments the server does not have yet."""
        ...

    def read_attachment(self, sha256: str) -> bytes: ...

    def mark_uploaded(self, sha256: str) -> None: ...

    def has_attachment(self, sha256: str) -> bool: ...

    def store_downloaded(self, sha256: str, data: bytes) -> None: ...

    def crypto_erase(self) -> None:
        """Destroy the keys so that nothing on this device can be read again."""
        ...
