"""Interoperable import: stage data, validate an import request, hand a frozen plan to the runner.

The service decides everything (method enabled, image status, stores,
policy, the image lock) before anything changes; the flow (tasks/) only
executes. Refusals follow Glance's codes (reference/glance-api.md 5.1).
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from glancelite import errors, model, uri_filter
from glancelite.context import RequestContext
from glancelite.db import tasks as tasks_db
from glancelite.services import import_recovery as recovery
from glancelite.services.image_access import ImageAccess
from glancelite.services.notifier import Notifier
from glancelite.services.policy import Policy
from glancelite.services.quotas import Quotas
from glancelite.services.stage_hosts import StageHosts
from glancelite.settings import Settings
from glancelite.store import base
from glancelite.tasks.import_flow import ImportFlows
from glancelite.tasks.plan import LOCK_PROPERTY, STAGE_HOST_PROPERTY, TASK_TYPE, ImportPlan, Method, RemoteImage
from glancelite.tasks.runner import Runner
from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)
S = model.ImageStatus


class ImportService:
    def __init__(
        self,
        settings: Settings,
        *,
        env: ImportEnv,
        access: ImageAccess,
        policy: Policy,
        quotas: Quotas,
        runner: Runner,
        stage_hosts: StageHosts,
        notifier: Notifier,
    ):
        self.settings = settings
        self.env = env  # repositories, stores, staging and work areas: what the import steps use
        self.images = env.images
        self.tasks = env.tasks
        self.stores = env.stores
        self.access = access  # who may see and act on which image, decided once
        self.policy = policy
        self.quotas = quotas  # keystone unified limits
        self.runner = runner
        self.flows = ImportFlows(env)
        self.stage_hosts = stage_hosts  # the nodes holding staged data (several nodes, one database)
        self.notifier = notifier  # image.update (staged), task.create and task.run; the flow reports the rest

    def close(self) -> None:
        """Take no new import; let running ones finish (gunicorn's graceful stop)."""
        self.runner.shutdown(wait=True)

    def recover(self) -> list[str]:
        """Fail the imports whose worker died and put their images back (run at start)."""
        try:
            if self.settings.jobboard.enabled:  # a dead worker's jobs are claimed again from the board
                recovery.remove_finished_work(self.env)
                return []
            return recovery.recover_dead_tasks(self.env)
        except Exception:
            LOG.exception("recovering interrupted imports failed; the import locks will be taken over on demand")
            return []

    def delete_staged_data(self, image: model.Image) -> None:
        """Image deletion's hook: staged data goes with the image (Glance does the same)."""
        try:
            self.env.staging.delete(image.id)
        except errors.Forbidden as exc:  # the file store's answer to an OS error other than "not there"
            raise errors.Unavailable(f"Cannot remove the staged data of image {image.id}.") from exc

    @property
    def methods(self) -> tuple[str, ...]:
        return self.settings.enabled_import_methods

    # -- PUT /v2/images/{id}/stage ---------------------------------------------------

    def stage(
        self,
        context: RequestContext,
        image_id: str,
        body: base.Readable,
        *,
        size: int | None,
    ) -> model.Image:
        if Method.GLANCE_DIRECT not in self.methods:
            raise errors.NotFound("The 'glance-direct' import method is not enabled.")
        self.quotas.check_stage_total(context)
        image = self.access.visible_image(context, image_id)
        self.policy.enforce(context, "modify_image", self.access.target(context, image))
        if image.status != S.QUEUED:
            raise errors.Conflict(f"Image status transition from {image.status} to uploading is not allowed")
        self.quotas.check_uploading(context)
        if self.env.staging.size(image_id) is not None:
            raise errors.Conflict(f"The image {image_id} has data on staging")
        # The data is staged before the status changes: a stage that fails or dies
        # midway leaves only the store's hidden partial file and a queued image.
        try:
            uploading = self.env.ingest.write(
                self.env.staging.store_id,
                image_id,
                body,
                size=size,
                internal=True,
                record=lambda ingested: self._staged(image_id, ingested.stored.size),
            )
        except base.Duplicate as exc:
            raise errors.Conflict(f"The image {image_id} has data on staging") from exc
        self.notifier.image("image.update", uploading)
        return uploading

    def _staged(self, image_id: str, size: int) -> model.Image:
        props = {}
        self_url = self.settings.worker_self_reference_url or self.settings.public_endpoint
        if self_url:
            props[STAGE_HOST_PROPERTY] = self_url
        return self.images.update_image(
            image_id, expected_status=S.QUEUED, values={"status": S.UPLOADING, "size": size}, properties_set=props
        )

    # -- POST /v2/images/{id}/import -------------------------------------------------

    def import_image(
        self, context: RequestContext, image_id: str, body: dict, *, header_store: str | None = None
    ) -> str | None:
        """Validate, lock, record the task and submit it; returns the task id (None: nothing to do)."""
        method, uri, all_stores, must_succeed = self._parse(body)
        self.quotas.check_size_total(context)
        image = self.access.visible_image(context, image_id)
        # A dead task's lock is released first (recovery would do the same), so the
        # status checks see the image as that task's failure left it.
        image = self._take_over_dead_lock(image)
        stage_host = self.stage_hosts.remote_host(image) if method == Method.GLANCE_DIRECT else None
        self._check_status(image, method, staged_here=stage_host is None)
        remote = self._remote_image(context, body) if method == Method.GLANCE_DOWNLOAD else None
        rule = "copy_image" if method == Method.COPY_IMAGE else "modify_image"
        self.policy.enforce(context, rule, self.access.target(context, image))
        stores = self._stores(image, method, body, all_stores, must_succeed, header_store)
        if stage_host:
            # Staged on another node: it runs the import, as if the caller had asked it (Glance does this).
            path = f"/v2/images/{image.id}/import"
            self.stage_hosts.forward(
                context, "POST", stage_host, path, body=body, headers={"X-Image-Meta-Store": header_store}
            )
            return None
        if not stores:
            return None  # copy-image with all_stores: every store already has it
        if method == Method.WEB_DOWNLOAD:
            uri_filter.check(uri, self.settings.import_filter)
        self.runner.check_accepting()
        self.quotas.check_import(context, method, image)
        plan = ImportPlan(
            task_id=str(uuid.uuid4()),
            image_id=image.id,
            method=method,
            stores=tuple(stores),
            all_stores_must_succeed=must_succeed,
            uri=uri,
            remote=remote,
            owner=image.owner,
            request_id=context.request_id,
            roles=tuple(context.roles),
            caller=context,
        )
        return self._start(context, plan, body)

    def _parse(self, body) -> tuple[Method, str | None, bool, bool]:
        if not isinstance(body, dict):
            raise errors.Invalid("Body expected in request.")
        method = body.get("method")
        if not isinstance(method, dict):
            raise errors.Invalid("Import request requires a 'method' field.")
        name = method.get("name")
        if not name:
            raise errors.Invalid("Import request requires a 'name' field.")
        if not isinstance(name, str) or name not in self.methods:
            raise errors.Invalid(f"Unknown import method name '{name}'.")
        if name not in Method.__members__.values():
            raise errors.Invalid(f"Import method '{name}' is not supported by this server.")
        for flag in ("all_stores", "all_stores_must_succeed"):
            if flag in body and not isinstance(body[flag], bool):
                raise errors.Invalid(f"Invalid value for {flag}: expected a boolean, got {body[flag]!r}")
        uri = None
        if name == Method.WEB_DOWNLOAD:
            uri = method.get("uri")
            if not isinstance(uri, str) or not uri:
                raise errors.Invalid("Import method web-download requires a 'uri' field.")
        return Method(name), uri, bool(body.get("all_stores", False)), body.get("all_stores_must_succeed", True)

    def _remote_image(self, context: RequestContext, body: dict) -> RemoteImage:
        """glance-download's parameters, checked after the image's status as Glance does.

        The interface defaults to public (written into the request, so the task input shows it).
        """
        method = body["method"]
        for field in ("glance_region", "glance_image_id"):
            if field not in method:
                raise errors.Invalid(f"'{field}' needs to be set for glance-download import method")
        remote_id = method["glance_image_id"]
        try:
            uuid.UUID(str(remote_id))
        except ValueError as exc:
            raise errors.Invalid(f"Remote image id does not look like a UUID: {remote_id}") from exc
        interface = method.setdefault("glance_service_interface", "public")
        for field, value in (("glance_region", method["glance_region"]), ("glance_service_interface", interface)):
            if not isinstance(value, str):
                raise errors.Invalid(f"'{field}' must be a string")
        return RemoteImage(
            image_id=str(remote_id),
            region=method["glance_region"],
            interface=interface,
            credentials=context.credentials(identity=not (self.settings.auth_flavor or "").startswith("keystone")),
            service_catalog=context.service_catalog,
        )

    def release_dead_lock(self, image: model.Image) -> model.Image:
        """For other lock users (location API): Conflict if a live task holds the image, else the freed image."""
        return self._take_over_dead_lock(image)

    def _take_over_dead_lock(self, image: model.Image) -> model.Image:
        holder_id = image.properties.get(LOCK_PROPERTY)
        if not holder_id:
            return image
        holder = recovery.lock_holder(self.env, holder_id)
        if not recovery.is_dead(self.env, holder):
            raise errors.Conflict("Image has active task")
        LOG.info("image %s: taking over the import lock of dead task %s", image.id, holder_id)
        if holder is not None and holder.status not in tasks_db.FINISHED:
            recovery.fail_dead_task(self.env, holder, "The import was taken over: its worker stopped.")
        self.images.release_property_lock(image.id, LOCK_PROPERTY, holder_id)
        return self.images.get_image(image.id)

    def _check_status(self, image: model.Image, method: Method, *, staged_here: bool = True) -> None:
        if method == Method.COPY_IMAGE:
            if image.status != S.ACTIVE:
                raise errors.Conflict("Only images with status active can be targeted for copying")
            return
        if image.status == S.ACTIVE:
            raise errors.Conflict("Image with status active cannot be target for import")
        if method == Method.GLANCE_DIRECT:
            if image.status != S.UPLOADING or (staged_here and self.env.staging.size(image.id) is None):
                raise errors.Conflict("Image needs to be staged before 'glance-direct' method can be used")
        elif image.status != S.QUEUED:
            raise errors.Conflict(f"Image needs to be in 'queued' state to use '{method}' method")
        if not image.container_format:
            raise errors.Conflict("'container_format' needs to be set before import")
        if not image.disk_format:
            raise errors.Conflict("'disk_format' needs to be set before import")

    def _stores(self, image, method, body, all_stores, must_succeed, header_store) -> list[str]:
        requested = body.get("stores")
        if not self.settings.multi_store:
            if not must_succeed:
                raise errors.Invalid("'all_stores_must_succeed' can only be false with multiple stores enabled.")
            # COMPAT: single store: all_stores is silently ignored.
            stores = [self.stores.default_id]
        else:
            if all_stores and (requested or header_store):
                raise errors.Invalid("all_stores cannot be used with stores or the x-image-meta-store header")
            if requested is not None and header_store:
                raise errors.Invalid("Stores parameter and x-image-meta-store header can't be both specified")
            if requested is not None and (
                not isinstance(requested, list) or not all(isinstance(s, str) for s in requested)
            ):
                raise errors.Invalid("'stores' must be a list of store identifiers")
            if all_stores:
                stores = [s for s in self.stores.public_ids() if self.stores.writable(s)]
            elif requested:
                stores = list(dict.fromkeys(requested))
            else:
                stores = [header_store or self.stores.default_id]
            for store_id in stores:
                self._check_target(store_id)
        if method == Method.COPY_IMAGE:
            held = {self.stores.holder_of(loc) for loc in image.locations}
            if all_stores:
                return [s for s in stores if s not in held]
            for store_id in stores:
                if store_id in held:
                    raise errors.Invalid(f"Image is already present at store '{store_id}'")
        return stores

    def _check_target(self, store_id: str) -> None:
        try:
            self.stores.settings_of(store_id)
        except errors.Invalid as exc:
            # COMPAT: an unknown (or reserved) import store is a 409, unlike uploads.
            raise errors.Conflict(f"Store for identifier {store_id} not found") from exc
        if not self.stores.writable(store_id):
            raise errors.Conflict(f"Store {store_id} is read-only: images cannot be imported into it")

    def start_legacy_import(self, context: RequestContext, image: model.Image, task_input: dict) -> str:
        """POST /v2/tasks type 'import': web-download ``import_from`` into the default store."""
        uri = task_input["import_from"]
        uri_filter.check(uri, self.settings.import_filter)
        self._check_status(image, Method.WEB_DOWNLOAD)
        self.runner.check_accepting()
        plan = ImportPlan(
            task_id=str(uuid.uuid4()),
            image_id=image.id,
            method=Method.WEB_DOWNLOAD,
            stores=(self.stores.default_id,),
            uri=uri,
            owner=image.owner,
            request_id=context.request_id,
            import_plugins=False,  # Glance's legacy import task runs no import plugin
            caller=context,
        )
        return self._start(context, plan, task_input, task_type="import")

    def _start(self, context: RequestContext, plan: ImportPlan, body: dict, task_type: str = TASK_TYPE) -> str:
        task = self.tasks.create_task(
            {
                "id": plan.task_id,
                "type": task_type,
                "owner": context.project_id,
                "image_id": plan.image_id,
                "request_id": context.request_id,
                "user_id": context.user_id,
            },
            plan.task_input(body) if task_type == TASK_TYPE else body,
        )
        try:
            self.images.acquire_property_lock(plan.image_id, LOCK_PROPERTY, plan.task_id)
        except errors.Conflict as exc:
            self._abandon(plan)
            raise errors.Conflict(
                f"New operation on image '{plan.image_id}' is not permitted as prior operation is still in progress"
            ) from exc
        try:
            # The flow owns the task's working state from here: work area and bookkeeping.
            self.flows.accepted(plan)
            # Glance reports the task when it is added, then task.run as it is handed to the executor.
            self.notifier.task("task.create", task)
            self.notifier.task("task.run", task)  # before submitting: the flow's own events follow it
            self.runner.submit(plan, self.flows)
        except BaseException:
            self.flows.refused(plan)
            self._abandon(plan)
            raise
        return plan.task_id

    def _abandon(self, plan: ImportPlan) -> None:
        """The import never started: its task row goes, as if the request had been refused up front."""
        with contextlib.suppress(errors.GlanceliteError):
            self.tasks.delete_task(plan.task_id)
