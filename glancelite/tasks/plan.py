"""The frozen description of one import job: what the service decided, what the flow executes."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from glancelite.context import RequestContext


class Method(enum.StrEnum):
    GLANCE_DIRECT = "glance-direct"
    WEB_DOWNLOAD = "web-download"
    COPY_IMAGE = "copy-image"
    GLANCE_DOWNLOAD = "glance-download"


# The image property names of import bookkeeping (Glance's).
LOCK_PROPERTY = "os_glance_import_task"
IMPORTING_PROPERTY = "os_glance_importing_to_stores"
FAILED_PROPERTY = "os_glance_failed_import"
STAGE_HOST_PROPERTY = "os_glance_stage_host"
TASK_TYPE = "api_image_import"


@dataclasses.dataclass(frozen=True)
class RemoteImage:
    """glance-download's source: an image of another Glance, found through the caller's catalog.

    The caller's credentials (token; identity headers too in the trusted-headers
    flavor) and catalog live only in memory, for the run of the task (as Glance
    passes its request context to the flow); never in the database or logs.
    """

    image_id: str
    region: str
    interface: str = "public"
    credentials: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    service_catalog: tuple = dataclasses.field(default=(), repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class ImportPlan:
    """Everything a flow needs; the service validated all of it before building the plan.

    ``stores`` are target store ids in import order. ``uri`` only for
    web-download, ``remote`` only for glance-download. ``source_stores`` (copy-image) are the stores already
    holding the image, best weight first.
    """

    task_id: str
    image_id: str
    method: Method
    stores: tuple[str, ...]
    all_stores_must_succeed: bool = True
    uri: str | None = None
    remote: RemoteImage | None = None  # glance-download only
    source_stores: tuple[str, ...] = ()
    owner: str | None = None  # the image owner (storage quota is charged to it)
    request_id: str | None = None
    roles: tuple[str, ...] = ()  # the importing user's roles (inject_image_metadata decides by them)
    import_plugins: bool = True  # [image_import_opts] image_import_plugins apply (not to legacy import tasks)
    # The importing caller (token, catalog), in memory only, as Glance hands its request context to the
    # flow: per-caller stores (multi-tenant swift) write and read with it. None after a restart.
    caller: RequestContext | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def is_copy(self) -> bool:
        return self.method is Method.COPY_IMAGE

    def task_input(self, import_req: dict) -> dict:
        """Glance's task input for api_image_import."""
        return {"image_id": self.image_id, "import_req": import_req, "backend": list(self.stores)}
