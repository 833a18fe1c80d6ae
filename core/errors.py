"""Errors a user can act on. Each message is one sentence: what was wrong and what to do."""


class UserError(Exception):
    """Bad input or a request the backend cannot honour; the CLI prints it and exits with code 2."""


class NotFound(UserError):
    """An ARN or name that does not exist."""


class Conflict(UserError):
    """A request that contradicts the current state (e.g. stopping a finished execution)."""
