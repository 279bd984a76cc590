"""Image members: share a ``shared`` image with other projects, who accept or reject it."""

from __future__ import annotations

from glancelite import errors, model
from glancelite.context import RequestContext
from glancelite.db.repositories import MemberRepository
from glancelite.services.image_access import ImageAccess
from glancelite.services.notifier import Notifier
from glancelite.services.policy import Policy
from glancelite.settings import Settings
from glancelite.store import acls as store_acls
from glancelite.store.stores import StoreSet

STATUSES = tuple(s.value for s in model.MemberStatus)


class MemberService:
    def __init__(
        self,
        settings: Settings,
        *,
        members: MemberRepository,
        access: ImageAccess,
        policy: Policy,
        stores: StoreSet,
        notifier: Notifier,
    ):
        self.settings = settings
        self.members = members
        self.access = access  # visibility and authorization of the image
        self.policy = policy
        self.stores = stores  # read ACLs follow the members
        self.notifier = notifier  # image.member.create, image.member.update, image.member.delete

    def _image(self, ctx: RequestContext, image_id: str) -> model.Image:
        return self.access.visible_image(ctx, image_id, f"Image {image_id} not found.")

    def _enforce(self, ctx, image, rule: str, message: str) -> None:
        self.policy.enforce(ctx, rule, self.access.target(ctx, image), message)

    @staticmethod
    def _only_shared(image: model.Image) -> None:
        if image.visibility != model.Visibility.SHARED:
            raise errors.Forbidden("Only shared images have members.")

    def _is_owner_or_admin(self, ctx: RequestContext, image: model.Image) -> bool:
        return self.policy.is_admin(ctx) or (image.owner is not None and image.owner == ctx.project_id)

    def list(self, ctx: RequestContext, image_id: str) -> list[model.Member]:
        image = self._image(ctx, image_id)
        self._enforce(ctx, image, "get_members", f"Not allowed to list members for image {image_id}.")
        self._only_shared(image)
        members = self.members.list_members(image_id)
        if self._is_owner_or_admin(ctx, image):
            return members
        # A member sees only its own membership.
        return [m for m in members if m.member_id == ctx.project_id]

    def show(self, ctx: RequestContext, image_id: str, member_id: str) -> model.Member:
        image = self._image(ctx, image_id)
        missing = errors.NotFound(f"Not found member {member_id} for image {image_id}")
        # COMPAT: Glance turns a forbidden member show into 404.
        if not self.policy.check(ctx, "get_member", self.access.target(ctx, image)):
            raise missing
        if not self._is_owner_or_admin(ctx, image) and member_id != ctx.project_id:
            raise missing
        member = self.members.find_member(image_id, member_id)
        if member is None:
            raise missing
        return member

    def create(self, ctx: RequestContext, image_id: str, member_id: str) -> model.Member:
        image = self._image(ctx, image_id)
        self._enforce(ctx, image, "add_member", f"Not allowed to create members for image {image_id}.")
        self._only_shared(image)
        member = self.members.create_member(image_id, member_id, quota=self.settings.image_member_quota)
        store_acls.sync(self.stores, self.members, ctx, image)
        self.notifier.member("image.member.create", member)
        return member

    def update(self, ctx: RequestContext, image_id: str, member_id: str, status: str) -> model.Member:
        if status not in STATUSES:
            raise errors.Invalid(f"Incorrect request: Status must be one of {', '.join(STATUSES)}")
        image = self._image(ctx, image_id)
        self._only_shared(image)
        target = self.access.target(ctx, image)
        target["member_id"] = member_id
        self.policy.enforce(ctx, "modify_member", target, f"Not allowed to update members for image {image_id}.")
        if not self.policy.is_admin(ctx) and member_id != ctx.project_id:
            # The owner offers; only the member itself accepts or rejects.
            raise errors.Forbidden(f"Not allowed to update members for image {image_id}.")
        if self.members.find_member(image_id, member_id) is None:
            raise errors.NotFound(f"Not found member {member_id} for image {image_id}")
        member = self.members.update_member(image_id, member_id, status)
        self.notifier.member("image.member.update", member)
        return member

    def delete(self, ctx: RequestContext, image_id: str, member_id: str) -> None:
        image = self._image(ctx, image_id)
        self._enforce(ctx, image, "delete_member", f"Not allowed to delete members for image {image_id}.")
        self._only_shared(image)
        member = self.members.find_member(image_id, member_id) if self.notifier.wants("image.member.delete") else None
        self.members.delete_member(image_id, member_id)
        store_acls.sync(self.stores, self.members, ctx, image)
        if member is not None:
            self.notifier.member("image.member.delete", member, deleted=True)
