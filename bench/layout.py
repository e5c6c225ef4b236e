"""Figures of the layout: how the project's modules import each other (`python -m bench.layout [ROOT]`).

Prints, for the tree at ROOT (default: this checkout):
- modules and project imports (an import of one project module by another, counted once per pair);
- imports inside function bodies, and how many of those modules say why (a comment with "deliberate");
- upward imports: a module importing one on a higher floor (the floors of ARCHITECTURE.md, lowest first), and
  imports of anything under hub/ from the folders below it (consent/, connectors/, schemas/, agencies/, core/);
- import circles: groups of modules that reach each other (strongly connected components), counting every import
  and counting only module-level ones (those that break an import at start-up);
- private names imported from another module (``from x import _name``);
- the largest file and function.

Run it on an older commit to compare: ``git archive REV | tar -x -C /tmp/old && python -m bench.layout /tmp/old``.
A module of the older flat layout is placed on the floor of the module it became (``MOVED``).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGES = ("core", "schemas", "consent", "connectors", "agencies", "hub", "dags", "bench")
# lowest first; a module's floor is its longest matching prefix
FLOORS = ("core", "schemas", "consent", "connectors", "agencies", "hub.airflow", "hub.rules", "hub.federation",
          "hub.stages", "hub.services", "hub.dci", "hub.web", "hub.cli hub.demo hub", "dags bench")
# where the modules of the flat layout (before the floors) went
MOVED = {
    "hub.config": "core", "hub.params": "core", "hub.crypto": "core", "hub.store": "core", "hub.migrations": "core",
    "hub.documents": "core", "connectors.contracts": "schemas", "hub.dci.envelope": "connectors",
    "hub.unify": "hub.rules", "hub.standards": "hub.rules", "hub.policy": "hub.rules",
    "hub.intake": "hub.stages", "hub.pipeline": "hub.stages", "hub.records": "hub.stages", "hub.reverify": "hub.stages",
    "hub.notify": "hub.stages", "hub.maintenance": "hub.stages", "hub.health": "hub.stages",
    "hub.assistance": "hub.services", "hub.audit": "hub.services", "hub.clients": "hub.services",
    "hub.lookup": "hub.services", "hub.export": "hub.services", "hub.rotation": "hub.services",
    "hub.secrets_check": "hub.services", "hub.bootstrap": "hub.services", "hub.scan": "hub.services",
    "hub.dci.client": "hub.federation", "hub.dci.config": "hub.federation", "hub.dci.routes": "hub.web",
    "hub.api": "hub.web", "hub.console": "hub.web", "hub.console_audit": "hub.web", "hub.console_case": "hub.web",
    "hub.ratelimit": "hub.web", "hub.airflow_client": "hub.airflow", "hub.airflow_env": "hub.airflow",
    "hub.airflow_tasks": "hub.airflow", "hub.distributed": "hub.airflow", "hub.alerts": "hub.airflow",
}


def floor(module: str) -> int:
    for old, new in MOVED.items():
        if module == old or module.startswith(old + "."):
            module = new
            break
    best, rank = -1, -1
    for i, names in enumerate(FLOORS):
        for name in names.split():
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, rank = len(name), i
    return rank


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "versions" in path.parts:  # migrations: each a script of its own
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _target(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(root: Path):
    """Yield (module, imported module, inside a function?, private names) for every project import."""
    known = modules(root)
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inner = {id(n) for f in functions for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [(f"{node.module}.{a.name}", [a.name]) for a in node.names]
            else:
                continue
            for name, private in targets:
                if name.split(".")[0] not in PACKAGES:
                    continue
                target = _target(name, known)
                if target and target != module:
                    yield module, target, id(node) in inner, [p for p in private if p.startswith("_")
                                                              and name not in known]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in list(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]; counter[0] += 1; stack.append(start); on.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]; counter[0] += 1; stack.append(child); on.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop(); on.discard(member); group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        out.append(sorted(group))
    return out


def report(root: Path) -> dict:
    every, top, inside, upward, private = defaultdict(set), defaultdict(set), defaultdict(int), set(), []
    into_hub = set()
    for module, target, in_function, names in imports(root):
        every[module].add(target)
        if in_function:
            inside[module] += 1
        else:
            top[module].add(target)
        if floor(target) > floor(module) and not module.startswith(("dags", "bench")):
            upward.add((module, target))
        if target.split(".")[0] == "hub" and module.split(".")[0] not in ("hub", "dags", "bench"):
            into_hub.add((module, target))
        private += [f"{module} <- {target}.{n}" for n in names]
    known = modules(root)
    said = sum(1 for m in inside if "deliberate" in known[m].read_text(encoding="utf-8"))
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in known.items()}
    largest = max(sizes, key=sizes.get)
    longest, where = 0, ""
    for m, p in known.items():
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > longest:
                longest, where = n.end_lineno - n.lineno + 1, f"{m}.{n.name}"
    return {"modules": len(known), "project_imports": sum(len(v) for v in every.values()),
            "imports_inside_functions": sum(inside.values()), "modules_with_inner_imports": len(inside),
            "of_which_say_why": said, "upward_imports": sorted(upward),
            "lower_folders_importing_hub": sorted(into_hub),
            "circles_all_imports": circles(every), "circles_module_level": circles(top),
            "private_names_imported": sorted(set(private)), "largest_file": f"{known[largest]} ({sizes[largest]} lines)",
            "longest_function": f"{where} ({longest} lines)"}


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else Path(__file__).resolve().parents[1])
    figures = report(root)
    for key, value in figures.items():
        if isinstance(value, list):
            print(f"{key}: {len(value)}")
            for item in value:
                print(f"    {' -> '.join(item) if isinstance(item, tuple) else item}")
        else:
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
