"""The layers of ARCHITECTURE.md, checked on the source: no import points up a layer, the
module graph has no cycle, and imports sit at the top of modules (only optional or heavy
dependencies that must stay behind the lazy boundary are imported inside functions). The
registry's ``"module:Class"`` strings are imports made at run time and count as edges. The
contract (``recogan.base``) sits at the floor, no private name crosses a package, and the
GAN's package keeps its modules and functions short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "recogan"

#: Lowest first: a module may import its own layer (without cycles) and the layers below.
LAYERS = [
    ("recogan", "recogan._fs", "recogan._config", "recogan._topk", "recogan._threads"),
    ("recogan.data", "recogan.completejourney", "recogan.datasets"),
    ("recogan.base",),
    (
        "recogan.metrics",
        "recogan.features",
        "recogan.gan.config",
        "recogan.gan.networks",
        "recogan.index",
        "recogan._similarity",
        "recogan.catalog",
        "recogan.diversity",
        "recogan.serving",
        "recogan.vector_quality",
    ),
    ("recogan.gan.pairs", "recogan.gan.train", "recogan.gan._loop"),
    ("recogan.registry", "recogan.artifacts", "recogan.gan", "recogan.baselines"),
    (
        "recogan.fitting",
        "recogan._trials",
        "recogan.evaluate",
        "recogan.batch",
        "recogan.recommender",
    ),
    ("recogan.testing",),
    ("recogan.cli", "recogan.__main__"),
]

#: What may be imported inside a function: optional extras (ray), the GPU-dependent faiss,
#: torch where a light module (one the service API imports) needs it only on some paths,
#: and platform or optional helpers.
LAZY_OK = {"torch", "faiss", "ray", "threadpoolctl"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    best = None
    for rank, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                if best is None or len(name) > len(best[1]):
                    best = (rank, name)
    assert best is not None, f"{module} is in no layer of ARCHITECTURE.md"
    return best[0]


def _imports(module: str, path: Path):
    """``(target module, line, inside a function)`` for every import of the module."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, in_function
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1])
                    base = f"{base}.{child.module}" if child.module else base
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    yield (sub if sub in MODULES else base), child.lineno, in_function
            else:
                yield from visit(child, inner)

    yield from visit(tree, False)


def _registry_imports(path: Path):
    """``(module, line)`` of every ``"module:Class"`` string in the registry's table: the
    modules it imports at run time when a model is asked for by name."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            module, colon, cls = node.value.partition(":")
            if colon and module.startswith("recogan") and cls.isidentifier():
                yield module, node.lineno


def _edges():
    edges = {
        (module, target, line)
        for module, path in MODULES.items()
        for target, line, _ in _imports(module, path)
        if target == "recogan" or target.startswith("recogan.")
    }
    for target, line in _registry_imports(MODULES["recogan.registry"]):
        edges.add(("recogan.registry", target, line))
    return edges


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_import_points_up_a_layer():
    up = [
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)}) at line {line}"
        for m, t, line in sorted(_edges())
        if _layer(t) > _layer(m)
    ]
    assert not up, "\n".join(up)


def test_no_import_cycle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, t, _ in _edges():
        if t in graph and t != m:
            graph[m].add(t)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_at_the_top_of_modules():
    inside = [
        f"{m}:{line} imports {t} inside a function"
        for m, path in MODULES.items()
        for t, line, in_function in _imports(m, path)
        if in_function and t.split(".")[0] not in LAZY_OK
    ]
    assert not inside, "\n".join(inside)


def test_the_checker_sees_upward_and_inner_imports(tmp_path):
    # the checks above must be able to fail: a model module importing evaluate inside a
    # function is both an upward import and an inner import
    src = "def f():\n    from recogan.evaluate import evaluate\n"
    path = tmp_path / "model.py"
    path.write_text(src)
    ((target, line, in_function),) = list(_imports("recogan.gan.model", path))
    assert target == "recogan.evaluate" and line == 2 and in_function
    assert _layer(target) > _layer("recogan.gan.model")


#: Packages whose modules and functions must stay short (one job per module).
SIZE_CHECKED = ("recogan.gan",)
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _too_long(module: str, path: Path) -> list[str]:
    """What in ``module`` is over the size limits: the module, and each function (methods
    and nested functions included, decorators and docstrings counted)."""
    text = path.read_text()
    out = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        out.append(f"{module}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES:
                out.append(
                    f"{module}:{node.lineno} {node.name}: {length} lines "
                    f"(at most {MAX_FUNCTION_LINES})"
                )
    return out


def test_the_gan_package_keeps_modules_and_functions_short():
    checked = [m for m in MODULES if any(m == p or m.startswith(p + ".") for p in SIZE_CHECKED)]
    assert len(checked) > 5  # the package is there and seen
    long = [line for m in checked for line in _too_long(m, MODULES[m])]
    assert not long, "\n".join(long)


def test_the_size_check_sees_a_long_module_and_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    path = tmp_path / "long.py"
    path.write_text(f"@staticmethod\ndef f():\n{body}\n" + "\n" * MAX_MODULE_LINES)
    long = _too_long("recogan.gan.long", path)
    assert len(long) == 2 and "f: 62 lines" in long[1] and "lines (at most 500)" in long[0]


def test_the_registrys_run_time_imports_are_edges(tmp_path):
    found = {t for m, t, _ in _edges() if m == "recogan.registry"}
    assert {"recogan.gan.model", "recogan.baselines"} <= found
    # a registered model above the registry would be an upward edge the checks see
    path = tmp_path / "registry.py"
    path.write_text('MODEL_REGISTRY = {"x": "recogan.evaluate:Thing"}\n')
    ((target, line),) = list(_registry_imports(path))
    assert target == "recogan.evaluate" and line == 1
    assert _layer(target) > _layer("recogan.registry")


def test_the_contract_sits_at_the_floor():
    allowed = {"recogan.data", "recogan._topk", "recogan._config"}
    found = {t for m, t, _ in _edges() if m == "recogan.base"}
    assert found <= allowed, f"recogan.base imports {sorted(found - allowed)}"


def _package(module: str) -> str:
    """The package that owns ``module``'s private names."""
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_private_name_crosses_a_package():
    # ``from recogan.data._idmap import check_ids`` in recogan.catalog reaches into another
    # package's private module: it should import the public ``recogan.data.check_ids``.
    # Layer-0 helpers (``recogan._fs``, ...) are the top package's own and may be used by all.
    crossing = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "recogan"
            ):
                continue
            for alias in node.names:
                parts = f"{node.module}.{alias.name}".split(".")
                for i, part in enumerate(parts[1:], start=1):
                    if part.startswith("_") and not part.startswith("__"):
                        owner = ".".join(parts[:i])
                        if owner != "recogan" and not (module + ".").startswith(owner + "."):
                            crossing.append(f"{module}:{node.lineno} imports {'.'.join(parts)}")
                        break
    assert not crossing, "\n".join(crossing)


def test_hooks_are_not_probed():
    # optional behaviour is a hook declared in recogan.base, called without asking: no
    # hasattr(model, "name") / getattr(model, "name", default) (delegation by a variable
    # name, as a view's __getattr__ does, is not a probe)
    probes = [
        f"{m}:{node.lineno}"
        for m, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("hasattr", "getattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and ast.unparse(node.args[0]) in ("model", "fitted", "self.model", "mdl", "m")
    ]
    assert not probes, "hasattr/getattr on a model: " + ", ".join(probes)
