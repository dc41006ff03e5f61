"""Core tests.

``tests/fixture_plugins`` holds plugins the tests enable and a ``.dist-info``
folder declaring their ``crm.plugins`` entry points: with the folder on
``sys.path`` they are discovered exactly like pip-installed third-party plugins
(and child processes find them through PYTHONPATH).
"""

import sys
from pathlib import Path

FIXTURE_PLUGINS = Path(__file__).parent / "fixture_plugins"
if str(FIXTURE_PLUGINS) not in sys.path:
    sys.path.insert(0, str(FIXTURE_PLUGINS))
