"""The ``xxgk`` command line (architecture.md, "Command line").

Each group of commands lives in its own module and registers itself on
:data:`main`; this file only wires them together.
"""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from shared.errors import ConfigError
from shared.logging import configure_logging
from shared.settings import Settings, get_settings

EXIT_CONFIG = 2
# settings whose value may carry credentials: a message about them never repeats the value
_SECRET_SETTINGS = frozenset({"database_url", "redis_url", "webhook_urls", "webhook_secret"})


def _setting_name(field: str) -> str:
    """The environment variable people set, which is what they must fix."""
    prefix = str(Settings.model_config.get("env_prefix") or "")
    return f"{prefix}{field}".upper()


def config_error_lines(exc: ValidationError) -> list[str]:
    """``xxgk: config_error: <setting>: <message>``, one line per bad setting."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        top = str(error["loc"][0]) if error["loc"] else ""
        # pydantic's own messages do not say what was given; ours (value_error) already do
        if error["type"] != "value_error" and top not in _SECRET_SETTINGS and isinstance(value, str):
            message = f"{message} (got {value[:60]!r})"
        lines.append(f"xxgk: config_error: {_setting_name(field)}: {message}")
    return lines


class _Main(click.Group):
    """The ``xxgk`` group: bad settings end any command with one line each and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            if exc.title != Settings.__name__:
                raise  # some other model failed: a bug, not configuration
            for line in config_error_lines(exc):
                click.echo(line, err=True)
        except ConfigError as exc:
            click.echo(f"xxgk: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="log debug events to stderr")
def main(verbose: bool) -> None:
    """xxgk-watch: find, parse, check, store and alert on 政府信息公开工作年度报告."""
    settings = get_settings()
    configure_logging(json=settings.log_json, level="DEBUG" if verbose else "WARNING")


def _register() -> None:
    # imported for their side effect of adding commands to `main`
    # inside the function: documents imports `main` from this module, which must exist first
    from worker.cli import documents  # noqa: F401

    for optional in ("store_commands", "crawl_commands"):
        try:
            __import__(f"worker.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"worker.cli.{optional}":
                raise


_register()
