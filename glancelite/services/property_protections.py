"""Property protections: who may create, read, update and delete which custom image properties.

Glance's ``property_protection_file`` (glance/common/property_utils.py and
glance/api/property_protections.py), decided here and nowhere else. The rules
arrive parsed and validated in Settings; this module compiles them once and
answers per request:

* A property's rule is the first section, in file order, whose regular
  expression ``re.search``-matches its name. No match: every operation is refused.
* roles format: the caller needs one of the listed roles (or service roles);
  '@' allows anyone, '!' no one, an empty operation no one.
* policies format: the operation names one rule of the policy (as Glance's
  ``"<section>:<op>": "rule:<name>"``); '@' and '!' mean the same as above.
* A file without sections protects nothing (Glance's ``if not self.rules``).

Only custom properties are protected; base attributes never reach this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.settings import PropertyRule, Settings

OPERATIONS = ("create", "read", "update", "delete")
ANYONE = "@"
NO_ONE = "!"


class PropertyProtections:
    """Built once from Settings and the Policy; ``None`` stands for "protections off" in callers."""

    def __init__(self, rules: Iterable[PropertyRule], rule_format: str, policy):
        self._rules = tuple((re.compile(rule.pattern), rule) for rule in rules)
        self._policies = rule_format == "policies"
        self._policy = policy

    @classmethod
    def build(cls, settings: Settings, policy) -> PropertyProtections | None:
        if not settings.property_rules:  # unset, or a file without sections
            return None
        return cls(settings.property_rules, settings.property_protection_rule_format, policy)

    # ------------------------------------------------------------ decisions

    def rule_for(self, name: str) -> PropertyRule | None:
        for pattern, rule in self._rules:
            if pattern.search(name):
                return rule
        return None

    def allowed(self, ctx: RequestContext, name: str, operation: str) -> bool:
        rule = self.rule_for(name)
        if rule is None or operation not in OPERATIONS:
            return False
        permitted = getattr(rule, operation)
        if not permitted or NO_ONE in permitted:
            return False
        if ANYONE in permitted:
            return True
        if self._policies:
            # Glance registers "<section>:<op>" as "rule:<name>": checking <name> is the same rule.
            return self._policy.check(ctx, permitted[0], {"project_id": ctx.project_id})
        roles = {*ctx.roles, *ctx.service_roles}
        return any(role in roles for role in permitted)

    def _decider(self, ctx: RequestContext, operation: str):
        """``allowed`` for one request and operation, each property name decided once."""
        memo: dict[str, bool] = {}

        def decide(name: str) -> bool:
            if name not in memo:
                memo[name] = self.allowed(ctx, name, operation)
            return memo[name]

        return decide

    def enforce(self, ctx: RequestContext, name: str, operation: str) -> None:
        """Glance's ReservedProperty: 403 "Attribute '<name>' is reserved."."""
        if not self.allowed(ctx, name, operation):
            raise errors.Forbidden(f"Attribute '{name}' is reserved.")

    # ------------------------------------------------------------ uses

    def check_create(self, ctx: RequestContext, names: Iterable[str]) -> None:
        for name in names:
            self.enforce(ctx, name, "create")

    def readable(self, ctx: RequestContext, properties: Mapping[str, Any]) -> dict[str, Any]:
        decide = self._decider(ctx, "read")
        return {k: v for k, v in properties.items() if decide(k)}

    def image_as_seen(self, ctx: RequestContext, image: model.Image) -> model.Image:
        """The image with the properties the caller may not read left out."""
        return self.images_as_seen(ctx, [image])[0]

    def images_as_seen(self, ctx: RequestContext, images: list[model.Image]) -> list[model.Image]:
        decide = self._decider(ctx, "read")
        out = []
        for image in images:
            visible = {k: v for k, v in image.properties.items() if decide(k)}
            out.append(image if len(visible) == len(image.properties) else image.replace(properties=visible))
        return out
