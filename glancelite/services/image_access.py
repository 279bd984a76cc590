"""May this caller see, or act on, this image: the one answer every service asks for.

Glance's DB visibility rule (admin, no owner, owner, public/community, or a
member of a shared image), the membership lookup, the ``get_image`` policy,
and the policy target built from them (``image_target``). Images the caller may
not see are masked as NotFound, as Glance does; a visible image that a rule
refuses is Forbidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db.repositories import ImageRepository, MemberRepository
from glancelite.services.policy import Policy, image_target


class ImageAccess:
    def __init__(self, policy: Policy, images: ImageRepository, members: MemberRepository):
        self.policy = policy
        self.images = images
        self.members = members

    def member_of(self, ctx: RequestContext, image: model.Image) -> str | None:
        """The caller's project when it is a member (any status) of the shared image, else None."""
        if image.visibility != model.Visibility.SHARED or ctx.project_id is None:
            return None
        member = self.members.find_member(image.id, ctx.project_id)
        return member.member_id if member else None

    def target(self, ctx: RequestContext, image: model.Image) -> dict[str, Any]:
        """Glance's ImageTarget for ``image`` as seen by the caller."""
        return image_target(image, self.member_of(ctx, image))

    def targets(self, ctx: RequestContext, images: Sequence[model.Image]) -> list[dict[str, Any]]:
        """``target`` for a page of images, with one membership query."""
        shared = [i.id for i in images if i.visibility == model.Visibility.SHARED]
        memberships = self.members.member_projects(shared, ctx.project_id)
        return [image_target(i, ctx.project_id if i.id in memberships else None) for i in images]

    def can_see(self, ctx: RequestContext, image: model.Image, target: Mapping[str, Any] | None = None) -> bool:
        """Glance's DB visibility rule plus the get_image policy."""
        if not self._db_visible(ctx, image, target):
            return False
        return self.policy.check(ctx, "get_image", target or self.target(ctx, image))

    def _db_visible(self, ctx: RequestContext, image: model.Image, target: Mapping[str, Any] | None) -> bool:
        if ctx.is_admin or image.owner is None:
            return True
        if image.owner == ctx.project_id:
            return True
        if image.visibility in (model.Visibility.PUBLIC, model.Visibility.COMMUNITY):
            return True
        if image.visibility == model.Visibility.SHARED:
            member = target.get("member_id") if target is not None else self.member_of(ctx, image)
            return member is not None
        return False

    def visible_image(self, ctx: RequestContext, image_id: str, not_found: str | None = None) -> model.Image:
        """The image if the caller may see it; NotFound (Glance's masking) otherwise."""
        message = not_found or f"No image found with ID {image_id}"
        try:
            image = self.images.get_image(image_id)
        except errors.NotFound:
            raise errors.NotFound(message) from None
        if not self.can_see(ctx, image):
            raise errors.NotFound(message)
        return image

    def authorize(self, ctx: RequestContext, image_id: str, rule: str, *, not_found: str | None = None) -> model.Image:
        """Fetch and check ``rule``: 404 if invisible to the caller, 403 if visible but not allowed."""
        image = self.visible_image(ctx, image_id, not_found)
        self.policy.enforce(ctx, rule, self.target(ctx, image), f"You are not authorized to complete {rule} action.")
        return image
