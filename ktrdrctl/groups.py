"""Command and group classes: unknown commands get a did-you-mean; lazily imported subcommands;
a ``--help`` option built without a translation lookup.

Every group of ktrdrctl is a :class:`Group` (subgroups made with ``@group.group()`` inherit it, and
its commands are :class:`Command`), so ``ktrdrctl op list`` suggests ``ops`` and ``ktrdrctl ops lst``
suggests ``list`` whatever click's version, and lazy commands (not yet imported) are suggested like
the others.

Why the help option is ours: click labels its ``--help`` through ``gettext`` on every command
invocation, once per command in the chain; each call looks for a message catalogue (imports
``locale``, stats catalogue paths). ktrdrctl has no translations, and those lookups were ~2.5 ms
of the ~100 ms a light command costs here (bench cli_startup).
"""

from __future__ import annotations

from typing import Any

import click

HELP_TEXT = "Show this message and exit."


def _show_help(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def _help_option(command: click.Command, ctx: click.Context) -> click.Option | None:
    """``command``'s help option (the context's help option names), made once per command: click
    orders eager parameters by identity, so the same object must come back on every call."""
    names = command.get_help_option_names(ctx)
    if not names or not command.add_help_option:
        return None
    option: click.Option | None = command.__dict__.get("_plain_help_option")
    if option is None:
        option = click.Option(
            names, is_flag=True, expose_value=False, is_eager=True, help=HELP_TEXT, callback=_show_help
        )
        command.__dict__["_plain_help_option"] = option
    return option


class Command(click.Command):
    """A click command whose ``--help`` is built without a translation lookup."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return _help_option(self, ctx)


class Group(click.Group):
    """A click group whose "no such command" usage error names the closest commands (exit 2)."""

    #: Groups declared on this one with ``@group.group()`` are of the same class.
    group_class = type
    #: Commands declared on this one with ``@group.command()``.
    command_class = Command

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return _help_option(self, ctx)

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
