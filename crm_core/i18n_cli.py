"""``crm i18n extract|update|check``: the translators' workflow (see crm_core/i18n_tools.py).

These commands work on a source checkout and never build the application, so
they need no database or configuration.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crm_core import i18n_tools

root_option = click.option(
    "--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=i18n_tools.project_root_default, show_default="the folder holding crm_core",
    help="The project root: crm_core/, plugins/<name>/crm_<name>/ and locale/ are found there.")


def _show(paths, root, verb):
    for path in paths:
        try:
            shown = path.resolve().relative_to(root.resolve())
        except ValueError:
            shown = path
        click.echo(f"{verb} {shown}")


@click.group("i18n")
def i18n():
    """Translations: extract messages, update the catalogues, check them."""


@i18n.command()
@root_option
def extract(root):
    """Write locale/<domain>.pot for crm_core and every bundled plugin package."""
    _show(i18n_tools.extract(root), root, "template")


@i18n.command()
@root_option
def update(root):
    """Merge the .pot templates into every language's .po (creating missing ones)."""
    _show(i18n_tools.update(root), root, "catalogue")


@i18n.command()
@root_option
def check(root):
    """Report untranslated, fuzzy or broken messages; exit status 1 when there are any."""
    problems = i18n_tools.check(root)
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} translation problem(s).", err=True)
        sys.exit(1)
    click.echo(f"Translations OK: {', '.join(i18n_tools.LANGUAGES)} are complete.")
