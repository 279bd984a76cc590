"""The caller of one request, as the auth layer established it."""

from __future__ import annotations

import dataclasses
import uuid


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
