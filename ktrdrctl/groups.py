"""Command group classes: unknown commands get a did-you-mean; lazily imported subcommands.

Every group of ktrdrctl is a :class:`Group` (subgroups made with ``@group.group()`` inherit it), so
``ktrdrctl op list`` suggests ``ops`` and ``ktrdrctl ops lst`` suggests ``list`` whatever click's
version, and lazy commands (not yet imported) are suggested like the others.
"""

from __future__ import annotations

from typing import Any

import click


class Group(click.Group):
    """A click group whose "no such command" usage error names the closest commands (exit 2)."""

    #: Groups declared on this one with ``@group.group()`` are of the same class.
    group_class = type

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        unknown = bool(name) and not name.startswith("-") and not ctx.resilient_parsing
        if unknown and self.get_command(ctx, name) is None:
            import difflib  # only a mistyped command pays for it

            matches = difflib.get_close_matches(name, self.list_commands(ctx), n=3)
            if matches:
                quoted = " or ".join(repr(match) for match in matches)
                raise click.UsageError(f"No such command {name!r}. Did you mean {quoted}?", ctx)
        return super().resolve_command(ctx, args)


class LazyGroup(Group):
    """A group whose ``lazy_commands`` (name → ``"module:attribute"``) are imported on first use.

    Command groups of other areas live in their own modules of this package; loading them only
    when they are run (or listed by ``--help``) keeps their imports off every other command.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is not None and cmd_name not in self.commands:
            import importlib

            module_name, _, attribute = target.partition(":")
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)
