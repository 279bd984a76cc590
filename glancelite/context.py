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
