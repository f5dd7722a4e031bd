"""The shape of the code, checked on every run (STYLE.md): modules under 500 lines, functions
under 80, `registry` never imports `monitoring` at module level, no module-level import
cycles, and no private internals of the libraries we build on.

Run as a script for the figures: `python -m tests.test_architecture`."""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("registry", "monitoring", "mlops_portal", "mlops_portal_client")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# Modules allowed over the line limit, each for a stated reason. Keep this list short.
MODULE_SIZE_ALLOWED: set[str] = set()


def application_modules() -> list[Path]:
    """Every application module: the four packages, without migrations."""
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def line_counts() -> dict[str, int]:
    return {relative(path): len(path.read_text().splitlines()) for path in application_modules()}


def long_functions(limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """`module:function` → lines, for every function (or method) longer than `limit` lines,
    decorators and docstring included."""
    found = {}
    for path in application_modules():
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - start + 1
                if lines > limit:
                    found[f"{relative(path)}:{node.name}"] = lines
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module):
    """Import statements executed when the module is imported: the top level, and inside
    top-level if/try blocks (not `if TYPE_CHECKING:`, not function bodies)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module → the application modules it imports at module level. `from a.b import c` points
    at `a.b.c` when that is a module, otherwise at `a.b`."""
    paths = {module_name(path): path for path in application_modules()}
    graph = {}
    for name, path in paths.items():
        targets = set()
        for node in _module_level_imports(parsed(path)):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                base = _resolve(node, name, path.name == "__init__.py")
                candidates = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names
                ]
            targets.update(c for c in candidates if c in paths and c != name)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]] | None = None) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    graph = import_graph() if graph is None else graph
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


# Private internals of the libraries we build on: none of these may appear in application code.
PRIVATE_LIBRARIES = ("django", "rest_framework", "rules", "redis", "django_redis", "plotly", "_plotly_utils")
PRIVATE_PATTERNS = {
    "_plotly_utils": re.compile(r"\b_plotly_utils\b"),
    "connection.run_on_commit": re.compile(r"\brun_on_commit\b"),
    "rules' group cache": re.compile(r"\b_group_cache\b|\bis_group_member\._"),
    "redis pool internals": re.compile(r"connection_pool\._|\b_available_connections\b|\b_in_use_connections\b"),
}


def _private_import_names(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            package = node.module.split(".")[0]
            if package in PRIVATE_LIBRARIES:
                private_parts = [part for part in node.module.split(".") if part.startswith("_")]
                private_names = [alias.name for alias in node.names if alias.name.startswith("_")]
                if private_parts or private_names or package == "_plotly_utils":
                    found.append(f"from {node.module} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in PRIVATE_LIBRARIES and any(part.startswith("_") for part in parts):
                    found.append(f"import {alias.name}")
    return found


def _library_aliases(tree: ast.Module) -> set[str]:
    """Local names bound to an object imported from one of the libraries."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PRIVATE_LIBRARIES:
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PRIVATE_LIBRARIES:
                    names.add((alias.asname or alias.name).split(".")[0])
    return names


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def private_uses() -> list[str]:
    found = []
    for path in application_modules():
        tree = parsed(path)
        text = path.read_text()
        where = relative(path)
        found += [f"{where}: {use}" for use in _private_import_names(tree)]
        found += [f"{where}: {label}" for label, pattern in PRIVATE_PATTERNS.items() if pattern.search(text)]
        aliases = _library_aliases(tree)
        for node in ast.walk(tree):
            # `django_thing._private` on a name imported from one of the libraries
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if _root_name(node) in aliases:
                    found.append(f"{where}:{node.lineno}: .{node.attr}")
        found += [f"{where}: {name} override" for name in _loading_overrides(tree, where)]
    return found


# Django's documented recipe for remembering a loaded value ("Customizing model loading" in the
# model instance reference): HealthStatus keeps the status it was loaded with, so saving it can
# tell a status change (lists and details are stale) from a recompute (only details are).
FROM_DB_ALLOWED = {"monitoring/models.py:HealthStatus.from_db"}


def _loading_overrides(tree: ast.Module, where: str) -> list[str]:
    """A field's ``from_db_value`` or a model's ``from_db`` overridden as a loading trick."""
    found = []
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef):
            for node in cls.body:
                if isinstance(node, ast.FunctionDef) and node.name in {"from_db_value", "from_db"}:
                    name = f"{cls.name}.{node.name}"
                    if f"{where}:{name}" not in FROM_DB_ALLOWED:
                        found.append(name)
    return found


def registry_imports_of_monitoring() -> list[str]:
    graph = import_graph()
    return sorted(
        f"{source} → {target}"
        for source, targets in graph.items()
        if source.split(".")[0] == "registry"
        for target in targets
        if target.split(".")[0] == "monitoring"
    )


# Database-specific code lives in mlops_portal/db.py; these patterns appear nowhere else.
DATABASE_SPECIFIC = re.compile(r"connection\.vendor|\.cursor\(\)|\bRawSQL\b|\.copy\(f?[\"']COPY")
DATABASE_SPECIFIC_ALLOWED = {
    "mlops_portal/db.py",
    # ingestion's COPY of predictions and labels, with its ORM path beside it: being reshaped by
    # the partitioned-storage work; it moves behind mlops_portal/db.py when that lands
    "monitoring/services/ingest_storage.py",
    # PostgreSQL declarative partitions of the raw tables (DDL, attach/detach, drop), with the
    # SQLite range-delete path beside each function; the vendor check itself is mlops_portal.db's
    "monitoring/services/partitions.py",
}


def database_specific_sites() -> list[str]:
    return [
        f"{relative(path)}:{number}: {line.strip()}"
        for path in application_modules()
        if relative(path) not in DATABASE_SPECIFIC_ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if DATABASE_SPECIFIC.search(line)
    ]


# --- the tests ------------------------------------------------------------------------------


def test_no_application_module_over_500_lines():
    over = {path: n for path, n in line_counts().items() if n > MAX_MODULE_LINES and path not in MODULE_SIZE_ALLOWED}
    assert over == {}


def test_the_size_allow_list_names_existing_modules_only():
    assert all((ROOT / path).exists() for path in MODULE_SIZE_ALLOWED)


def test_no_function_over_80_lines():
    allowed_modules = MODULE_SIZE_ALLOWED
    over = {name: n for name, n in long_functions().items() if name.split(":")[0] not in allowed_modules}
    assert over == {}


def test_registry_does_not_import_monitoring_at_module_level():
    assert registry_imports_of_monitoring() == []


def test_no_module_level_import_cycles():
    assert import_cycles() == []


def test_no_private_internals_of_libraries():
    assert private_uses() == []


def test_database_specific_code_lives_in_one_module():
    assert database_specific_sites() == []


def wall_clock_stamps() -> list[str]:
    """``module:line`` of every ``timezone.now()`` in a writing service (registry/services,
    monitoring/services, monitoring/oversight): they stamp times from ``mlops_portal.clock``,
    which the demo's back-dated history sets (docs/audit.md)."""
    found = []
    for path in application_modules():
        where = relative(path)
        if not where.startswith(("registry/services/", "monitoring/services/", "monitoring/oversight/")):
            continue
        for node in ast.walk(parsed(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "now"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "timezone"
            ):
                found.append(f"{where}:{node.lineno}")
    return found


def test_services_take_the_time_from_the_clock():
    assert wall_clock_stamps() == []


def test_the_cycle_finder_finds_a_cycle():
    """The checks above are only worth something if they can fail: a two-module circle and a
    private import are found."""
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse("from plotly.io._json import to_json_plotly\nimport _plotly_utils.utils\n")
    assert len(_private_import_names(tree)) == 2
    tree = ast.parse("from django.db import connection\nconnection._savepoints\n")
    aliases = _library_aliases(tree)
    assert [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and _root_name(n) in aliases] == [
        "_savepoints"
    ]
    tree = ast.parse(
        "class Price:\n    def from_db_value(self, value, expression, connection):\n        return value\n"
    )
    assert _loading_overrides(tree, "registry/fields.py") == ["Price.from_db_value"]


if __name__ == "__main__":
    counts = line_counts()
    print(f"application modules: {len(counts)}, lines: {sum(counts.values())}")
    for path, n in sorted(counts.items(), key=lambda item: -item[1]):
        if n > 400:
            print(f"  {n:5d} {path}")
    print(f"functions over {MAX_FUNCTION_LINES} lines: {len(long_functions())}")
    for name, n in sorted(long_functions().items(), key=lambda item: -item[1]):
        print(f"  {n:5d} {name}")
    print(f"module-level import cycles: {len(import_cycles())}")
    for component in import_cycles():
        print("  " + " ↔ ".join(component))
    print(f"registry → monitoring module-level imports: {registry_imports_of_monitoring()}")
    print(f"private library internals: {private_uses()}")
    print(f"database-specific code outside mlops_portal/db.py: {database_specific_sites()}")


# The data stack a process serving the registry, the audit log or the API's plumbing never needs:
# about 240 MB (pandas, pyarrow, scipy.stats). Modules that use them import them
# where they are used, so only the processes that compute pay for them.
DATA_STACK = ("pandas", "scipy", "pyarrow")


def url_conf_imports(modules=DATA_STACK) -> list[str]:
    """Which of ``modules`` a fresh Django process has imported once its URL conf is loaded."""
    import os
    import subprocess

    code = (
        "import sys, django; django.setup(); from django.conf import settings; "
        "__import__(settings.ROOT_URLCONF); "
        f"print(' '.join(m for m in {modules!r} if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlops_portal.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_url_conf_does_not_import_the_data_stack():
    assert url_conf_imports() == []


def test_the_url_conf_check_sees_an_import():
    assert url_conf_imports(("django", "rest_framework")) == ["django", "rest_framework"]


def _method_chain(node: ast.Call) -> dict[str, ast.Call]:
    """The method calls of a chain ``a.b().c().d()`` → {"b": call, "c": call, "d": call}."""
    chain = {}
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        chain.setdefault(node.func.attr, node)
        node = node.func.value
    return chain


def wide_row_locks(paths=None) -> list[str]:
    """``module:line`` of each ``select_for_update()`` without ``of=`` in a chain that also
    joins (``select_related``): PostgreSQL's FOR UPDATE then locks every joined row (the model,
    the owner), and a transaction that only refers to those rows (ingestion's foreign keys) waits
    on it, the deadlock of docs/performance.md ("Deadlocks, fixed"). Lock your own row:
    ``select_for_update(of=("self",))``."""
    found = set()
    for path in paths or application_modules():
        for node in ast.walk(parsed(path)):
            if not isinstance(node, ast.Call):
                continue
            chain = _method_chain(node)
            lock = chain.get("select_for_update")
            if lock is not None and "select_related" in chain and not any(k.arg == "of" for k in lock.keywords):
                where = relative(path) if path.is_relative_to(ROOT) else path.name
                found.add(f"{where}:{lock.lineno}")
    return sorted(found)


def test_row_locks_that_join_lock_their_own_row_only():
    assert wide_row_locks() == []


def test_the_row_lock_check_sees_a_wide_lock(tmp_path):
    source = tmp_path / "locks.py"
    source.write_text(
        "A.objects.select_for_update().select_related('model').get(pk=1)\n"
        "A.objects.select_related('model').select_for_update().get(pk=1)\n"
        "A.objects.select_for_update(of=('self',)).select_related('model').get(pk=1)\n"
        "A.objects.select_for_update().get(pk=1)\n"
    )
    assert [where.rsplit(":", 1)[1] for where in wide_row_locks([source])] == ["1", "2"]
