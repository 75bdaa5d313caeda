"""The command palette's list of actions: every binding of the screen it was opened from.

Generated from the bindings, like Help, so the palette, the Footer and Help always agree.
"""

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ActionsProvider(Provider):
    def _actions(self) -> list[tuple[str, str, object]]:
        """(title, help, callback) per binding, one entry per binding however many keys."""
        seen = set()
        actions = []
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if binding.action in ("command_palette", "app.command_palette") or binding.system:
                continue
            ident = binding.id or binding.action
            if ident in seen or not binding.description:
                continue
            seen.add(ident)
            shown = self.app.get_key_display(binding) or key
            title = f"{binding.description} ({shown})"
            run = partial(self.app.run_action, binding.action, active.node)
            actions.append((title, binding.tooltip or binding.description, run))
        return actions

    async def discover(self) -> Hits:
        for title, help_text, run in self._actions():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._actions():
            score = max(matcher.match(title), matcher.match(help_text) * 0.8)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
