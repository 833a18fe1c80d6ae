"""Command palette entries built from what makes sense now: the app's places plus the shown screen's actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    name: str
    help: str
    callback: Callable[[], Any]


class HousingCommands(Provider):
    """Asks the app (which asks the current screen) for the commands that apply at this moment."""

    def _commands(self) -> list[PaletteCommand]:
        collect = getattr(self.app, "palette_commands", None)
        return list(collect(self.screen)) if collect else []

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.name, command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(command.name), command.callback, help=command.help)
