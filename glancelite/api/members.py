"""/v2/images/{id}/members and /v2/images/{id}/members/{member_id}."""

from __future__ import annotations

from glancelite import errors
from glancelite.api import common, views
from glancelite.services import Services

MAX_MEMBER_LENGTH = 255


def _member_from(body: dict) -> str:
    if "member" not in body:
        raise errors.Invalid("Member to be added not specified")
    member = body["member"]
    if not isinstance(member, str) or not member.strip():
        raise errors.Invalid("Member can't be empty")
    if len(member) > MAX_MEMBER_LENGTH:
        raise errors.Invalid(f"Member can't be longer than {MAX_MEMBER_LENGTH} characters")
    return member


def _status_from(body: dict) -> str:
    if "status" not in body:
        raise errors.Invalid("Status not specified")
    status = body["status"]
    if not isinstance(status, str):
        raise errors.Invalid("Incorrect request: Status must be one of pending, accepted, rejected")
    return status


class MembersResource:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, image_id):
        common.reject_body(req)
        common.check_uuid(image_id)
        members = self.services.members.list(common.context(req), image_id)
        common.send_json(resp, {"members": [views.member(m) for m in members], "schema": "/v2/schemas/members"})

    def on_post(self, req, resp, image_id):
        ctx = common.mutating_context(req)
        body = common.read_json(req, expect=dict)
        member_id = _member_from(body)
        common.check_uuid(image_id)
        # COMPAT: creating a member answers 200, not 201.
        common.send_json(resp, views.member(self.services.members.create(ctx, image_id, member_id)))


class MemberResource:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, image_id, member_id):
        common.reject_body(req)
        common.check_uuid(image_id)
        common.check_text(member_id, "member")
        common.send_json(resp, views.member(self.services.members.show(common.context(req), image_id, member_id)))

    def on_put(self, req, resp, image_id, member_id):
        ctx = common.mutating_context(req)
        body = common.read_json(req, expect=dict)
        status = _status_from(body)
        common.check_uuid(image_id)
        common.check_text(member_id, "member")
        common.send_json(resp, views.member(self.services.members.update(ctx, image_id, member_id, status)))

    def on_delete(self, req, resp, image_id, member_id):
        ctx = common.mutating_context(req)
        common.reject_body(req)
        common.check_uuid(image_id)
        common.check_text(member_id, "member")
        self.services.members.delete(ctx, image_id, member_id)
        resp.status = "204 No Content"
