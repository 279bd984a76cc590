"""Swift store credentials: the store's own account (single tenant) or the caller's (multi-tenant).

``Credentials`` logs in with the configured user and refreshes the token before it
expires. ``CallerToken`` is the caller's keystone token, taken as is from the request
context: glancelite cannot refresh it (glance_store refreshes it only through keystone
trusts, which glancelite does not create). ``storage_url_from_catalog`` finds the
object-store endpoint in the caller's service catalog.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from glancelite.store import base

TIMEOUT = 60


class Credentials:
    """Authenticates and hands out a token that is not about to expire (thread-safe)."""

    refreshable = True

    def __init__(self, store_id: str, auth_url: str, user: str, key: str, version: str, options: dict[str, Any]):
        self.store_id, self.auth_url, self.user, self.key, self.version = store_id, auth_url, user, key, version
        self.options = options
        self._lock = threading.Lock()
        self._token: str | None = None
        self._storage_url: str | None = None
        self._expires = 0.0

    def get(self, expire_soon: float, force: bool = False) -> tuple[str, str]:
        """(storage_url, token), re-authenticating when the token expires within ``expire_soon`` s."""
        with self._lock:
            if force or self._token is None or self._expires - time.monotonic() <= expire_soon:
                self._authenticate()
            assert self._storage_url and self._token
            return self._storage_url, self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _authenticate(self) -> None:
        timeout = self.options.get("timeout", TIMEOUT)
        verify: Any = self.options.get("cacert") or not self.options.get("insecure")
        try:
            if self.version == "1":
                resp = requests.get(
                    self.auth_url,
                    headers={"X-Auth-User": self.user, "X-Auth-Key": self.key},
                    timeout=timeout,
                    verify=verify,
                )
                if resp.status_code in (401, 403):
                    raise base.StoreUnavailable(f"Swift refused the credentials of store {self.store_id}.")
                resp.raise_for_status()
                token, url = resp.headers.get("X-Auth-Token"), resp.headers.get("X-Storage-Url")
                life = float(resp.headers.get("X-Auth-Token-Expires") or 86400)
            else:
                token, url, life = self._keystone(timeout, verify)
        except requests.RequestException as exc:
            raise base.StoreUnavailable(f"Swift auth endpoint of store {self.store_id} unreachable: {exc}") from exc
        if not token or not url:
            raise base.StoreUnavailable(f"Swift auth of store {self.store_id} returned no token or storage URL.")
        self._token, self._storage_url = token, self.options.get("endpoint") or url
        self._expires = time.monotonic() + life

    def _keystone(self, timeout: float, verify: Any) -> tuple[str, str, float]:
        from keystoneauth1 import exceptions as ks_exc
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v2, v3

        project, _, user = self.user.rpartition(":")
        if self.version == "2":
            auth = v2.Password(auth_url=self.auth_url, username=user, password=self.key, tenant_name=project)
        else:
            auth = v3.Password(
                auth_url=self.auth_url,
                username=user,
                password=self.key,
                project_name=project,
                user_domain_id=self.options.get("user_domain_id") or "default",
                project_domain_id=self.options.get("project_domain_id") or "default",
            )
        sess = ks_session.Session(auth=auth, verify=verify, timeout=timeout)
        try:
            access = auth.get_access(sess)
            url = self.options.get("endpoint") or access.service_catalog.url_for(
                service_type="object-store", interface="public", region_name=self.options.get("region")
            )
        except ks_exc.Unauthorized as exc:
            raise base.StoreUnavailable(f"Keystone refused the credentials of store {self.store_id}.") from exc
        except ks_exc.ClientException as exc:
            raise base.StoreUnavailable(f"Keystone auth for store {self.store_id} failed: {exc}") from exc
        life = (access.expires.timestamp() - time.time()) if access.expires else 3600.0
        return access.auth_token, url, life


class CallerToken:
    """The request's token for the caller's own account; ``refreshable`` is False: a 401 is final."""

    refreshable = False

    def __init__(self, store_id: str, token: str | None, storage_url: str | None = None):
        self.store_id, self._token, self._storage_url = store_id, token, storage_url

    def get(self, expire_soon: float = 0, force: bool = False) -> tuple[str, str]:
        if not self._token:
            # glance_store hands swiftclient the context's token as it is; without one nothing
            # can reach the caller's account (background work: cache prefetch, recovery deletes).
            raise base.StoreUnavailable(
                f"Multi-tenant swift store {self.store_id} needs the caller's token, and this "
                "operation runs without one."
            )
        if not self._storage_url:
            raise base.StoreUnavailable(f"Multi-tenant swift store {self.store_id}: no storage URL for this call.")
        return self._storage_url, self._token

    def invalidate(self) -> None:
        return None


class InAccount:
    """``credentials``' token used on another account, ``storage_url``: a reseller admin's view of it
    (the multi-tenant store's operator, glancelite-manage store audit)."""

    refreshable = True

    def __init__(self, credentials: Credentials, storage_url: str):
        self.credentials, self.storage_url = credentials, storage_url

    def get(self, expire_soon: float, force: bool = False) -> tuple[str, str]:
        return self.storage_url, self.credentials.get(expire_soon, force)[1]

    def invalidate(self) -> None:
        self.credentials.invalidate()


def storage_url_from_catalog(catalog, *, service_type: str, region: str | None, endpoint_type: str) -> str | None:
    """The ``endpoint_type`` URL (publicURL, internalURL, adminURL) of ``service_type`` in ``region``.

    Reads keystonemiddleware's X-Service-Catalog (v2 shape: ``{"region": R, "publicURL": u}``)
    and, too, the v3 shape (``{"region_id": R, "interface": "public", "url": u}``).
    Without a region the first endpoint that has the interface wins (keystoneauth's url_for).
    """
    interface = endpoint_type[:-3] if endpoint_type.endswith("URL") else endpoint_type
    for service in catalog or ():
        if not isinstance(service, dict) or service.get("type") != service_type:
            continue
        for endpoint in service.get("endpoints") or ():
            if not isinstance(endpoint, dict):
                continue
            if region is not None and region not in (endpoint.get("region"), endpoint.get("region_id")):
                continue
            url = endpoint.get(f"{interface}URL")
            if url is None and endpoint.get("interface") == interface:
                url = endpoint.get("url")
            if isinstance(url, str) and url:
                return url.rstrip("/")
    return None
