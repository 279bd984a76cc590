"""The JSON schemas Glance serves under /v2/schemas, and validation against them.

The same dicts are served to clients (python-glanceclient builds its models
from them) and used with jsonschema on request bodies, so what we promise is
what we check.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jsonschema

from glancelite import errors
from glancelite.api import common

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
IMAGE_STATUSES = [
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
]
INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Formats:
    """The operator's [image_format] disk_formats and container_formats: the image schema's enums."""

    disk: tuple[str, ...]
    container: tuple[str, ...]

    @classmethod
    def of(cls, settings) -> Formats:
        return cls(disk=tuple(settings.disk_formats), container=tuple(settings.container_formats))


def _ro(schema: dict) -> dict:
    return {**schema, "readOnly": True}


def _image_properties(formats: Formats) -> dict[str, Any]:
    nullable_str = {"type": ["null", "string"]}
    return {
        "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
        "name": {**nullable_str, "description": "Descriptive name for the image", "maxLength": 255},
        "status": _ro({"type": "string", "description": "Status of the image", "enum": IMAGE_STATUSES}),
        "visibility": {
            "type": "string",
            "description": "Scope of image accessibility",
            "enum": ["community", "public", "private", "shared"],
        },
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": _ro({**nullable_str, "description": "md5 hash of image contents.", "maxLength": 32}),
        "os_hash_algo": _ro(
            {**nullable_str, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64}
        ),
        "os_hash_value": _ro(
            {**nullable_str, "description": "Hexdigest of the image contents using os_hash_algo.", "maxLength": 128}
        ),
        "owner": {**nullable_str, "description": "Owner of the image", "maxLength": 255},
        "size": _ro({"type": ["null", "integer"], "description": "Size of image file in bytes"}),
        "virtual_size": _ro({"type": ["null", "integer"], "description": "Virtual size of image in bytes"}),
        "container_format": {
            "type": ["null", "string"],
            "description": "Format of the container",
            "enum": [None, *formats.container],
        },
        "disk_format": {"type": ["null", "string"], "description": "Format of the disk", "enum": [None, *formats.disk]},
        "created_at": _ro({"type": "string", "description": "Date and time of image registration"}),
        "updated_at": _ro({"type": "string", "description": "Date and time of the last image modification"}),
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": _ro({"type": "string", "description": "URL to access the image file kept in external store"}),
        "min_ram": {
            "type": "integer",
            "description": "Amount of ram (in MB) required to boot image.",
            "minimum": 0,
            "maximum": INT32_MAX,
        },
        "min_disk": {
            "type": "integer",
            "description": "Amount of disk space (in GB) required to boot image.",
            "minimum": 0,
            "maximum": INT32_MAX,
        },
        "self": _ro({"type": "string", "description": "An image self url"}),
        "file": _ro({"type": "string", "description": "An image file url"}),
        "stores": _ro(
            {
                "type": "string",
                "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.",
            }
        ),
        "schema": _ro({"type": "string", "description": "An image schema url"}),
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
                        "type": "object",
                        "writeOnly": True,
                        "additionalProperties": False,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
        # The custom properties Glance ships in etc/schema-image.json.
        "kernel_id": {
            "type": ["null", "string"],
            "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
            "is_base": False,
        },
        "ramdisk_id": {
            "type": ["null", "string"],
            "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.",
            "is_base": False,
        },
        "instance_uuid": {
            "type": "string",
            "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)",
            "is_base": False,
        },
        "architecture": {
            "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            "type": "string",
            "is_base": False,
        },
        "os_distro": {
            "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            "type": "string",
            "is_base": False,
        },
        "os_version": {
            "description": "Operating system version as specified by the distributor.",
            "type": "string",
            "is_base": False,
        },
        "description": {
            "description": "A human-readable string describing this image.",
            "type": "string",
            "is_base": False,
        },
        "cinder_encryption_key_id": {
            "description": "Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image",
            "type": "string",
            "is_base": False,
        },
        "cinder_encryption_key_deletion_policy": {
            "description": "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action",
            "type": "string",
            "enum": ["on_image_deletion", "do_not_delete"],
            "is_base": False,
        },
    }


def _collection(name: str, item: dict, item_key: str) -> dict:
    return {
        "name": name,
        "properties": {
            item_key: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


@functools.cache
def image(formats: Formats) -> dict:
    return {
        "name": "image",
        "properties": _image_properties(formats),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


@functools.cache
def images(formats: Formats) -> dict:
    return _collection("images", image(formats), "images")


@functools.cache
def member() -> dict:
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": ["pending", "accepted", "rejected"],
            },
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"readOnly": True, "type": "string"},
        },
    }


@functools.cache
def members() -> dict:
    return {
        "name": "members",
        "properties": {"members": {"type": "array", "items": member()}, "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


@functools.cache
def task() -> dict:
    return {
        "name": "task",
        "properties": {
            "id": {"description": "An identifier for the task", "pattern": UUID_PATTERN, "type": "string"},
            "type": {
                "description": "The type of task represented by this content",
                "enum": ["import", "api_image_import", "location_import"],
                "type": "string",
            },
            "status": {
                "description": "The current status of this task",
                "enum": ["pending", "processing", "success", "failure"],
                "type": "string",
            },
            "input": {"description": "The parameters required by task, JSON blob", "type": ["null", "object"]},
            "result": {"description": "The result of current task, JSON blob", "type": ["null", "object"]},
            "owner": {"description": "An identifier for the owner of this task", "type": "string"},
            "message": {
                "description": "Human-readable informative message only included when appropriate (usually on failure)",
                "type": "string",
            },
            "image_id": {"description": "Image associated with the task", "type": "string"},
            "request_id": {"description": "Human-readable informative request-id", "type": "string"},
            "user_id": {"description": "User associated with the task", "type": "string"},
            "expires_at": {
                "description": "Datetime when this resource would be subject to removal",
                "type": ["null", "string"],
            },
            "created_at": {"description": "Datetime when this resource was created", "type": "string"},
            "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
            "self": {"readOnly": True, "type": "string"},
            "schema": {"readOnly": True, "type": "string"},
        },
    }


@functools.cache
def tasks() -> dict:
    listed = copy.deepcopy(task())
    for key in ("input", "result"):
        listed["properties"].pop(key)
    return _collection("tasks", listed, "tasks")


# Every schema by name, built for the operator's formats (only the image ones depend on them).
SCHEMAS: dict[str, Callable[[Formats], dict]] = {
    "image": image,
    "images": images,
    "member": lambda _formats: member(),
    "members": lambda _formats: members(),
    "task": lambda _formats: task(),
    "tasks": lambda _formats: tasks(),
}


@functools.cache
def _validator(name: str, formats: Formats) -> jsonschema.protocols.Validator:
    schema = SCHEMAS[name](formats)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
    return cls(schema)


def validate(name: str, obj: Any, formats: Formats) -> None:
    """Invalid "Provided object does not match schema '<name>': <reason>" on the first error."""
    error = jsonschema.exceptions.best_match(_validator(name, formats).iter_errors(obj))
    if error is not None:
        raise errors.Invalid(f"Provided object does not match schema '{name}': {error.message}")


class SchemaResource:
    def __init__(self, name: str, formats: Formats):
        self.name = name
        self.formats = formats

    def on_get(self, req, resp):
        common.reject_body(req)
        common.send_json(resp, SCHEMAS[self.name](self.formats))
