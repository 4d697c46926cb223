"""Every table of the bridge database, found without the core importing a bot.

The core (``bridge/``) never imports ``bots.*``. A module that declares tables on
:class:`bridge.db.models.Base` names itself in the ``buergerchat.models``
entry-point group of ``pyproject.toml``; importing every module of that group
registers all tables, so Alembic (``migrations/env.py``) and the tests see the
whole schema, and a new bot's table needs only its entry there.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from sqlalchemy import MetaData

from .models import Base

GROUP = "buergerchat.models"


class ModelsNotInstalled(RuntimeError):
    """The entry points are missing: the package is not installed (``pip install
    -e .`` after changing pyproject.toml, or ``scripts/setup``)."""


def load_models() -> MetaData:
    """Import every module of the ``buergerchat.models`` group; their tables are
    then on ``Base.metadata``, which is returned."""
    found = entry_points(group=GROUP)
    if not found:
        raise ModelsNotInstalled(
            f"no entry points in group {GROUP!r}: install Bürgerchat "
            "(scripts/setup or pip install -e .) so that its tables are found"
        )
    for entry in found:
        # The value is a module ("bridge.mail.models"), not module:attribute.
        importlib.import_module(entry.module)
    return Base.metadata
