"""Checks of a rule against what the archive knows of the fleet: are its codes the data points of the products it
reads and commands, and can its thresholds with a unit ever be compared?

Owns what ``rules check`` reports when it reaches the archive: the problems, a code a rule commands (or reads under a
``not:``) that no data point of a product with a specification has (a command's: or one that takes no commands), a
unit that is not the data point's (or a data point that is no number); and the notes, a code read elsewhere that the
specification does not list, and the thresholds it cannot check yet, of a device or
product whose specification the archive does not have (``sync`` fetches it): the worker runs such a rule, as the
reactor warns at run time, so they are notes, not problems. The worker does not run these checks: specifications
may arrive after it starts. Reported as (loc within the rule, message), like checks.py. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator

from models.rules import (
    NumericStateCondition,
    NumericStateTrigger,
    Rule,
    SendCommandAction,
    StateCondition,
    StateTrigger,
    UserEventTrigger,
)
from streams.fleet.catalog import Catalog
from streams.rules.checks import device_conditions, numeric_ranges
from streams.rules.operators import unit_mismatch
from streams.rules.problems import Loc

__all__ = ["code_problems", "codes_unlisted", "unit_problems", "units_unchecked"]

_SYNC = "run `tuya-archiver sync`"

Subject = tuple[str | None, str | None]
"""(device, product) a range reads: one device, every device of a product, or (None, None) for any device."""


def code_problems(rule: Rule, catalog: Catalog) -> Iterator[tuple[Loc, str]]:
    """Codes ``rule`` commands, or reads under a ``not:``, that the products concerned have no data point of (a
    command: or none that takes commands), where the archive has their specification: Tuya refuses such a command,
    and a ``not:`` of a value never reported always holds."""
    return (finding for finding, strict in _code_findings(rule, catalog) if strict)


def codes_unlisted(rule: Rule, catalog: Catalog) -> Iterator[tuple[Loc, str]]:
    """Other codes ``rule`` reads that the specifications of the products it reads do not list: a typo, or a data
    point a device reports outside its specification (the worker runs the rule), so a note, not a problem."""
    return (finding for finding, strict in _code_findings(rule, catalog) if not strict)


def _code_findings(rule: Rule, catalog: Catalog) -> Iterator[tuple[tuple[Loc, str], bool]]:
    """((loc, message), strict) for each code of ``rule`` the specifications in ``catalog`` speak against; strict: a
    commanded code, or one read under a ``not:``. A threshold with a unit is left to :func:`unit_problems`."""
    specified = catalog.products()
    found: dict[tuple[Loc, str], bool] = {}  # ordered, without the repeats of several triggers' subjects
    for loc, code, subjects, commanded, negated in _codes(rule):
        for subject in subjects:
            products, _unknown = _products(subject, code, catalog)
            for product in (product for product in products if product in specified):
                point = catalog.point("", code, product)
                if point is None:
                    message = f"product {product} has no data point {code!r} in its specification"
                    found[(loc, message)] = commanded or negated
                elif commanded and not point.commandable:
                    found[(loc, f"{code} of product {product} takes no commands (it is reported only)")] = True
    return iter(found.items())


def _codes(rule: Rule) -> Iterator[tuple[Loc, str, list[Subject], bool, bool]]:
    """(loc of the code, code, the subjects whose devices have it, commanded, read under a ``not:``) of each code."""
    triggered = [(t.device, t.product) for t in rule.triggers if not isinstance(t, UserEventTrigger)]
    for index, trigger in enumerate(rule.triggers):
        if isinstance(trigger, StateTrigger) or (isinstance(trigger, NumericStateTrigger) and not trigger.has_unit):
            yield ("triggers", index, "code"), trigger.code, [(trigger.device, trigger.product)], False, False
    for loc, condition, negated in device_conditions(rule.conditions, ("conditions",)):
        if isinstance(condition, StateCondition) or not condition.has_unit:
            subjects = [(condition.device, None)] if condition.device is not None else triggered
            yield (*loc, "code"), condition.code, subjects, False, negated
    for index, action in enumerate(rule.actions):
        if isinstance(action, SendCommandAction):
            subjects = [(action.device, None)] if action.device is not None else triggered
            for position, command in enumerate(action.commands):
                yield ("actions", index, "commands", position, "code"), command.code, subjects, True, False


def unit_problems(rule: Rule, catalog: Catalog) -> Iterator[tuple[Loc, str]]:
    """Thresholds with a unit of ``rule`` that the data points in ``catalog`` cannot be compared with.

    A trigger is checked on the devices it selects; a condition on its ``device``, or without one on the devices
    its rule's triggers select (the triggering device). "Any device" means every product with a data point of
    the code.
    """
    return (finding for finding, checked in _findings(rule, catalog) if checked)


def units_unchecked(rule: Rule, catalog: Catalog) -> Iterator[tuple[Loc, str]]:
    """Thresholds with a unit of ``rule`` that ``catalog`` does not know enough to check yet, and why."""
    return (finding for finding, checked in _findings(rule, catalog) if not checked)


def _findings(rule: Rule, catalog: Catalog) -> Iterator[tuple[tuple[Loc, str], bool]]:
    """((loc, message), checked): a problem, or (checked False) a threshold that cannot be checked yet."""
    for loc, bounds in numeric_ranges(rule):
        if not bounds.has_unit:
            continue
        found: dict[tuple[Loc, str], bool] = {}  # ordered, without the repeats of several triggers' subjects
        for subject in _subjects(rule, bounds):
            for key, message, checked in _subject_problems(bounds, subject, catalog):
                found[((*loc, key), message)] = checked
        yield from found.items()


def _subjects(rule: Rule, bounds: NumericStateTrigger | NumericStateCondition) -> list[Subject]:
    if isinstance(bounds, NumericStateTrigger):
        return [(bounds.device, bounds.product)]
    if bounds.device is not None:
        return [(bounds.device, None)]
    return [(t.device, t.product) for t in rule.triggers if not isinstance(t, UserEventTrigger)]


def _subject_problems(
    bounds: NumericStateTrigger | NumericStateCondition, subject: Subject, catalog: Catalog
) -> Iterator[tuple[str, str, bool]]:
    """(the key of the threshold, message, checked) for each problem of ``bounds`` on the devices of ``subject``;
    ``checked`` False: the archive cannot say yet."""
    units = [
        (key, threshold.unit)
        for key in ("above", "below")
        if (threshold := getattr(bounds, key)) is not None and threshold.unit is not None
    ]
    products, unknown = _products(subject, bounds.code, catalog)
    if unknown is not None:
        yield units[0][0], f"cannot check the unit: {unknown} ({_SYNC})", False
    specified = catalog.products()
    for product in products:
        if product not in specified:
            why = f"cannot check the unit: the archive has no specification of product {product} yet ({_SYNC})"
            yield units[0][0], why, False
            continue
        point = catalog.point("", bounds.code, product)  # given the product, the Catalog needs no device
        if point is None:
            yield units[0][0], f"product {product} has no data point {bounds.code!r}", True
            continue
        for key, unit in units:
            why = unit_mismatch(unit, point)
            if why is not None:
                yield key, f"{bounds.code} of product {product}: {why}", True


def _products(subject: Subject, code: str, catalog: Catalog) -> tuple[list[str], str | None]:
    """The products whose data point ``code`` the subject's devices report, or why the archive cannot say yet."""
    device, product = subject
    if device is not None:
        product = catalog.product_of(device)
        if product is None:
            return [], f"the archive does not know device {device}'s product yet"
    if product is not None:
        return [product], None
    # Any device: every product whose specification has the data point.
    products = sorted(known for known in catalog.products() if catalog.point("", code, known) is not None)
    return products, None if products else f"no product in the archive has a data point {code!r} yet"
