"""Load a rules file: YAML with line numbers in, a validated RuleSet out, or every problem at once.

Owns the file format:

    devices:                      # optional: alias → Tuya device id, usable wherever a rule names a device
      greenhouse_fan: bf1e8a0cd2e4a1b2c3x9kq
    rules:                        # the rules (models/rules.py)
      - id: ...

or a bare list of rules (then without aliases). An empty file, or one of comments only, has no rules.
Every problem names the file, the line, the rule id and the key path (problems.py). Given the archive's data-point
catalog (``rules check`` does that), it also checks that thresholds with a unit fit their data points
(fleet_checks.py); the worker loads without one, as specifications may come later. Reads the one file it is given;
imports no network or database library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from models.rules import DeviceAliases, Rule, RuleSet, looks_like_device_id
from streams.fleet.catalog import Catalog
from streams.rules.checks import missing_targets, range_problems, template_problems
from streams.rules.fleet_checks import code_problems, codes_unlisted, unit_problems, units_unchecked
from streams.rules.problems import Loc, RuleProblem, RulesFileError, did_you_mean, explain, format_path

__all__ = ["RuleProblem", "RulesFileError", "load_rules", "parse_rules"]

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_TOP_LEVEL_KEYS = ("devices", "rules")
_aliases_adapter: TypeAdapter[dict[str, str]] = TypeAdapter(DeviceAliases)


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's base-60 and octal numbers: ``after: 22:30`` stays the text "22:30" (not
    1350) and ``for: 1:30`` a duration, as YAML 1.2 reads them; and without its timestamps: ``2027-01-01`` in a
    webhook's ``json`` is the text it will be sent as, not a date that JSON cannot hold."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (_INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_rules(path: str | Path, *, dry_run: bool = False, catalog: Catalog | None = None) -> RuleSet:
    """The rules of the file at ``path``; ``dry_run`` is the global RULES_DRY_RUN; with a ``catalog``, the units of
    thresholds are checked against its data points too.

    Raises:
        RulesFileError: the file cannot be read or is invalid; ``problems`` lists every problem.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RulesFileError([RuleProblem(source, None, None, "", f"cannot read the rules file: {reason}")]) from None
    return parse_rules(text, source=source, dry_run=dry_run, catalog=catalog)


def parse_rules(
    text: str, *, source: str = "<rules>", dry_run: bool = False, catalog: Catalog | None = None
) -> RuleSet:
    """The rules in YAML ``text``; ``source`` names it in problems; ``catalog`` as for ``load_rules``.

    Raises:
        RulesFileError: the text is invalid; ``problems`` lists every problem.
    """
    root, data, duplicates = _read_yaml(text, source)
    if root is None:
        return RuleSet(source=source, dry_run=dry_run)
    report = _Report(source, root)
    devices, raw_rules = _sections(data, report)
    report.raw_rules = raw_rules
    for loc, message in duplicates:
        report.add(loc, message)
    aliases = _aliases(devices, report)
    rules = [
        rule for index, raw in enumerate(raw_rules) if (rule := _rule(index, raw, aliases, report, catalog)) is not None
    ]
    _duplicate_ids(raw_rules, report)
    if report.problems:
        raise RulesFileError(report.problems, report.unchecked)
    unchecked = tuple(str(problem) for problem in report.unchecked)
    return RuleSet(rules=tuple(rules), devices=aliases, source=source, dry_run=dry_run, unchecked=unchecked)


def _read_yaml(text: str, source: str) -> tuple[Node | None, Any, list[tuple[Loc, str]]]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        duplicates = list(_duplicate_keys(root, ())) if root is not None else []
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "unreadable"
        raise RulesFileError([RuleProblem(source, line, None, "", f"not valid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise RulesFileError([RuleProblem(source, None, None, "", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return root, data, duplicates


def _duplicate_keys(node: Node, loc: Loc) -> Iterable[tuple[Loc, str]]:
    """Keys given twice in one mapping: YAML loaders keep the last silently, which hides a typo."""
    if isinstance(node, MappingNode):
        first_lines: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value != "<<":
                if key.value in first_lines:
                    yield (*loc, key.value), f"duplicate key (first on line {first_lines[key.value]})"
                first_lines.setdefault(key.value, key.start_mark.line + 1)
                yield from _duplicate_keys(value, (*loc, key.value))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index))


class _Report:
    """Collects problems, turning a loc into the line it comes from and the id of the rule it is in."""

    def __init__(self, source: str, root: Node) -> None:
        self.problems: list[RuleProblem] = []
        self.unchecked: list[RuleProblem] = []
        self.raw_rules: list[Any] = []
        self._source = source
        self._root = root

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(self._problem(loc, message))

    def note(self, loc: Loc, message: str) -> None:
        """Something the loader could not check yet: no problem, but said."""
        self.unchecked.append(self._problem(loc, message))

    def _problem(self, loc: Loc, message: str) -> RuleProblem:
        rule_id = self._rule_id(loc)
        path = format_path(loc[2:] if rule_id is not None else loc)
        return RuleProblem(self._source, self.line(loc), rule_id, path, message)

    def line(self, loc: Loc) -> int:
        """The line of the deepest node of ``loc`` present in the file (a key's line for a key)."""
        if isinstance(self._root, SequenceNode) and loc[:1] == ("rules",):
            loc = loc[1:]  # a bare list of rules is the file's top level
        node, line = self._root, self._root.start_mark.line
        for part in loc:
            found = _child(node, part)
            if found is None:
                break
            line, node = found
        return line + 1

    def _rule_id(self, loc: Loc) -> str | None:
        if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int) or loc[1] >= len(self.raw_rules):
            return None
        raw = self.raw_rules[loc[1]]
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        return rule_id if isinstance(rule_id, str) and rule_id else None


def _child(node: Node, part: str | int) -> tuple[int, Node] | None:
    if isinstance(node, MappingNode):
        matches = [(key, value) for key, value in node.value if isinstance(key, ScalarNode) and key.value == str(part)]
        if matches:
            key, value = matches[-1]  # the loaders keep the last of duplicate keys
            return key.start_mark.line, value
    elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line, item
    return None


def _sections(data: Any, report: _Report) -> tuple[Any, list[Any]]:
    if isinstance(data, list):
        return {}, data
    if not isinstance(data, dict):
        report.add((), "must be a mapping with 'devices:' and 'rules:', or a list of rules")
        return {}, []
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            report.add((str(key),), "unknown key (the file has 'devices:' and 'rules:')" + did_you_mean(str(key)))
    rules = data.get("rules")
    if rules is not None and not isinstance(rules, list):
        report.add(("rules",), "must be a list of rules (each item starting with '- id:')")
        rules = None
    return data.get("devices"), rules or []


def _aliases(devices: Any, report: _Report) -> dict[str, str]:
    if devices is None:
        return {}
    try:
        return _aliases_adapter.validate_python(devices)
    except ValidationError as exc:
        for loc, message in explain(exc):
            report.add(("devices", *loc), message)
    if not isinstance(devices, Mapping):
        return {}
    return {
        alias: device_id
        for alias, device_id in devices.items()
        if isinstance(alias, str) and isinstance(device_id, str) and looks_like_device_id(device_id)
    }


def _rule(index: int, raw: Any, aliases: Mapping[str, str], report: _Report, catalog: Catalog | None) -> Rule | None:
    for loc, message in template_problems(raw):
        report.add(("rules", index, *loc), message)
    try:
        rule = Rule.model_validate(raw, context={"devices": aliases})
    except ValidationError as exc:
        for loc, message in explain(exc):
            report.add(("rules", index, *loc), message)
        return None
    problems = [*range_problems(rule), *missing_targets(rule)]
    if catalog is not None:
        problems += [*code_problems(rule, catalog), *unit_problems(rule, catalog)]
        for loc, message in [*codes_unlisted(rule, catalog), *units_unchecked(rule, catalog)]:
            report.note(("rules", index, *loc), message)
    for loc, message in problems:
        report.add(("rules", index, *loc), message)
    return rule


def _duplicate_ids(raw_rules: list[Any], report: _Report) -> None:
    first: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(rule_id, str):
            continue
        if rule_id in first:
            report.add(("rules", index, "id"), f"duplicate rule id (first on line {first[rule_id]})")
        first.setdefault(rule_id, report.line(("rules", index, "id")))
