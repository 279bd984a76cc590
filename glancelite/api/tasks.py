"""/v2/tasks, /v2/tasks/{id} and /v2/images/{id}/tasks: HTTP only (the task schemas live in schemas.py)."""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from typing import Any

import falcon

from glancelite import errors, model
from glancelite.api import common
from glancelite.api.views import isotime
from glancelite.services import Services

_STUB_FIELDS = ("id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "self", "schema")


def task_view(task: model.Task, *, stub: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at or task.created_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    if stub:
        return {k: view[k] for k in _STUB_FIELDS}
    view.update(input=task.input or {}, result=task.result, message=task.message or "")
    # Wallaby's additions appear only when set.
    for name in ("image_id", "request_id", "user_id"):
        if getattr(task, name):
            view[name] = getattr(task, name)
    return view


def _raw(value: Any) -> Any:
    # GET /v2/images/{id}/tasks: Glance serialises the raw DB dict's datetimes with microseconds.
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if isinstance(value, datetime) else value


def _int_param(params: dict, name: str) -> int | None:
    if name not in params:
        return None
    try:
        return int(params[name])
    except ValueError:
        raise errors.Invalid(f"{name} param must be an integer") from None


class TasksResource:
    def __init__(self, services: Services):
        self.tasks = services.tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        common.reject_body(req)
        params = dict(urllib.parse.parse_qsl(req.query_string, keep_blank_values=True))
        tasks, next_marker = self.tasks.list(
            common.context(req),
            limit=_int_param(params, "limit"),
            marker=params.get("marker"),
            sort_key=params.get("sort_key", "created_at"),
            sort_dir=params.get("sort_dir", "desc"),
            status=params.get("status"),
            task_type=params.get("type"),
        )
        query = {k: v for k, v in params.items() if k != "marker"}
        body: dict[str, Any] = {
            "tasks": [task_view(t, stub=True) for t in tasks],
            "first": "/v2/tasks" + (f"?{urllib.parse.urlencode(query)}" if query else ""),
            "schema": "/v2/schemas/tasks",
        }
        if next_marker:
            body["next"] = "/v2/tasks?" + urllib.parse.urlencode({**query, "marker": next_marker})
        common.send_json(resp, body)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = common.context(req)
        self.tasks.check_access(ctx, "add_task")
        task = self.tasks.create(ctx, common.read_json(req, expect=dict))
        resp.set_header("Location", common.absolute_url(req, f"/v2/tasks/{task.id}"))
        common.send_json(resp, task_view(task), falcon.HTTP_201)


class TaskResource:
    def __init__(self, services: Services):
        self.tasks = services.tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        common.reject_body(req)
        common.send_json(resp, task_view(self.tasks.get(common.context(req), task_id)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        # COMPAT: Glance routes DELETE /v2/tasks/{id} to a 405 that names the one allowed method.
        raise errors.MethodNotAllowed(
            "This operation is currently not permitted on Glance Tasks.", headers={"Allow": "GET"}
        )


class ImageTasksResource:
    def __init__(self, services: Services):
        self.tasks = services.tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        common.reject_body(req)
        common.check_uuid(image_id)
        rows = self.tasks.image_tasks(common.context(req), image_id)
        common.send_json(resp, {"tasks": [{k: _raw(v) for k, v in row.items()} for row in rows]})
