"""Several nodes, one database: forward a request to the node that holds an image's staged data.

``PUT /stage`` records the staging node's own URL (``worker_self_reference_url``,
else ``public_endpoint``) in ``os_glance_stage_host``. A glance-direct import or a
delete that reaches another node is replayed against that URL with the caller's
credentials, as Glance's ``_proxy_request_to_stage_host`` does, and the remote's
answer becomes ours (reference/glance-api.md 5.1 item 10).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.settings import Settings
from glancelite.tasks.plan import STAGE_HOST_PROPERTY

if TYPE_CHECKING:
    import requests

LOG = logging.getLogger(__name__)

# Glance waits 60 s for the remote; connecting gets less, so a dead node is noticed fast.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


class StageHosts:
    def __init__(self, settings: Settings, session: requests.Session | None = None):
        self.self_url = settings.worker_self_reference_url or settings.public_endpoint
        # Under keystone the remote checks the token; otherwise it trusts identity headers.
        self.forward_identity = not (settings.auth_flavor or "").startswith("keystone")
        # [taskflow_jobboard] shared_staging: every node reads the staged data, none forwards.
        self.shared_staging = settings.jobboard.shared_staging
        # requests (~4.5 MiB) comes with the first forwarded request: one node needs none.
        self._session = session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def remote_host(self, image: model.Image) -> str | None:
        """The stage host's URL when the image is staged on another node, else None."""
        if self.shared_staging:
            return None
        host = image.properties.get(STAGE_HOST_PROPERTY)
        return host if host and host != self.self_url else None

    def forward(
        self,
        context: RequestContext,
        method: str,
        host: str,
        path: str,
        *,
        body: dict | None = None,
        headers: dict[str, str | None] | None = None,
    ) -> int:
        """Replay the request on ``host``; the remote's 2xx status, or the typed error for its answer."""
        import requests

        url = host.rstrip("/") + path
        LOG.info("proxying %s %s to %s, which has the image staged", method, path, host)
        sent = {k: v for k, v in (headers or {}).items() if v is not None}
        sent.update(context.credentials(identity=self.forward_identity))
        sent["Accept"] = "application/json"
        sent["X-Openstack-Request-Id"] = context.request_id  # the client sees one id for the action
        try:
            resp = self.session.request(
                method, url, json=body, headers=sent, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False
            )
        except requests.ConnectionError as exc:
            # COMPAT: Glance answers 504 when the stage host cannot be reached at all
            # (refused or connect timeout) and 502 for any other failure (a read timeout).
            LOG.error("failed to proxy to %s: %s", url, exc)
            raise errors.GatewayTimeout("Stage host is unavailable") from exc
        except requests.RequestException as exc:
            LOG.error("failed to proxy to %s: %s", url, exc)
            raise errors.BadGateway("Stage host is unavailable") from exc
        if resp.status_code // 100 != 2:
            passed_on = {k: resp.headers[k] for k in ("Retry-After",) if k in resp.headers}
            raise errors.Upstream(f"{resp.status_code} {resp.reason}", _message(resp), headers=passed_on)
        return resp.status_code


def _message(resp: requests.Response) -> str | None:
    """The remote's explanation from Glance's JSON error body, without webob's trailing markup."""
    try:
        message = resp.json().get("message")
    except (ValueError, AttributeError):
        return None
    if not isinstance(message, str):
        return None
    return message.split("<br />", 1)[0].strip() or None
