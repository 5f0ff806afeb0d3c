"""The DVC contract kept by the code: every xaug module a stage script imports (transitively, lazy
imports included) is declared among that stage's deps in dvc.yaml, so `dvc repro` re-runs a stage
whenever code it runs changes."""
import ast
from pathlib import Path

import pytest
import yaml

from conftest import REPO


def _imports(path: Path) -> set[str]:
    """xaug modules imported anywhere in ``path`` (top level or inside functions), as file paths."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    in_package = path.parent.name == "xaug"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and in_package:  # from .x import y / from . import x
                names = [f"xaug.{node.module}"] if node.module else [f"xaug.{a.name}" for a in node.names]
            else:
                base = node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("xaug.") and (REPO / (name.replace(".", "/") + ".py")).is_file():
                found.add(name.replace(".", "/") + ".py")
    return found


def import_closure(script: Path) -> set[str]:
    todo, seen = [script], set()
    while todo:
        for module in _imports(todo.pop()):
            if module not in seen:
                seen.add(module)
                todo.append(REPO / module)
    return seen


def _stages():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in spec["stages"].items():
        body = stage.get("do", stage)
        script = next(w for w in body["cmd"].split() if w.startswith("stages/") and w.endswith(".py"))
        yield name, script, body.get("deps", [])


@pytest.mark.parametrize("name,script,deps", list(_stages()), ids=[s[0] for s in _stages()])
def test_stage_deps_cover_the_code_it_runs(name, script, deps):
    assert script in deps, f"{name}: its script {script} is not among its deps"
    missing = sorted(import_closure(REPO / script) - set(deps)) if "xaug" not in deps else []
    assert not missing, f"{name}: dvc.yaml deps lack {missing}"


def test_the_closure_follows_lazy_and_relative_imports(tmp_path):
    closure = import_closure(REPO / "stages" / "scaling.py")
    assert {"xaug/scaling.py", "xaug/ranking.py", "xaug/stats.py", "xaug/metrics.py"} <= closure


def test_the_lock_holds_only_the_pipelines_stages():
    """DVC never drops the dvc.lock entry of a stage that was renamed or removed, and it re-reads and
    re-writes the whole lock after every stage it runs (docs/design.md: about 4 s a stage for 50 entries,
    8 s with 110 stale ones more); the committed lock is pruned to the stages of dvc.yaml."""
    from dvc.repo import Repo

    stages = {s.addressing for s in Repo(str(REPO)).index.stages}
    locked = set(yaml.safe_load((REPO / "dvc.lock").read_text())["stages"])
    assert not locked - stages, f"dvc.lock has entries of stages dvc.yaml no longer has: {sorted(locked - stages)}"
