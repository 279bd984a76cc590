"""Glance's ``_set_acls`` (glance/location.py): mirror who may read an image onto its store data.

Only stores acting with the caller's credentials keep such ACLs (multi-tenant swift:
the container's read ACL); for every other store this does nothing and costs nothing.
As in Glance, ``public`` means visibility ``public`` only (community images stay
readable by their owner's account alone), and every member counts, whatever its status.
Called with the request's caller after an upload, an import into a store, an image update
and a member change. It lives in the store layer: it needs only the stores and a reader of
the image's members (the members repository), which the caller passes in.
A store refusing the change is logged, not raised: the image's own change is done (Glance
would answer 500 there, for instance when a member, not the owner, triggers it).
"""

from __future__ import annotations

import logging

from glancelite import errors, model
from glancelite.context import RequestContext

LOG = logging.getLogger(__name__)


def sync(stores, members_repo, ctx: RequestContext | None, image: model.Image) -> None:
    if stores is None:
        return
    locations = [loc for loc in image.locations if stores.keeps_acls(loc)]
    if not locations:
        return
    public = image.visibility == model.Visibility.PUBLIC
    members = [] if public else [m.member_id for m in members_repo.list_members(image.id)]
    for location in locations:
        try:
            stores.set_acls(location, public=public, read_projects=members, context=ctx)
        except errors.GlanceliteError as exc:
            LOG.warning("image %s: could not set the read ACL of its data: %s", image.id, exc.message)
