"""The access policy speaks the vocabulary (purposes, programmes) and is the file the settings name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hub.rules.policy import DEFAULT_POLICY, PolicyError, parse, policy
from schemas.vocabulary import PROGRAMMES, PURPOSES

RULES = Path(__file__).resolve().parents[3] / "hub" / "rules"
RULE = """[[rule]]
name = "one"
departments = ["MZ-*"]
purposes = {purposes}
{grant}
"""


def test_the_policy_in_force_names_only_purposes_and_programmes_of_the_vocabulary():
    rules = parse(DEFAULT_POLICY.read_text(encoding="utf-8"))
    assert {p for r in rules for p in r.purposes} <= set(PURPOSES)
    assert {p for r in rules for p in r.answers} <= set(PROGRAMMES)


@pytest.mark.parametrize("purposes, grant, problem", [
    ('["lottery"]', 'fields = ["members"]', "one: purposes: a non-empty list of dibao, low_income, tekun"),
    ('["dibao"]', 'answers = ["pension"]',
     "one: answers: programmes among dibao, low_income, tekun, expenditure_poverty"),
])
def test_a_purpose_or_programme_outside_the_vocabulary_is_an_error_naming_the_rule(purposes, grant, problem):
    with pytest.raises(PolicyError, match=f"^{problem}"):
        parse(RULE.format(purposes=purposes, grant=grant))


def test_hub_access_policy_names_the_policy_in_force(tmp_path, monkeypatch):
    path = tmp_path / "policy.toml"
    path.write_text(RULE.format(purposes='["medical"]', grant='answers = ["dibao"]'), encoding="utf-8")
    monkeypatch.setenv("HUB_ACCESS_POLICY", str(path))
    assert [(r.name, r.purposes, r.answers) for r in policy()] == [("one", ("medical",), ("dibao",))]
    monkeypatch.delenv("HUB_ACCESS_POLICY")
    assert policy() == parse(DEFAULT_POLICY.read_text(encoding="utf-8"))


def test_the_rules_import_nothing_of_the_layers_above_them():
    above = ("hub.stages", "hub.services", "hub.dci", "hub.web", "hub.federation", "hub.cli", "hub.demo", "dags",
             "bench")
    for module in RULES.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.startswith(above)], (module.name, names)
