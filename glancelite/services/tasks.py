"""The (deprecated in Glance, still used) tasks API: list, show, and an image's tasks."""

from __future__ import annotations

import uuid

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db import tasks as tasks_db
from glancelite.db.repositories import TaskRepository
from glancelite.services.image_access import ImageAccess
from glancelite.services.images import ImageService
from glancelite.services.imports import ImportService
from glancelite.services.policy import Policy
from glancelite.settings import Settings

STATUSES = ("pending", "processing", "success", "failure")


class TaskService:
    def __init__(
        self,
        settings: Settings,
        *,
        tasks: TaskRepository,
        access: ImageAccess,
        policy: Policy,
        images: ImageService,
        imports: ImportService,
    ):
        self.settings = settings
        self.tasks = tasks
        self.access = access
        self.policy = policy
        self.images = images  # legacy import tasks create their image
        self.imports = imports  # ... and run as a web-download

    def check_access(self, context: RequestContext, rule: str) -> None:
        # Every /v2/tasks call checks tasks_api_access first (admin by default), then its own rule.
        self.policy.enforce(context, "tasks_api_access", {"project_id": context.project_id})
        self.policy.enforce(context, rule, {"project_id": context.project_id})

    def _admin(self, context: RequestContext) -> bool:
        return context.is_admin or self.policy.is_admin(context)

    def list(
        self,
        context: RequestContext,
        *,
        limit: int | None = None,
        marker: str | None = None,
        sort_key: str = "created_at",
        sort_dir: str = "desc",
        status: str | None = None,
        task_type: str | None = None,
    ) -> tuple[list[model.Task], str | None]:
        """A page of tasks and the marker of the next page (None on the last)."""
        self.check_access(context, "get_tasks")
        if marker is not None:
            try:
                uuid.UUID(marker)
            except ValueError:
                raise errors.Invalid("Invalid marker format") from None
        if status is not None and status not in STATUSES:
            raise errors.Invalid(f"Invalid status value: {status}")
        # COMPAT: Glance's task filter only knows the legacy 'import' type.
        if task_type is not None and task_type != "import":
            raise errors.Invalid(f"Invalid type value: {task_type}")
        if sort_dir not in ("asc", "desc"):
            raise errors.Invalid(f"Invalid sort direction: {sort_dir}")
        if sort_key not in tasks_db.SORT_KEYS:
            raise errors.Invalid(f"Invalid sort key: {sort_key}.")
        page_size = min(limit if limit is not None else self.settings.limit_param_default, self.settings.api_limit_max)
        if page_size < 0:
            raise errors.Invalid("limit param must be positive")
        tasks = self.tasks.list_tasks(
            owner=context.project_id,
            admin=self._admin(context),
            filters={"status": status, "type": task_type},
            sort_key=sort_key,
            sort_dir=sort_dir,
            limit=page_size + 1,
            marker=marker,
        )
        more = len(tasks) > page_size
        tasks = tasks[:page_size]
        return tasks, (tasks[-1].id if more and tasks else None)

    def get(self, context: RequestContext, task_id: str) -> model.Task:
        self.check_access(context, "get_task")
        return self.tasks.get_task(task_id, owner=context.project_id, admin=self._admin(context))

    def image_tasks(self, context: RequestContext, image_id: str) -> list[dict]:
        """GET /v2/images/{id}/tasks: anyone who can see the image (otherwise 404 with no message)."""
        try:
            self.access.visible_image(context, image_id)
        except errors.NotFound:
            raise errors.NotFound("") from None
        return self.tasks.image_tasks(image_id)

    def create(self, context: RequestContext, body) -> model.Task:
        """POST /v2/tasks: Glance's legacy ``import`` task, run as a web-download into the default store."""
        self.check_access(context, "add_task")
        if not isinstance(body, dict) or not body.get("type"):
            raise errors.Invalid("Task 'type' is required")
        task_input = body.get("input")
        if not isinstance(task_input, dict):
            raise errors.Invalid("Task 'input' is required")
        unknown = set(body) - {"type", "input"}
        if unknown:
            raise errors.Invalid(f"Attribute '{sorted(unknown)[0]}' is read-only.")
        if body["type"] != "import":
            raise errors.Invalid(f"Task type {body['type']!r} cannot be created through /v2/tasks; use image import.")
        for field in ("import_from", "import_from_format", "image_properties"):
            if field not in task_input:
                raise errors.Invalid(f"Input does not contain '{field}' field")
        if not isinstance(task_input["import_from"], str) or not isinstance(task_input["image_properties"], dict):
            raise errors.Invalid("Invalid task input: 'import_from' must be a URI and 'image_properties' an object")
        properties = dict(task_input["image_properties"])
        properties.setdefault("disk_format", task_input["import_from_format"])
        image = self.images.create(context, properties)
        try:
            task_id = self.imports.start_legacy_import(context, image, task_input)
        except BaseException:
            # The request failed as a whole: no image is left behind for it.
            self.images.delete(context, image.id)
            raise
        return self.tasks.get_task(task_id)
