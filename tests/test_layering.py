"""DESIGN.md's layering as a check: imports between Tocsin's packages point downward only.

Each package has a layer; a module may import from its own package and from packages of a
lower layer. HTTP modules (`api.py`, `*_api.py`, `ui/`) sit on top of everything: nothing
else imports them. The imports that still point upward are listed in KNOWN_UPWARD, each one
a debt: the test fails when a new one appears, and when a listed one is gone (take it off
the list, so the count only goes down). Imports under `if TYPE_CHECKING:` do not count.

    python -m tests.test_layering      # prints the upward imports and their count
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "tocsin"

# Lower number = lower layer. The flow of DESIGN.md: HTTP -> adapters (integrations) ->
# ingest (alerts) -> routing / dedup (incidents) -> timer rows; the worker reacts through
# escalation, which hands pages to notifications. Shared plumbing sits at the bottom.
LAYERS: dict[str, int] = {
    # plumbing: settings, clock, errors, the database and its store, telemetry
    "config": 0,
    "clock": 0,
    "errors": 0,
    "patching": 0,
    "db": 0,
    "store": 0,
    "telemetry": 0,
    "migrations": 0,
    "realtime": 1,
    "audit": 1,
    # escalation timer rows and their writers: below incidents, so a lifecycle change
    # writes the timers it implies without calling up into escalation
    "timers": 1,
    # who: people and teams
    "auth": 2,
    "teams": 2,
    # what: services and schedules
    "catalog": 3,
    "schedules": 3,
    # incidents and where alerts go
    "incidents": 4,
    "routing": 4,
    # the worker's reactions: escalation pages people, notifications deliver the pages
    "notifications": 5,
    "escalation": 6,
    # ingest: the pipeline, and the adapters that feed it
    "alerts": 7,
    "noise": 7,
    "integrations": 8,
    "heartbeats": 8,
    # the loop that runs every kind of due work
    "worker": 9,
    # operations (status, backups) and importers read and write everything
    "operations": 10,
    "importers": 10,
    "retention": 10,
    # the process: HTTP and the command line
    "web": 11,
    # the process's long-lived parts, started and stopped together (serve and worker)
    "runtime": 11,
    "ui": 11,
    "bootstrap": 11,
    # every table, gathered for Alembic and the tests
    "models": 11,
    "app": 12,
    "cli": 12,
}
HTTP_LAYER = 11

# (importing module, imported package) pairs that point upward today. Remove entries as
# they are fixed; never add one without saying in review why it cannot point down.
KNOWN_UPWARD: set[tuple[str, str]] = {
    ("tocsin.alerts.ingest", "integrations"),
    ("tocsin.audit.listing", "auth"),
    ("tocsin.catalog.registry", "escalation"),
    ("tocsin.catalog.registry", "incidents"),
    ("tocsin.catalog.registry", "integrations"),
    ("tocsin.escalation.choices", "integrations"),
    ("tocsin.escalation.schemas", "noise"),
    ("tocsin.escalation.simulate", "alerts"),
    ("tocsin.escalation.simulate", "integrations"),
    ("tocsin.escalation.simulate", "noise"),
    ("tocsin.escalation.step", "worker"),
    ("tocsin.heartbeats.watch", "worker"),
    ("tocsin.incidents.choices", "escalation"),
    ("tocsin.incidents.choices", "integrations"),
    ("tocsin.incidents.detail", "alerts"),
    ("tocsin.incidents.detail", "escalation"),
    ("tocsin.incidents.listing", "escalation"),
    ("tocsin.incidents.models", "alerts"),
    ("tocsin.incidents.responding", "escalation"),
    ("tocsin.incidents.schemas", "alerts"),
    ("tocsin.notifications.delivery", "worker"),
    ("tocsin.notifications.dispatch", "alerts"),
    ("tocsin.notifications.dispatch", "escalation"),
    ("tocsin.routing.route", "alerts"),
    ("tocsin.routing.route", "escalation"),
    ("tocsin.routing.route", "integrations"),
    ("tocsin.schedules.editing", "escalation"),
    ("tocsin.teams.directory", "catalog"),
    ("tocsin.teams.directory", "escalation"),
    ("tocsin.teams.directory", "incidents"),
    ("tocsin.teams.directory", "schedules"),
    ("tocsin.teams.membership", "escalation"),
    ("tocsin.worker.steps", "retention"),
}


def package_of(module: str) -> str:
    """The top-level package (or root module) of `tocsin.x.y`: `x`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(module: str) -> int | None:
    """The module's layer: HTTP modules are on top, whatever their package. None for a
    package not placed in LAYERS yet (a new one: place it, and its imports are checked)."""
    last = module.rsplit(".", 1)[-1]
    if last == "api" or last.endswith("_api") or package_of(module) == "ui":
        return HTTP_LAYER
    return LAYERS.get(package_of(module))


def _points_up(module: str, target: str) -> bool:
    low, high = layer_of(module), layer_of(target)
    return low is not None and high is not None and high > low


def _module_name(path: Path) -> str:
    relative = path.relative_to(SRC.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tocsin."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("tocsin."):
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_arrows() -> list[tuple[str, str]]:
    """Every (module, imported module) pair between different tocsin packages."""
    arrows = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        for target in sorted(_imports(tree, module, path.name == "__init__.py")):
            if package_of(target) != package_of(module):
                arrows.append((module, target))
    return arrows


def upward_imports() -> set[tuple[str, str]]:
    """The (module, imported package) pairs whose import points to a higher layer."""
    return {
        (module, package_of(target))
        for module, target in import_arrows()
        if _points_up(module, target)
    }


def test_imports_point_downward_except_the_known_ones() -> None:
    found = upward_imports()
    new = sorted(found - KNOWN_UPWARD)
    assert not new, (
        "imports that point up a layer (DESIGN.md, 'Which way things flow'): "
        + ", ".join(f"{m} -> tocsin.{p}" for m, p in new)
    )


def test_the_known_upward_imports_are_all_still_there() -> None:
    gone = sorted(KNOWN_UPWARD - upward_imports())
    assert not gone, "fixed, well done: take these off KNOWN_UPWARD: " + ", ".join(
        f"{m} -> tocsin.{p}" for m, p in gone
    )


def test_nothing_below_http_imports_an_http_module() -> None:
    offenders = sorted(
        (module, target)
        for module, target in import_arrows()
        if (target.rsplit(".", 1)[-1] == "api" or target.endswith("_api"))
        and (layer_of(module) or 0) < HTTP_LAYER
        and (module, package_of(target)) not in KNOWN_UPWARD
    )
    assert not offenders, offenders


if __name__ == "__main__":
    arrows = import_arrows()
    upward = sorted(upward_imports())
    print(f"{len(arrows)} import arrows between packages, {len(upward)} point upward:")
    for module, package in upward:
        print(f"    ({module!r}, {package!r}),")
