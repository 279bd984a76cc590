"""Authorization: oslo.policy with Glance's current default rules.

The defaults below are Glance's (reference section 11), registered in code;
an operator's policy file ([oslo_policy] policy_file) overrides any of them
by name. The caller passes a target dict; ``image_target`` builds the one
Glance uses for image rules (``project_id`` is the image owner, ``member_id``
the caller's project when it is a member of the image).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from oslo_policy import policy as oslo_policy

from glancelite import errors
from glancelite.context import RequestContext

LOG = logging.getLogger(__name__)

ADMIN = "rule:context_is_admin"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
IMAGE_MEMBER = "project_id:%(member_id)s"
VISIBLE_TO_ALL = "'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s"
ADMIN_OR_PROJECT_MEMBER = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"{ADMIN} or ({PROJECT_READER})"
ADMIN_OR_READER_GET_IMAGE = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER} or {VISIBLE_TO_ALL}))"
)
ADMIN_OR_MEMBER_DOWNLOAD = (
    f"{ADMIN} or (role:member and (project_id:%(project_id)s or {IMAGE_MEMBER} or {VISIBLE_TO_ALL}))"
)
ADMIN_OR_MEMBER_CREATE = f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SHARED_MEMBER = f"{ADMIN} or (role:member and {IMAGE_MEMBER})"
ADMIN_OR_READER_OR_SHARED_MEMBER = f"{ADMIN} or role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER})"
SERVICE = "role:service"
ADMIN_OR_READER_GET_NAMESPACE = f"{ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
METADEF_RULES: tuple[tuple[str, str], ...] = (
    ("get_metadef_namespace", ADMIN_OR_READER_GET_NAMESPACE),
    ("get_metadef_namespaces", ADMIN_OR_PROJECT_READER),
    *((f"{verb}_metadef_namespace", "rule:metadef_admin") for verb in ("modify", "add", "delete")),
    *(
        (f"get_metadef_{kind}", ADMIN_OR_READER_GET_NAMESPACE)
        for kind in ("object", "objects", "property", "properties", "tag", "tags")
    ),
    *((f"{verb}_metadef_object", "rule:metadef_admin") for verb in ("modify", "add", "delete")),
    *((f"{verb}_metadef_property", "rule:metadef_admin") for verb in ("modify", "add", "remove")),
    *((f"{verb}_metadef_tag", "rule:metadef_admin") for verb in ("modify", "add", "delete")),
    ("add_metadef_tags", "rule:metadef_admin"),
    ("delete_metadef_tags", "rule:metadef_admin"),
    ("list_metadef_resource_types", ADMIN_OR_READER_GET_NAMESPACE),
    ("get_metadef_resource_type", ADMIN_OR_READER_GET_NAMESPACE),
    ("add_metadef_resource_type_association", "rule:metadef_admin"),
    ("remove_metadef_resource_type_association", "rule:metadef_admin"),
)

DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("default", ""),
    ("context_is_admin", "role:admin"),
    ("service_api", f"{SERVICE} or {ADMIN}"),
    # images
    ("get_images", ADMIN_OR_PROJECT_READER),
    ("get_image", ADMIN_OR_READER_GET_IMAGE),
    ("add_image", ADMIN_OR_MEMBER_CREATE),
    ("modify_image", ADMIN_OR_PROJECT_MEMBER),
    ("delete_image", ADMIN_OR_PROJECT_MEMBER),
    ("upload_image", ADMIN_OR_PROJECT_MEMBER),
    ("download_image", ADMIN_OR_MEMBER_DOWNLOAD),
    ("download_from_store", ADMIN_OR_MEMBER_DOWNLOAD),
    ("publicize_image", "role:admin"),
    ("communitize_image", ADMIN_OR_PROJECT_MEMBER),
    ("deactivate", ADMIN_OR_PROJECT_MEMBER),
    ("reactivate", ADMIN_OR_PROJECT_MEMBER),
    ("copy_image", "role:admin"),
    ("get_image_location", ADMIN_OR_PROJECT_READER),
    ("set_image_location", ADMIN_OR_PROJECT_MEMBER),
    ("delete_image_location", ADMIN),
    ("add_image_location", f"rule:service_api or ({PROJECT_MEMBER})"),
    ("fetch_image_location", "rule:service_api"),
    # members
    ("get_member", ADMIN_OR_READER_OR_SHARED_MEMBER),
    ("get_members", ADMIN_OR_READER_OR_SHARED_MEMBER),
    ("add_member", ADMIN_OR_PROJECT_MEMBER),
    ("delete_member", ADMIN_OR_PROJECT_MEMBER),
    ("modify_member", ADMIN_OR_SHARED_MEMBER),
    # tasks and discovery
    ("tasks_api_access", "role:admin"),
    ("get_task", "rule:default"),
    ("get_tasks", "rule:default"),
    ("add_task", "rule:default"),
    ("modify_task", "rule:default"),
    ("stores_info_detail", f"{ADMIN} or {SERVICE}"),
    # metadata definitions (Glance's glance/policies/metadef.py)
    ("metadef_default", ""),
    ("metadef_admin", "role:admin"),
    *METADEF_RULES,
    # cache
    ("manage_image_cache", "role:admin"),
    ("cache_image", "role:admin"),
    ("cache_list", "role:admin"),
    ("cache_delete", "role:admin"),
    ("cache_clean", "role:admin"),
    ("cache_prune", "role:admin"),
    ("list_cached_nodes", "role:admin"),
)

# Rules other rules refer to: they carry no scope of their own.
UNSCOPED_RULES = frozenset({"default", "context_is_admin", "service_api", "metadef_default", "metadef_admin"})

# What a rule was before secure RBAC (Wallaby/Xena). With enforce_new_defaults
# False, oslo.policy ORs it with the new default, so an upgrade keeps working.
LEGACY_RULES: dict[str, str] = {
    **dict.fromkeys(
        (
            "get_images", "get_image", "add_image", "modify_image", "delete_image", "upload_image",
            "download_image", "communitize_image", "deactivate", "reactivate", "get_image_location",
            "set_image_location", "delete_image_location", "get_member", "get_members", "add_member",
            "delete_member", "modify_member",
        ),
        "rule:default",
    ),
    **dict.fromkeys(("cache_image", "cache_list", "cache_delete"), "rule:manage_image_cache"),
}  # fmt: skip

# Under the legacy rules these are owner-or-admin whatever the policy says:
# Glance's check_is_image_mutable, which stood where its DB layer used to check.
OWNER_ONLY_WHEN_LEGACY = frozenset(
    {"modify_image", "delete_image", "upload_image", "deactivate", "reactivate", "delete_image_location"}
)


def default_rules(*, scoped: bool) -> list[oslo_policy.RuleDefault]:
    """Glance's defaults as oslo.policy rules; ``scoped`` marks them project-scoped as Glance does."""
    rules = []
    for name, check in DEFAULT_RULES:
        legacy = LEGACY_RULES.get(name)
        rules.append(
            oslo_policy.RuleDefault(
                name,
                check,
                scope_types=["project"] if scoped and name not in UNSCOPED_RULES else None,
                deprecated_rule=oslo_policy.DeprecatedRule(
                    name, legacy, deprecated_reason="Secure RBAC defaults", deprecated_since="Wallaby"
                )
                if legacy
                else None,
            )
        )
    return rules


def image_target(image, member_project: str | None = None) -> dict[str, Any]:
    """Glance's ImageTarget: the image owner as ``project_id``; ``member_id`` when the caller is a member."""
    return {
        "project_id": image.owner,
        "owner": image.owner,
        "visibility": image.visibility,
        "member_id": member_project,
        "image_id": image.id,
    }


# Policy answers remembered at most (then forgotten at once: a few hundred bytes each).
MEMO_SIZE = 4096


def _frozen(values: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


# How long a policy file or directory location, found or not, is trusted before oslo.policy's
# search of the configuration directories runs again (a file put in place later is found).
POLICY_PATH_TTL_SECONDS = 5.0


class _Enforcer(oslo_policy.Enforcer):
    """oslo.policy's Enforcer, resolving where its files are at most every few seconds.

    Before each check oslo.policy looks for the policy file and each policy directory in every
    configuration directory (oslo.config's find_file); with no policy file, the default, it
    searches again on every check: about 10% of an image create. What it then does with a file
    it found (re-read it when its mtime changed) is unchanged.
    """

    def __init__(self, *args, **kwargs):
        # path -> (when resolved, where found, or the "not found" error oslo.policy raised)
        self._paths: dict[str, tuple[float, str | None, Exception | None]] = {}
        self._paths_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _get_policy_path(self, path: str) -> str:
        now = time.monotonic()
        with self._paths_lock:
            cached = self._paths.get(path)
        if cached is None or now - cached[0] >= POLICY_PATH_TTL_SECONDS:
            try:
                cached = (now, super()._get_policy_path(path), None)
            except Exception as exc:  # oslo.config's ConfigFilesNotFoundError: load_rules expects it
                cached = (now, None, exc)
            with self._paths_lock:
                self._paths[path] = cached
        if cached[2] is not None:
            raise copy.copy(cached[2])  # a fresh instance: threads each raise their own
        return cached[1]

    def clear(self) -> None:
        super().clear()
        with self._paths_lock:
            self._paths.clear()


class Policy:
    """``enforce`` raises Forbidden; ``check`` answers a bool. Glance's noauth admin passes everything."""

    def __init__(self, conf):
        """``conf``: the oslo object oslo.policy reads ``[oslo_policy]`` from, its options declared
        (config.load's ``conf``, or config.policy_conf() for the defaults alone)."""
        self._enforcer = _Enforcer(conf, use_conf=True)
        scoped = conf.oslo_policy.enforce_scope
        # Without the new defaults oslo.policy ORs in the pre-RBAC rules, which let anyone
        # change an image; Glance then checks ownership in code (only when scope is off too,
        # which leaves a hole with scope on: glancelite checks in both cases).
        self.legacy = not conf.oslo_policy.enforce_new_defaults
        self._defaults = default_rules(scoped=scoped)
        self._default_cache: tuple[Any, set[str]] = (None, set())
        self._memo: tuple[Any, dict | None] = (None, None)  # (the rules it holds for, memo)
        self._enforcer.register_defaults(self._defaults)
        try:
            self._enforcer.load_rules()
        except Exception as exc:  # a broken policy file must stop the start-up, not a request
            raise errors.ConfigError("oslo_policy", "policy_file", f"cannot load policy: {exc}") from exc

    @staticmethod
    def _bypass(context: RequestContext) -> bool:
        # Glance's unauthenticated pipeline: an admin context with no roles passes every rule.
        return context.is_admin and not context.roles

    def check(self, context: RequestContext, rule: str, target: Mapping[str, Any] | None = None) -> bool:
        if self._bypass(context):
            return True
        creds = context.to_policy_values()
        target = dict(target) if target else {"project_id": context.project_id}
        if not self._decide(rule, target, creds):
            return False
        if self.legacy and rule in OWNER_ONLY_WHEN_LEGACY and "owner" in target:
            owns = target["owner"] is not None and target["owner"] == context.project_id
            return owns or self.is_admin(context)
        return True

    def _decide(self, rule: str, target: dict[str, Any], creds: dict[str, Any]) -> bool:
        """oslo.policy's answer, remembered while the rules stay the same.

        oslo.policy inspects the signature of every check it evaluates (inspect.getfullargspec,
        for each node of a rule, each time): a third of a listing's time in the service layer.
        Its checks are pure functions of (rule, target, credentials) except http: checks, which
        ask a server: with one of those in the rules nothing is remembered.
        """
        self._enforcer.load_rules()  # a changed policy file gives new rules: a fresh memo
        rules = self._enforcer.rules
        memo_rules, memo = self._memo
        if memo_rules is not rules:
            cacheable = not any(marker in str(rules) for marker in ("http:", "https:"))
            memo = {} if cacheable else None
            self._memo = (rules, memo)
        if memo is None:
            return self._enforcer.enforce(rule, target, creds, do_raise=False)
        try:
            key = (rule, _frozen(target), _frozen(creds))
            allowed = memo.get(key)
        except TypeError:  # a value that cannot be hashed (a dict in a target): ask oslo.policy
            return self._enforcer.enforce(rule, target, creds, do_raise=False)
        if allowed is None:
            allowed = bool(self._enforcer.enforce(rule, target, creds, do_raise=False))
            if len(memo) >= MEMO_SIZE:
                memo.clear()  # bounded: callers and images change, rules seldom
            memo[key] = allowed
        return allowed

    def is_default(self, rule: str) -> bool:
        """True while the operator has not overridden ``rule`` (nor anything it refers to)."""
        self._enforcer.load_rules()
        current = self._enforcer.rules
        if current is not self._default_cache[0]:
            defaults = {rule.name: str(rule.check) for rule in self._defaults}
            same = {name for name, text in defaults.items() if name in current and str(current[name]) == text}
            self._default_cache = (current, same)
        same = self._default_cache[1]
        return rule in same and "context_is_admin" in same

    def check_many(self, context: RequestContext, rule: str, targets: list[Mapping[str, Any]]) -> list[bool]:
        """``check`` for many targets (a listing page): equal targets are checked once.

        Targets differ by image id; unless some rule mentions ``%(image_id)s`` the
        outcome cannot depend on it, so it is left out of the memo key.
        """
        if self._bypass(context):
            return [True] * len(targets)
        self._enforcer.load_rules()
        ignore = set() if "image_id" in str(self._enforcer.rules) else {"image_id"}
        memo: dict[tuple, bool] = {}
        results = []
        for target in targets:
            key = tuple(sorted((k, v) for k, v in target.items() if k not in ignore))
            if key not in memo:
                memo[key] = self.check(context, rule, target)
            results.append(memo[key])
        return results

    def enforce(
        self,
        context: RequestContext,
        rule: str,
        target: Mapping[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        if not self.check(context, rule, target):
            raise errors.Forbidden(message or f"Policy doesn't allow {rule} to be performed.")

    def is_admin(self, context: RequestContext) -> bool:
        # A context marked admin was decided so by context_is_admin when it was made (the
        # request middleware) or is the service's own: no need to evaluate the rule again.
        return context.is_admin or self.check(context, "context_is_admin", {})
