"""Location API v2.17: POST /v2/images/{id}/locations (async ``location_import``) and GET .../locations.

The service validates everything a client can get wrong before anything
changes (body, image, policy, status, URL, store, import filter), takes the
image's import lock (``os_glance_import_task``, the same compare-and-set as
imports), records the task and hands a frozen plan to the process runner.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from typing import Any

import jsonschema

from glancelite import errors, model, uri_filter
from glancelite.context import RequestContext
from glancelite.services.image_access import ImageAccess
from glancelite.services.imports import ImportService
from glancelite.services.policy import Policy
from glancelite.settings import Settings
from glancelite.tasks.location_flow import TASK_TYPE, LocationFlows, LocationPlan
from glancelite.tasks.plan import LOCK_PROPERTY
from glancelite.tasks.runner import Runner
from glancelite.tasks.steps import ImportEnv

S = model.ImageStatus
HASH_ALGORITHMS = ("sha1", "sha256", "sha512", "md5")
# Schemes whose URLs name server-side files or credentials; never accepted from the API.
REFUSED_SCHEMES = ("file", "filesystem", "swift+config")

LOCATION_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "maxLength": 255},
        "validation_data": {
            "type": "object",
            "properties": {
                "os_hash_algo": {"type": "string", "enum": list(HASH_ALGORITHMS)},
                "os_hash_value": {"type": "string", "maxLength": 128},
            },
            "additionalProperties": False,
            # both or neither
            "dependentRequired": {"os_hash_algo": ["os_hash_value"], "os_hash_value": ["os_hash_algo"]},
        },
    },
    "required": ["url"],
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft202012Validator(LOCATION_SCHEMA)


def parse_body(body: Any) -> tuple[str, dict[str, str]]:
    """The URL and validation_data ({} when none); Invalid (400) in Glance's schema-error shape."""
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(body))
    if error is not None:
        raise errors.Invalid(f"Provided object does not match schema 'location': {error.message}")
    validation = dict(body.get("validation_data") or {})
    if validation:
        algo, value = validation["os_hash_algo"], validation["os_hash_value"]
        expected = hashlib.new(algo).digest_size * 2
        if len(value) != expected or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise errors.Invalid(
                f"os_hash_value: ({value}) is not a valid {algo} hash: expected {expected} hexadecimal digits"
            )
    return body["url"], validation


class LocationService:
    def __init__(
        self,
        settings: Settings,
        *,
        env: ImportEnv,
        access: ImageAccess,
        policy: Policy,
        imports: ImportService,
        runner: Runner,
    ):
        self.settings = settings
        self.images = env.images
        self.tasks = env.tasks
        self.stores = env.stores
        self.access = access  # visibility + policy with Glance's 404 masking
        self.policy = policy
        self.imports = imports  # shares the import lock and its dead-lock takeover
        self.runner = runner
        self.flows = LocationFlows(env)

    # -- POST /v2/images/{id}/locations ----------------------------------------------

    def add(self, context: RequestContext, image_id: str, body: Any) -> str:
        """Validate, lock, record the task and submit it; returns the task id."""
        url, validation = parse_body(body)
        image = self.access.authorize(context, image_id, "add_image_location")
        store_id = self._store_for(context, url)
        image = self.imports.release_dead_lock(image)
        if image.status != S.QUEUED:
            raise errors.Conflict(
                f"It's not allowed to add locations if image status is {image.status}; "
                "the location API adds data to queued images only."
            )
        if not (image.disk_format and image.container_format):
            raise errors.Invalid("Properties disk_format, container_format must be set prior to saving data.")
        if url.split("://", 1)[0].lower() in ("http", "https"):
            self._check_filter(url)
        self.runner.check_accepting()
        plan = LocationPlan(
            task_id=str(uuid.uuid4()),
            image_id=image.id,
            url=url,
            store_id=store_id,
            metadata={"store": store_id} if self.settings.multi_store else {},
            validation_data=validation,
            hashing_algorithm=validation.get("os_hash_algo") or self.settings.hashing_algorithm,
            do_secure_hash=self.settings.do_secure_hash,
            http_retries=self.settings.http_retries,
            # Data in a store we may not write (http) is not ours to remove when verification fails.
            keep_location_on_failure=not self.stores.writable(store_id),
        )
        return self._start(context, plan)

    def _store_for(self, context: RequestContext, url: str) -> str:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if not scheme or scheme in REFUSED_SCHEMES:
            raise errors.Invalid(f"Invalid location: {url}: the location API does not accept {scheme or 'this'} URLs")
        http_stores = [s.id for s in self.settings.stores if s.type == "http" and not s.reserved]
        if not self.policy.check(context, "service_api"):
            # COMPAT: a normal (owner) user may only add http locations, through an http store.
            if not http_stores:
                raise errors.Forbidden("http store must be enabled to use location API by normal user.")
            if scheme not in ("http", "https"):
                raise errors.Forbidden(f"Only http(s) locations may be added by a normal user, not {scheme}.")
        try:
            store_id = self.stores.store_of(model.Location(url=url, metadata={}))
            settings = self.stores.settings_of(store_id)
        except (errors.NotFound, errors.Invalid):
            raise errors.Invalid(f"Invalid location: {url}: no configured store serves {scheme} URLs") from None
        if settings.reserved:
            raise errors.Invalid(f"Invalid location: {url}")
        return store_id

    def _check_filter(self, url: str) -> None:
        try:
            uri_filter.check(url, self.settings.import_filter)
        except uri_filter.RefusedURI as exc:
            # The filter speaks of web-download; say what was refused here.
            reason = exc.message.split(url, 1)[-1]
            raise errors.Invalid(f"URI for location does not pass filtering: {url}{reason}") from None

    def _start(self, context: RequestContext, plan: LocationPlan) -> str:
        self.tasks.create_task(
            {
                "id": plan.task_id,
                "type": TASK_TYPE,
                "owner": context.project_id,
                "image_id": plan.image_id,
                "request_id": context.request_id,
                "user_id": context.user_id,
            },
            plan.task_input(),
        )
        try:
            self.images.acquire_property_lock(plan.image_id, LOCK_PROPERTY, plan.task_id)
        except errors.Conflict as exc:
            self._abandon(plan)
            raise errors.Conflict(
                f"New operation on image '{plan.image_id}' is not permitted as prior operation is still in progress"
            ) from exc
        try:
            self.flows.accepted(plan)  # the flow owns the task's working state from here
            self.runner.submit(plan, self.flows)
        except BaseException:
            self.flows.refused(plan)
            self._abandon(plan)
            raise
        return plan.task_id

    def _abandon(self, plan: LocationPlan) -> None:
        with contextlib.suppress(errors.GlanceliteError):
            self.tasks.delete_task(plan.task_id)

    # -- GET /v2/images/{id}/locations -----------------------------------------------

    def list(self, context: RequestContext, image_id: str) -> list[dict[str, Any]]:
        image = self.access.authorize(context, image_id, "fetch_image_location")
        active = [loc for loc in image.locations if loc.status == "active"]
        return [{"url": loc.url, "metadata": dict(loc.metadata)} for loc in self.stores.sort_locations(active)]
