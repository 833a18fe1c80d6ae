"""Errors a user can act on. Each message is one sentence: what was wrong and what to do."""

from __future__ import annotations

import html
import re

# Markup, with the text of elements that are not prose (a page's title repeats its heading).
_MARKUP = re.compile(r"<(script|style|title)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
# Control characters other than whitespace (an escape sequence would restyle the user's terminal).
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


class UserError(Exception):
    """Bad input or a request the backend cannot honour; the CLI prints it and exits with code 2."""

    # The AWS error code behind the error ("ThrottlingException", or "HTTP 500" when the answer had none),
    # for a table cell that has no room for the sentence; None when AWS did not refuse anything.
    code: str | None = None


class NotFound(UserError):
    """An ARN or name that does not exist."""


class Conflict(UserError):
    """A request that contradicts the current state (e.g. stopping a finished execution)."""


def one_line(text: str, limit: int = 300) -> str:
    """Text someone else wrote (an error page, a 10 KB message) as one plain line of at most `limit`
    characters, to quote inside a sentence of ours: tags and control characters gone, whitespace collapsed."""
    if "<" in text and ">" in text:
        text = html.unescape(_MARKUP.sub(" ", text))
    text = " ".join(_CONTROLS.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def reason(error: BaseException) -> str:
    """A few words for a cell that says why a detail is missing: the AWS code, else the kind of failure."""
    return getattr(error, "code", None) or "unreadable answer"
