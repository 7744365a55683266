"""``flask pbx365 ...``: the commands of interfaces.md, thin shells over the same functions the tabs use.

:func:`build_cli` makes one app's command group: the core commands (:mod:`.main`) and the ``sync`` group of its
features (:mod:`.sync`).
"""
from __future__ import annotations

from typing import Iterable

import click

from ..feature import Feature
from .main import core_cli
from .sync import build_sync_cli


def build_cli(features: Iterable[Feature]) -> click.Group:
    """The ``pbx365`` command group of an app with these features."""
    group = click.Group(core_cli.name, help=core_cli.help, commands=dict(core_cli.commands))
    group.add_command(build_sync_cli(features))
    return group
