"""crm_core: the sales CRM framework's core.

The public API for integrators lives here: ``hookimpl`` to implement hooks,
``hookspec`` to declare the hooks a plugin offers to others (``crm_<plugin>_*``),
``PluginManifest`` to describe a plugin, ``create_app`` to build an application.
"""

import pluggy

from crm_core.version import __version__

hookimpl = pluggy.HookimplMarker("crm")
hookspec = pluggy.HookspecMarker("crm")

from crm_core.manifest import PluginManifest, Setting  # noqa: E402


def create_app(config=None):
    """Build a configured Flask application (see ``crm_core.app.create_app``)."""
    from crm_core.app import create_app as _create_app

    return _create_app(config)


__all__ = ["__version__", "hookimpl", "hookspec", "PluginManifest", "Setting", "create_app"]
