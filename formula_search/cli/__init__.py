"""The ``fsearch`` command line: a thin click layer over the pipeline stages.

Each command lives in its own module and is imported only when it runs, so that ``fsearch --help`` stays fast
(importing torch takes seconds). A command module exposes one click command (or group) named in
:data:`COMMANDS` as ``"module:attribute"``.
"""

from __future__ import annotations

import importlib
import sys

import click

from formula_search import __version__
from formula_search.errors import FsearchError

#: name -> (module:attribute, one-line help shown by ``fsearch --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "enumerate": (
        "formula_search.cli.enumerate_cmd:enumerate_cmd",
        "Enumerate every unit-valid formula up to a size.",
    ),
    "datasets": (
        "formula_search.cli.datasets_cmd:datasets_group",
        "List, show and plot the built-in datasets.",
    ),
    "fit": (
        "formula_search.cli.fit_cmd:fit_cmd",
        "Fit each formula's parameters and keep the conserved ones.",
    ),
    "pretrain": (
        "formula_search.cli._pretrain_cmd:pretrain_cmd",
        "Train the baseline MLP dynamics model.",
    ),
    "rank": (
        "formula_search.cli.rank_cmd:rank_cmd",
        "Rank conserved formulas by meta-tailoring a pretrained MLP.",
    ),
    "run": (
        "formula_search.cli._run_cmd:run_cmd",
        "Run the whole pipeline end to end on a dataset.",
    ),
    "export": (
        "formula_search.cli.export_cmd:export_cmd",
        "Export discovered laws as LaTeX, sympy, JSON or Markdown.",
    ),
    "plot": (
        "formula_search.cli.export_cmd:plot_cmd",
        "Plot error against horizon and the discovered law.",
    ),
    "reproduce": (
        "formula_search.cli._reproduce_cmd:reproduce_cmd",
        "Reproduce the paper's three scientific experiments.",
    ),
    "video": (
        "formula_search.cli.video_cmd:video_group",
        "Neural-embedding Noether Networks for video prediction.",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so that listing the commands imports none of them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fsearch")
def cli() -> None:
    """Discover conservation laws from trajectory data and use them to improve neural predictors.

    A typical session: `fsearch enumerate --depth 7`, `fsearch fit --dataset ideal_pendulum`,
    `fsearch rank --dataset real_pendulum`, `fsearch export RUN --format latex`.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fsearch`` console script.

    Bad input (:class:`FsearchError`), and a path the file system refuses (an :class:`OSError` that names
    a file), are shown as one line on stderr with exit code 2, never as a traceback.
    """
    try:
        cli.main(args=argv, prog_name="fsearch", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FsearchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except OSError as exc:
        # the file system refused a path the user gave (a read-only folder, a full disk, a missing
        # parent, a read-only home for the cache): one line that names it
        if exc.filename is None:
            raise
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        click.echo(f"Error: {where}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    # standalone_mode=False returns the exit code of ctx.exit() instead of exiting
    sys.exit(0)
