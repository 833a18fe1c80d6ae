"""SweptListing: a long list kept current with at most two page reads a refresh (core/sagemaker/listing.py)."""

from __future__ import annotations

from core.errors import UserError
from core.sagemaker.listing import SweptListing


class Pages:
    """A newest-first list served by offset tokens, as a service whose tokens count items would."""

    def __init__(self, keys: list[str], size: int = 2) -> None:
        self.items = {k: {"Key": k, "Status": "old"} for k in keys}
        self.size = size
        self.reads: list[str | None] = []
        self.refuse = False
        self.confirmed: list[list[str]] = []

    def fetch(self, token: str | None) -> tuple[list[dict], str | None]:
        self.reads.append(token)
        if token is not None and self.refuse:
            raise UserError("the token has expired")
        start = int(token or 0)
        keys = list(self.items)[start : start + self.size]
        following = start + self.size
        return [dict(self.items[k]) for k in keys], str(following) if following < len(self.items) else None

    def confirm(self, keys) -> set[str]:
        self.confirmed.append(sorted(keys))
        return {k for k in keys if k in self.items}

    def listing(self) -> SweptListing:
        return SweptListing(self.fetch, "Key", self.confirm)

    def take(self) -> list[str | None]:
        reads, self.reads = self.reads, []
        return reads


def statuses(items: list[dict]) -> dict[str, str]:
    return {i["Key"]: i["Status"] for i in items}


def test_the_first_refresh_reads_everything_then_two_pages_a_refresh() -> None:
    pages = Pages(["g", "f", "e", "d", "c", "b", "a"])
    listing = pages.listing()
    assert sorted(statuses(listing.refresh())) == list("abcdefg")
    assert pages.take() == [None, "2", "4", "6"]
    pages.items["a"]["Status"] = "new"
    seen = []
    for _ in range(3):
        seen.append(statuses(listing.refresh())["a"])
        assert len(pages.take()) == 2
    assert seen == ["old", "old", "new"]  # the oldest page is read by the third refresh
    assert pages.confirmed == []  # nothing went missing: no confirmation asked for


def test_an_item_moved_past_the_sweep_is_confirmed_and_kept_and_a_deleted_one_dropped() -> None:
    pages = Pages(["f", "e", "d", "c", "b", "a"])
    listing = pages.listing()
    listing.refresh()
    listing.refresh()  # the newest page, then ["d", "c"]
    del pages.items["e"]  # deleted after the sweep met it: "b" moves up onto a page already read
    listed = statuses(listing.refresh())  # the newest page ["f", "d"], then the last one: ["a"]
    assert pages.confirmed == [["b"]] and "b" in listed  # not met, still there: kept
    assert "e" in listed  # met by this sweep before it went: the next sweep finds out
    listing.refresh()
    assert "e" not in statuses(listing.refresh())
    assert pages.confirmed == [["b"], ["e"]]


def test_a_single_page_is_the_whole_truth_at_once() -> None:
    pages = Pages(["b", "a"], size=10)
    listing = pages.listing()
    listing.refresh()
    del pages.items["a"]
    assert statuses(listing.refresh()) == {"b": "old"}
    assert pages.take() == [None, None] and pages.confirmed == []


def test_a_refused_token_keeps_the_newest_news_and_starts_a_new_sweep() -> None:
    pages = Pages(["d", "c", "b", "a"])
    listing = pages.listing()
    listing.refresh()
    pages.take()
    pages.items["d"]["Status"] = "new"
    pages.refuse = True
    assert statuses(listing.refresh())["d"] == "new"
    assert pages.take() == [None, "2"]
    pages.refuse = False
    listing.refresh()
    assert pages.take() == [None, "2"]  # the sweep began again after the newest page
