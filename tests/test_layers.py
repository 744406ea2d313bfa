"""The package's layers: a module imports only from its own layer or those below it, never in a
circle, and MLflow only in tracking/ (every import counted, those inside functions too)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"

# Lowest first; a module may import its own layer and those before it.
LAYERS = (
    ("core",),                   # params, catalog, typed records and summaries, vocabulary, numerics
    ("data",),                   # tables and their splits
    ("study", "iris"),           # losses, model, batched training; the alpha sweep
    ("statistics",),             # verdicts per dataset and across datasets
    ("reports",),                # tables and figures of the verdicts
    ("tracking",),               # MLflow
    ("__main__", "back", "benchmark", "plots_template", "__init__"),  # the command line
)


def layer(module: str) -> int:
    """pipeline.<top>[.<rest>] -> the index of <top>'s layer."""
    top = module.split(".")[1] if "." in module else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module}: in no layer of tests/test_layers.py's LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every pipeline module `path` imports, resolved to a module of the package, and the third
    parties by their top name."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:  # `from . import x`: x is a module when its file exists
                sub = f"{target}.{alias.name}"
                is_module = (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists() or \
                    (PACKAGE.parent / sub.replace(".", "/") / "__init__.py").exists()
                found.add(sub if is_module else target)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_every_import_points_down_the_layers():
    edges = graph()
    against = [f"{me} (layer {LAYERS[layer(me)][0]}) imports {other} (layer {LAYERS[layer(other)][0]})"
               for me, targets in edges.items() for other in sorted(targets)
               if other.startswith("pipeline.") and layer(other) > layer(me)
               and not other.endswith("__init__")]
    assert against == []


def test_no_module_imports_in_a_circle():
    edges = {me: {t for t in targets if t.startswith("pipeline.") and t != me} for me, targets in graph().items()}
    # A package imports its own modules (core/__init__ all of core): not a circle of meaning.
    for me in list(edges):
        edges[me] = {t for t in edges[me] if not t.startswith(me + ".")}
    assert circles(edges) == []


def test_core_imports_nothing_of_the_pipeline_above_it_and_no_numerical_library_at_load():
    for path in sorted((PACKAGE / "core").glob("*.py")):
        top_level = ast.parse(path.read_text()).body
        for node in top_level:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert not any(n.split(".")[0] in ("numpy", "torch", "scipy", "sklearn", "pandas", "matplotlib")
                               for n in names), f"{path.name} imports {names} at load: before the numerics pin"


@pytest.mark.parametrize("library, home", [("mlflow", "tracking"), ("ray", "study.backends")])
def test_a_library_is_imported_only_where_it_belongs(library, home):
    outside = [me for me, targets in graph().items()
               if any(t == library or t.startswith(library + ".") for t in targets)
               and not me.startswith(f"pipeline.{home}")]
    assert outside == []


def test_the_check_finds_a_circle_and_an_upward_import():
    """The checks above can fail: a circle and an import against the layers are found."""
    assert circles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert layer("pipeline.core.config") < layer("pipeline.study.train") < layer("pipeline.tracking.publish")


# String literals that equal a dataset's or a variant's name in params.yaml but mean something
# else: scikit-learn's loaders, the loss families' and penalties' short names, an MLflow tag.
NOT_NAMES = {
    ("pipeline/core/config.py", "breast_cancer"), ("pipeline/core/config.py", "wine"),
    ("pipeline/core/config.py", "digits"), ("pipeline/core/config.py", "l1"),
    ("pipeline/core/vocabulary.py", "l1"), ("pipeline/core/vocabulary.py", "mse"),
    ("pipeline/core/vocabulary.py", "cross_entropy"), ("pipeline/core/vocabulary.py", "cosine_embedding"),
    ("pipeline/core/vocabulary.py", "huber"), ("pipeline/core/vocabulary.py", "multi_margin"),
    ("pipeline/study/model.py", "l1"), ("pipeline/tracking/across_runs.py", "square_loss"),
}


def test_no_dataset_or_variant_is_named_in_code():
    """params.yaml says adding a variant or a dataset needs no code: none is named there either."""
    import yaml

    params = yaml.safe_load((PACKAGE.parent / "params.yaml").read_text())
    names = set(params["datasets"]) | set(params["variants"])
    named = sorted((str(path.relative_to(PACKAGE.parent)), node.lineno, node.value)
                   for path in PACKAGE.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Constant) and node.value in names
                   and (str(path.relative_to(PACKAGE.parent)), node.value) not in NOT_NAMES)
    assert named == []
