"""Rules: the YAML rule language's loader and the pure, edge-triggered engine.

What the rest of the worker may import: load the file once (``load_rules``), then call ``evaluate`` per stored batch
and ``tick`` every few seconds, persisting ``Evaluation.state_changes`` and the fired actions in the batch's
transaction. Both take ``points`` (a ``PointLookup`` such as ``Catalog.point``) for thresholds with a unit, and
report the values such thresholds could not compare in ``Evaluation.unmeasured``. Nothing here does I/O beyond
reading the rules file.
"""

from models.rules import RuleSet
from streams.rules.effects import FiredAction, PostWebhook, SendCommands, TemplateFailed, WriteLog
from streams.rules.engine import Evaluation, Unmeasured, evaluate, tick
from streams.rules.loader import load_rules, parse_rules
from streams.rules.operators import PointLookup, no_points
from streams.rules.problems import RuleProblem, RulesFileError
from streams.rules.state import (
    DeviceSeen,
    LatestStamps,
    LatestValues,
    OnlineEvent,
    RuleState,
    RuleStateKey,
    RuleStates,
    TriggerContext,
    TriggerState,
    merge_states,
    whole_second,
)

__all__ = [
    "DeviceSeen",
    "Evaluation",
    "FiredAction",
    "LatestStamps",
    "LatestValues",
    "OnlineEvent",
    "PointLookup",
    "PostWebhook",
    "RuleProblem",
    "RuleSet",
    "RuleState",
    "RuleStateKey",
    "RuleStates",
    "RulesFileError",
    "SendCommands",
    "TemplateFailed",
    "TriggerContext",
    "TriggerState",
    "Unmeasured",
    "WriteLog",
    "evaluate",
    "load_rules",
    "merge_states",
    "no_points",
    "parse_rules",
    "tick",
    "whole_second",
]
