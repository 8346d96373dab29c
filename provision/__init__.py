"""The reference solution: the infrastructure built by Fabric tasks, one module per component.

The base design's components come first, in the order they are built; the fixes of the issues
the design document names (EXTRAS) are applied only when asked for.
"""

import importlib
import pkgutil

from provision import app, database, dns, lb, web

BASE = {module.COMPONENT.name: module.COMPONENT for module in (database, app, web, lb, dns)}
EXTRAS_ORDER = ("firewall", "https", "monitoring", "ha")  # the order extras are applied in
_present = {module.name for module in pkgutil.iter_modules(__path__)}
EXTRAS = {
    name: importlib.import_module(f"{__name__}.{name}").COMPONENT
    for name in EXTRAS_ORDER
    if name in _present
}
COMPONENTS = BASE | EXTRAS
