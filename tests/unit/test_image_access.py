"""Who may see and target an image (services/image_access.py), on real repositories."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from glancelite import config, errors
from glancelite.context import RequestContext
from glancelite.db import engine as db_engine
from glancelite.db import tables
from glancelite.db.repositories import ImageRepository, MemberRepository
from glancelite.services.image_access import ImageAccess
from glancelite.services.policy import Policy

READER = ("reader", "member")


@pytest.fixture
def images(engine):
    return ImageRepository(engine)


@pytest.fixture
def members(engine):
    return MemberRepository(engine)


@pytest.fixture
def access(images, members):
    return ImageAccess(Policy(config.policy_conf()), images, members)


def ctx(project: str | None, roles=READER, is_admin: bool = False) -> RequestContext:
    return RequestContext(project_id=project, user_id="u", roles=roles, is_admin=is_admin)


def new(images: ImageRepository, owner: str | None = "owner", visibility: str = "shared"):
    return images.create_image({"id": str(uuid.uuid4()), "owner": owner, "visibility": visibility})


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_other_projects_do_not_see_private_or_unshared_images(access, images, visibility):
    image = new(images, visibility=visibility)
    assert access.visible_image(ctx("owner"), image.id) == image
    with pytest.raises(errors.NotFound, match=f"No image found with ID {image.id}"):
        access.visible_image(ctx("other"), image.id)
    with pytest.raises(errors.NotFound, match="^Image x not found.$"):
        access.visible_image(ctx("other"), image.id, "Image x not found.")


@pytest.mark.parametrize("visibility", ["public", "community"])
def test_everyone_sees_public_and_community_images(access, images, visibility):
    image = new(images, visibility=visibility)
    assert access.can_see(ctx("other"), image)
    assert access.target(ctx("other"), image)["member_id"] is None


def test_a_member_of_any_status_sees_a_shared_image_and_is_its_target_member(access, images, members):
    image = new(images)
    members.create_member(image.id, "member")  # pending
    assert access.can_see(ctx("member"), image)
    assert access.target(ctx("member"), image) == {
        "project_id": "owner",
        "owner": "owner",
        "visibility": "shared",
        "member_id": "member",
        "image_id": image.id,
    }
    assert access.target(ctx("other"), image)["member_id"] is None
    assert [t["member_id"] for t in access.targets(ctx("member"), [image, new(images)])] == ["member", None]


def test_admins_and_ownerless_images(access, images):
    private = new(images, visibility="private")
    assert access.can_see(ctx("other", roles=("admin",), is_admin=True), private)
    # An ownerless image passes the database rule; the get_image policy still decides.
    assert access.can_see(ctx("other"), new(images, owner=None, visibility="shared"))
    assert not access.can_see(ctx("other"), new(images, owner=None, visibility="private"))


def test_get_image_policy_applies_to_visible_images(access, images):
    image = new(images, visibility="public")
    assert not access.can_see(ctx("other", roles=()), image)  # no reader role
    with pytest.raises(errors.NotFound):
        access.visible_image(ctx("other", roles=()), image.id)


def test_authorize_is_404_when_invisible_and_403_when_refused(access, images):
    image = new(images, visibility="public")
    assert access.authorize(ctx("owner"), image.id, "modify_image") == image
    with pytest.raises(errors.Forbidden, match="You are not authorized to complete modify_image action."):
        access.authorize(ctx("other"), image.id, "modify_image")
    private = new(images, visibility="private")
    with pytest.raises(errors.NotFound, match="Failed to find"):
        access.authorize(ctx("other"), private.id, "delete_image", not_found="Failed to find")


def test_build_services_shares_one_access_object_in_a_frozen_record(tmp_path):
    from glancelite import config
    from glancelite.app import build_services
    from tests.support.server import write_config

    settings = config.load([str(write_config(tmp_path))]).settings
    engine = db_engine.create_engine(settings.database)
    tables.metadata.create_all(engine)
    engine.dispose()
    services = build_services(settings)
    try:
        with pytest.raises(dataclasses.FrozenInstanceError):
            services.images = None  # type: ignore[misc]
        shared = services.images.access
        for service in (
            services.image_data,
            services.imports,
            services.members,
            services.locations,
            services.tasks,
            services.cache,
            services.images.locations,
        ):
            assert service.access is shared
        assert services.tasks.images is services.images
        assert services.image_data.cache is services.cache.download_cache
    finally:
        services.close()
