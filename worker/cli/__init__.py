"""The ``xxgk`` command line (architecture.md, "Command line").

Each group of commands lives in its own module and registers itself on
:data:`main`; this file only wires them together.
"""

from __future__ import annotations

import click

from shared.logging import configure_logging
from shared.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="log debug events to stderr")
def main(verbose: bool) -> None:
    """xxgk-watch: find, parse, check, store and alert on 政府信息公开工作年度报告."""
    settings = get_settings()
    configure_logging(json=settings.log_json, level="DEBUG" if verbose else "WARNING")


def _register() -> None:
    # imported for their side effect of adding commands to `main`
    from worker.cli import documents  # noqa: F401

    for optional in ("store_commands", "crawl_commands"):
        try:
            __import__(f"worker.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"worker.cli.{optional}":
                raise


_register()
