"""The whole URL table, in one place: every path glancelite serves and the resource behind it."""

from __future__ import annotations

import falcon

from glancelite.api import (
    cache,
    health,
    image_data,
    images,
    imports,
    info,
    locations,
    members,
    metadef_schemas,
    metadefs,
    openapi,
    schemas,
    tags,
    tasks,
    versions,
)
from glancelite.api.middleware import DETAILED_HEALTH_PATH
from glancelite.services import Services

IMAGE = "/v2/images/{image_id}"
NAMESPACE = "/v2/metadefs/namespaces/{namespace}"


def table(services: Services) -> list[tuple[str, object]]:
    s = services
    formats = schemas.Formats.of(s.settings)
    entries = [
        ("/", versions.VersionsResource(s.settings, falcon.HTTP_300)),
        ("/versions", versions.VersionsResource(s.settings, falcon.HTTP_200)),
        (DETAILED_HEALTH_PATH, health.DetailedHealthResource(s)),
        # Images and what hangs off them.
        ("/v2/images", images.ImagesResource(s)),
        (IMAGE, images.ImageResource(s)),
        (IMAGE + "/actions/deactivate", images.ActionResource(s, "deactivate")),
        (IMAGE + "/actions/reactivate", images.ActionResource(s, "reactivate")),
        (IMAGE + "/tags/{tag}", tags.TagResource(s)),
        (IMAGE + "/members", members.MembersResource(s)),
        (IMAGE + "/members/{member_id}", members.MemberResource(s)),
        (IMAGE + "/file", image_data.ImageFileResource(s)),
        (IMAGE + "/stage", imports.StageResource(s)),
        (IMAGE + "/import", imports.ImportResource(s)),
        (IMAGE + "/locations", locations.LocationsResource(s)),
        (IMAGE + "/tasks", tasks.ImageTasksResource(s)),
        ("/v2/stores/{store_id}/{image_id}", image_data.StoreImageResource(s)),
        # Discovery.
        ("/v2/info/import", imports.ImportInfoResource(s)),
        ("/v2/info/stores", info.StoresInfoResource(s)),
        ("/v2/info/stores/detail", info.StoresDetailResource(s)),
        ("/v2/info/usage", images.UsageResource(services)),
        *((f"/v2/schemas/{name}", schemas.SchemaResource(name, formats)) for name in schemas.SCHEMAS),
        *(
            (f"/v2/schemas/metadefs/{name}", metadef_schemas.MetadefSchemaResource(name))
            for name in metadef_schemas.SCHEMAS
        ),
        # Tasks (admin-only, deprecated API).
        ("/v2/tasks", tasks.TasksResource(s)),
        ("/v2/tasks/{task_id}", tasks.TaskResource(s)),
        # Cache (only answers when image_cache_dir is set). Static segments win over {image_id}.
        ("/v2/cache", cache.CacheResource(s)),
        ("/v2/cache/clean", cache.CacheCleanResource(s)),
        ("/v2/cache/prune", cache.CachePruneResource(s)),
        ("/v2/cache/{image_id}", cache.CachedImageResource(s)),
        # Metadata definitions.
        ("/v2/metadefs/namespaces", metadefs.NamespacesResource(s)),
        (NAMESPACE, metadefs.NamespaceResource(s)),
        (NAMESPACE + "/objects", metadefs.ObjectsResource(s)),
        (NAMESPACE + "/objects/{name}", metadefs.ObjectResource(s)),
        (NAMESPACE + "/properties", metadefs.PropertiesResource(s)),
        (NAMESPACE + "/properties/{name}", metadefs.PropertyResource(s)),
        (NAMESPACE + "/tags", metadefs.TagsResource(s)),
        (NAMESPACE + "/tags/{name}", metadefs.TagResource(s)),
        (NAMESPACE + "/resource_types", metadefs.AssociationsResource(s)),
        (NAMESPACE + "/resource_types/{name}", metadefs.AssociationResource(s)),
        ("/v2/metadefs/resource_types", metadefs.ResourceTypesResource(s)),
    ]
    # The OpenAPI description of this very table (itself included), checked against it when served.
    entries.append((openapi.OPENAPI_PATH, openapi.OpenAPIResource(entries, formats)))
    return entries


def register(app: falcon.App, services: Services) -> None:
    for path, resource in table(services):
        app.add_route(path, resource)
