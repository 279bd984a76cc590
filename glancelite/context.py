"""The caller of one request, as the auth layer established it."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable

from oslo_context import context as oslo_context


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclasses.dataclass(frozen=True)
class RequestContext:
    project_id: str | None = None
    user_id: str | None = None
    roles: tuple[str, ...] = ()
    is_admin: bool = False
    request_id: str = dataclasses.field(default_factory=new_request_id)
    auth_token: str | None = dataclasses.field(default=None, repr=False)
    service_roles: tuple[str, ...] = ()
    system_scope: str | None = None
    domain_id: str | None = None
    read_only: bool = False
    # The caller's service catalog (keystonemiddleware's X-Service-Catalog, v2 shape), for
    # glance-download's endpoint lookup. Kept out of repr and comparisons.
    service_catalog: tuple = dataclasses.field(default=(), repr=False, compare=False)

    @classmethod
    def admin(cls, request_id: str | None = None) -> RequestContext:
        """Glance's unauthenticated pipeline: an admin with no project."""
        return cls(is_admin=True, request_id=request_id or new_request_id())

    def credentials(self, *, identity: bool) -> dict[str, str]:
        """Headers that make another Glance act for this caller: the token and, with ``identity``
        (trusted-headers flavor, where the token is not checked), the identity headers too."""
        creds = {"X-Auth-Token": self.auth_token} if self.auth_token else {}
        if identity and (self.user_id or self.project_id or self.roles):
            creds["X-Identity-Status"] = "Confirmed"
            for name, value in (
                ("X-User-Id", self.user_id),
                ("X-Project-Id", self.project_id),
                ("X-Roles", ",".join(self.roles)),
                ("X-Service-Roles", ",".join(self.service_roles)),
                ("X-Domain-Id", self.domain_id),
                ("OpenStack-System-Scope", self.system_scope),
            ):
                if value:
                    creds[name] = value
        return creds

    def to_policy_values(self) -> dict:
        """The credential dict oslo.policy rules are checked against."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": list(self.roles),
            "service_roles": list(self.service_roles),
            "system_scope": self.system_scope,
            "domain_id": self.domain_id,
            "is_admin": self.is_admin,
        }


def bind_to_logs(context: RequestContext) -> None:
    """Make ``context`` this thread's oslo.context until the next request: oslo.log's formatters
    read it, so every line logged while the request is served (the access line too) carries its
    request id, user and project, as Glance's lines do."""
    oslo_context.RequestContext(
        request_id=context.request_id,
        user_id=context.user_id,
        project_id=context.project_id,
        domain_id=context.domain_id,
        system_scope=context.system_scope,
        roles=list(context.roles),
        is_admin=context.is_admin,
        read_only=context.read_only,
        overwrite=True,  # stores itself as the thread's context
    )


def unbind_from_logs() -> None:
    """This thread serves no request: the lines it logs next carry no request context."""
    # oslo.context has no public call to forget the thread's context; its own
    # ClearRequestContext fixture removes the attribute the same way.
    with contextlib.suppress(AttributeError):
        del oslo_context._request_store.context


def carrying_log_context(fn: Callable) -> Callable:
    """``fn``, to run in another thread under the log context of the thread calling this now.

    The import flow's work runs on executor threads; with this its lines carry the request id,
    user and project of the request that started the import, as Glance's do."""
    current = oslo_context.get_current()

    def run(*args, **kwargs):
        if current is None:
            unbind_from_logs()
        else:
            current.update_store()
        try:
            return fn(*args, **kwargs)
        finally:
            unbind_from_logs()

    return run
