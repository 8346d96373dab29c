"""The reference solution: the infrastructure built by Fabric tasks, one module per component."""

from provision import app, database, dns, lb, web

COMPONENTS = {module.COMPONENT.name: module.COMPONENT for module in (database, app, web, lb, dns)}
