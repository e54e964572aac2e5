"""What is wrong with a rules file, said the way an operator can act on it: file, line, rule, key path, reason.

Owns RuleProblem, RulesFileError and the translation of pydantic's errors into such problems. Pure.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from models import rules as schema
from streams.errors import ConfigError

__all__ = ["KNOWN_KEYS", "Loc", "RuleProblem", "RulesFileError", "did_you_mean", "explain", "format_path"]

Loc = tuple[str | int, ...]
"""A path into the file's data: ("rules", 0, "triggers", 1, "above")."""

_UNIONS = {"triggers", "conditions", "actions"}  # lists of tagged items: pydantic puts the tag into the loc


def _known_keys() -> list[str]:
    models = [value for value in vars(schema).values() if isinstance(value, type) and issubclass(value, BaseModel)]
    names = {info.alias or name for model in models for name, info in model.model_fields.items()}
    return sorted(names | {"devices", "rules"})


#: Every key the schema knows, for "did you mean" hints.
KNOWN_KEYS = _known_keys()


def did_you_mean(word: str, choices: Iterable[str] = KNOWN_KEYS) -> str:
    """`` (did you mean 'above'?)`` when a choice is close to ``word``, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong. ``rule`` is the rule's id when it has one (``path`` is then relative to the rule).

    ``line`` is 1-based; None when the file could not be read at all.
    """

    source: str
    line: int | None
    rule: str | None
    path: str
    message: str

    def __str__(self) -> str:
        parts = [self.source if self.line is None else f"{self.source}:{self.line}"]
        if self.rule is not None:
            parts.append(f"rule {self.rule!r}")
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


class RulesFileError(ConfigError):
    """A rules file is invalid; ``problems`` lists everything wrong, by line; the message has one line each.
    ``unchecked``: what could not be checked yet (no problem, said beside them)."""

    def __init__(self, problems: Iterable[RuleProblem], unchecked: Iterable[RuleProblem] = ()) -> None:
        self.problems = sorted(problems, key=lambda problem: problem.line or 0)
        self.unchecked = sorted(unchecked, key=lambda problem: problem.line or 0)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def format_path(loc: Loc) -> str:
    """``triggers[0].above`` from ("triggers", 0, "above")."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def explain(exc: ValidationError) -> Iterator[tuple[Loc, str]]:
    """pydantic's errors as (loc without union tags, readable message)."""
    for error in exc.errors(include_url=False):
        loc = _without_tags(error["loc"])
        yield _explain_one(error["type"], loc, error)


def _without_tags(loc: tuple[str | int, ...]) -> Loc:
    """Drop what pydantic adds to a loc: the tag after an index into a tagged list, and "[key]" of dict keys."""
    return tuple(
        part
        for i, part in enumerate(loc)
        if part != "[key]"
        and not (i >= 2 and isinstance(part, str) and isinstance(loc[i - 1], int) and loc[i - 2] in _UNIONS)
    )


def _explain_one(kind: str, loc: Loc, error: Any) -> tuple[Loc, str]:
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return loc, "unknown key" + did_you_mean(str(loc[-1]))
    if kind == "missing":
        return loc, "required"
    if kind == "union_tag_invalid":
        key = ctx["discriminator"].strip("'")
        return (*loc, key), f"unknown {key} kind {ctx['tag']!r} (one of: {ctx['expected_tags'].replace(chr(39), '')})"
    if kind == "union_tag_not_found":
        key = ctx["discriminator"].strip("'")
        return loc, f"needs a '{key}:' key saying which kind of {key} it is"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return loc, f"must be a mapping (key: value), not {_shown(error['input'])}"
    if kind == "too_short":
        return loc, f"needs at least {ctx['min_length']} item{'s' if ctx['min_length'] != 1 else ''}"
    if kind == "string_pattern_mismatch":
        return loc, f"{_shown(error['input'])} has characters that are not allowed here (pattern {ctx['pattern']})"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "string_type" and isinstance(error.get("input"), bool):
        message += " (YAML reads on/off/yes/no/true/false as booleans: quote the text)"
    elif kind != "value_error" and not isinstance(error.get("input"), dict | list):
        message += f" (got {_shown(error['input'])})"
    return loc, message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
