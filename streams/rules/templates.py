"""Templates in action values: ``{{ trigger.value }}``, rendered in Jinja2's immutable sandbox.

Owns the template environment, the load-time check and rendering. A string that is exactly one ``{{ expression }}``
keeps the expression's native type (``value: "{{ trigger.value }}"`` sends an int, ``"{{ not trigger.value }}"`` a
bool) as JSON holds it (``"{{ trigger.time }}"`` gives ISO text); any other string containing ``{{`` or ``{%``
renders to text. Undefined names and attributes are errors, never silently empty. Pure: imports no I/O library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import msgspec
from jinja2 import StrictUndefined, TemplateError, Undefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from streams.rules.state import TriggerContext

__all__ = ["TEMPLATE_NAMES", "TemplateRenderError", "check_template", "is_template", "render"]

#: The names a template may use.
TEMPLATE_NAMES = frozenset({"trigger"})

_TRIGGER_FIELDS = frozenset(TriggerContext.__struct_fields__)
_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_WHOLE_EXPRESSION = re.compile(r"\s*\{\{(?P<expression>.*)\}\}\s*", re.DOTALL)


class TemplateRenderError(Exception):
    """A template failed at fire time (an undefined attribute, a type error in an expression, a sandbox refusal)."""


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def check_template(text: str) -> str | None:
    """Why ``text`` cannot be rendered (syntax, or a name other than ``trigger``), or None if it is fine."""
    try:
        tree = _env.parse(text)
        names = meta.find_undeclared_variables(tree)  # compiles it: an unknown filter or test fails here
    except TemplateError as exc:
        return f"bad template: {exc.message or exc}"
    unknown = sorted(names - TEMPLATE_NAMES)
    if unknown:
        return f"bad template: unknown name {unknown[0]!r} (templates can use: {', '.join(sorted(TEMPLATE_NAMES))})"
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "trigger" and node.attr not in _TRIGGER_FIELDS:
            return f"bad template: trigger has no {node.attr!r} (it has: {', '.join(sorted(_TRIGGER_FIELDS))})"
    return None


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """``value`` with every template string in it (nested in lists and mappings too) rendered against ``context``.

    Raises:
        TemplateRenderError: a template failed; the message says which and why.
    """
    if isinstance(value, str):
        if not is_template(value):
            return value
        return _guarded(value, lambda: _compiled(value))(context)
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    return value


@lru_cache(maxsize=1024)
def _compiled(text: str) -> Callable[[Mapping[str, Any]], Any]:
    whole = _WHOLE_EXPRESSION.fullmatch(text)
    if whole and "{{" not in whole["expression"] and "}}" not in whole["expression"]:
        return _expression(text, whole["expression"])
    return _text_template(text)


def _expression(text: str, source: str) -> Callable[[Mapping[str, Any]], Any]:
    expression = _env.compile_expression(source, undefined_to_none=False)

    def evaluate(context: Mapping[str, Any]) -> Any:
        result = _guarded(text, lambda: expression(**context))
        if isinstance(result, Undefined):
            _guarded(text, lambda: str(result))  # StrictUndefined raises its own message on use
        try:  # what the outbox stores as JSON: a time as ISO text; a generator (`|map`) or an object cannot be
            return msgspec.to_builtins(result)
        except TypeError:
            raise TemplateRenderError(
                f"template {text!r}: gives a {type(result).__name__}, not a JSON value (add |list or |string)"
            ) from None

    return evaluate


def _text_template(text: str) -> Callable[[Mapping[str, Any]], Any]:
    template = _env.from_string(text)
    return lambda context: _guarded(text, lambda: template.render(**context))


def _guarded(text: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # a user's expression can raise anything (TypeError, ZeroDivisionError, SecurityError)
        raise TemplateRenderError(f"template {text!r}: {exc}") from exc
