"""The import plugins ([image_import_opts] image_import_plugins), one module each, one registry.

A plugin is an ``ImportPlugin`` (base.py): a taskflow task the import flow
runs after the staged data was verified and before it is copied into the
stores, never for copy-image (as Glance). ``NAMES`` is read at start to
refuse unknown names; modules are imported only when a flow is built.
"""

from __future__ import annotations

import importlib

# Glance's plugin names -> the module holding the plugin class ``Plugin``.
_MODULES = {
    "no_op": "glancelite.tasks.plugins.no_op",
    "inject_image_metadata": "glancelite.tasks.plugins.inject_image_metadata",
    "image_conversion": "glancelite.tasks.plugins.image_conversion",
    "image_decompression": "glancelite.tasks.plugins.image_decompression",
}
NAMES = tuple(sorted(_MODULES))


def plugin_class(name: str):
    """The ImportPlugin subclass registered as ``name`` (KeyError for an unknown one)."""
    return importlib.import_module(_MODULES[name]).Plugin


def tasks(env, plan) -> list:
    """The configured plugins' tasks for one import, in configured order."""
    return [plugin_class(name)(env, plan) for name in env.settings.image_import_plugins]
