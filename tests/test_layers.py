"""The floors of the layout (DESIGN.md, "Layout"): every import runs downward, as the import-linter contracts of
pyproject.toml ([tool.importlinter]) say. The repository keeps every contract, and an import that climbs a floor
(one planted in a copy of the packages) breaks a contract that names it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
UPWARD = ("core/ids.py", "core.ids", "hub.stages.pipeline")  # the file planted in, its module, what it imports


def _config(pyproject: Path) -> dict:
    """The [tool.importlinter] table of ``pyproject``; the test fails, saying what is missing, without one."""
    table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("importlinter")
    if not table:
        pytest.fail(f"{pyproject} has no [tool.importlinter] table: the floors of DESIGN.md (every import runs "
                    "downward) are checked by nothing; add the import-linter contracts there", pytrace=False)
    if not table.get("contracts"):
        pytest.fail(f"[tool.importlinter] of {pyproject} has no contracts ([[tool.importlinter.contracts]])",
                    pytrace=False)
    return table


def _root_packages(config: dict) -> list[str]:
    roots = config.get("root_packages") or [config["root_package"]]
    return list(roots)


def _lint_imports(cwd: Path, pyproject: Path) -> subprocess.CompletedProcess:
    """lint-imports with the contracts of ``pyproject``, the packages imported from ``cwd`` first, no cache written."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(pyproject), "--no-cache", "--no-logo"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _verdicts(output: str) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, from lint-imports' summary lines."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^(.+) (KEPT|BROKEN)$", output, re.M)}


def _reports(output: str, names) -> dict[str, str]:
    """Contract name -> its report under "Broken contracts" (the text from its heading to the next one's)."""
    _, _, section = output.partition("Broken contracts")
    heads = sorted((m.start(), name) for name in names
                   for m in re.finditer(rf"^{re.escape(name)}\n-+\n", section, re.M))
    return {name: section[start:(heads[i + 1][0] if i + 1 < len(heads) else len(section))]
            for i, (start, name) in enumerate(heads)}


def test_every_import_runs_downward():
    config = _config(PYPROJECT)
    names = {c["name"] for c in config["contracts"]}
    out = _lint_imports(REPO, PYPROJECT)
    text = out.stdout + out.stderr
    verdicts = _verdicts(out.stdout)
    assert out.returncode == 0, f"lint-imports found imports that climb a floor:\n{text[-6000:]}"
    assert set(verdicts) == names and set(verdicts.values()) == {"KEPT"}, text[-6000:]


def test_an_import_that_climbs_a_floor_breaks_a_contract_that_names_it(tmp_path):
    config = _config(PYPROJECT)
    names = {c["name"] for c in config["contracts"]}
    for package in _root_packages(config):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(PYPROJECT, tmp_path / "pyproject.toml")
    planted, importer, imported = UPWARD
    with (tmp_path / planted).open("a", encoding="utf-8") as f:
        f.write(f"\nimport {imported}  # noqa: E402,F401  (planted by tests/test_layers.py: a floor climbed)\n")

    out = _lint_imports(tmp_path, tmp_path / "pyproject.toml")
    text = out.stdout + out.stderr
    assert out.returncode != 0, f"lint-imports kept every contract with {importer} importing {imported}:\n{text}"
    broken = {name for name, verdict in _verdicts(out.stdout).items() if verdict == "BROKEN"}
    assert broken and broken <= names, text[-6000:]
    naming = [name for name, report in _reports(out.stdout, broken).items() if f"{importer} -> {imported}" in report]
    assert naming, f"no broken contract names {importer} -> {imported}:\n{text[-6000:]}"
