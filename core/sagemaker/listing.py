"""A long, newest-first AWS list kept current with at most two calls a refresh, however long it is.

A live view polls every few seconds; paging through 1,000 model packages each time is 10 calls a poll. The
first refresh reads every page. Each later one reads the newest page (where new items appear) and the next
older page in turn, so a change to an older item shows within one sweep of the list (one refresh per older
page). When a sweep ends, the items it never met were deleted, or moved across a page boundary while it went:
`confirm` tells which of them still exist (none, usually, so no call).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from core.errors import UserError

Page = tuple[list[dict[str, Any]], str | None]  # the items of a page and the token of the next one


class SweptListing:
    def __init__(
        self,
        fetch: Callable[[str | None], Page],
        key: str,
        confirm: Callable[[Iterable[str]], set[str]],
    ) -> None:
        self._fetch = fetch
        self._key = key
        self._confirm = confirm
        self._items: dict[str, dict[str, Any]] | None = None
        self._sweep: str | None = None  # token of the next older page to read; None: start a new sweep
        self._met: set[str] = set()  # keys met since the sweep began
        # Two screens' workers may refresh at once; re-entrant, since `confirm` may patch items.
        self._lock = threading.RLock()

    def refresh(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._items is None:
                self._items = self._read_all()
                return list(self._items.values())
            items, following = self._fetch(None)
            self._take(items)
            if self._sweep is None:
                self._sweep, self._met = following, {i[self._key] for i in items}
            if self._sweep is not None:
                try:
                    older, self._sweep = self._fetch(self._sweep)
                except UserError:
                    # An expired or refused token, or throttling: the newest page is still news; the next
                    # refresh starts a new sweep.
                    self._sweep = None
                    return list(self._items.values())
                self._take(older)
                if self._sweep is None:
                    self._end_sweep()
            elif following is None:  # one page holds everything: it is the whole truth
                self._items = {i[self._key]: i for i in items}
            return list(self._items.values())

    def patch(self, key: str, fields: dict[str, Any]) -> None:
        """A fresher description of an item than its page: what the listing shows of it now (fields it has)."""
        with self._lock:
            item = (self._items or {}).get(key)
            if item is not None:
                item.update({k: v for k, v in fields.items() if k in item})

    def _read_all(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            items, token = self._fetch(token)
            found.update((i[self._key], i) for i in items)
            if token is None:
                return found

    def _take(self, items: list[dict[str, Any]]) -> None:
        assert self._items is not None
        for item in items:
            self._items[item[self._key]] = item
            self._met.add(item[self._key])

    def _end_sweep(self) -> None:
        assert self._items is not None
        unmet = [k for k in self._items if k not in self._met]
        if unmet:
            kept = self._confirm(unmet)
            for key in unmet:
                if key not in kept:
                    del self._items[key]
        self._met = set()
