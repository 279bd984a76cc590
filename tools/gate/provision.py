"""Provision the gate's keystone for the image service (idempotent).

Run with .venv-gate's python (openstacksdk comes with python-openstackclient):
project ``service``, user ``glance`` with roles ``service`` and ``admin`` on it,
the ``image`` service and its public/internal/admin endpoints in RegionOne; with
IMAGE_REMOTE_URL also an ``image_remote`` service pointing at a second image node
(tempest's ``[image] alternate_image_endpoint``, for its cross-worker tests).

    provision.py KEYSTONE_URL IMAGE_URL GLANCE_PASSWORD [IMAGE_REMOTE_URL]
"""

from __future__ import annotations

import sys

import openstack

REGION = "RegionOne"
DOMAIN = "default"


def connect(keystone_url: str):
    return openstack.connect(
        auth_url=keystone_url + "/v3",
        username="admin",
        password="admin",
        project_name="admin",
        user_domain_id=DOMAIN,
        project_domain_id=DOMAIN,
        region_name=REGION,
        identity_api_version="3",
    )


def provision(conn, image_url: str, glance_password: str) -> None:
    identity = conn.identity
    project = identity.find_project("service", domain_id=DOMAIN) or identity.create_project(
        name="service", domain_id=DOMAIN, description="Service users"
    )
    user = identity.find_user("glance", domain_id=DOMAIN)
    if user is None:
        user = identity.create_user(
            name="glance", password=glance_password, domain_id=DOMAIN, default_project_id=project.id
        )
    else:
        identity.update_user(user, password=glance_password)
    for role_name in ("service", "admin"):
        role = identity.find_role(role_name) or identity.create_role(name=role_name)
        identity.assign_project_role_to_user(project, user, role)

    catalog_service(identity, "image", "glance", "Image service (glancelite)", image_url)


def catalog_service(identity, service_type: str, name: str, description: str, url: str) -> None:
    """The service of that type (made if missing) with public/internal/admin endpoints at ``url``."""
    service = next((s for s in identity.services() if s.type == service_type), None) or identity.create_service(
        name=name, type=service_type, description=description
    )
    existing = {e.interface: e for e in identity.endpoints(service_id=service.id)}
    for interface in ("public", "internal", "admin"):
        endpoint = existing.get(interface)
        if endpoint is None:
            identity.create_endpoint(service_id=service.id, interface=interface, url=url, region_id=REGION)
        elif endpoint.url != url:
            identity.update_endpoint(endpoint, url=url)


def main(argv: list[str]) -> int:
    keystone_url, image_url, glance_password, *remote = argv
    conn = connect(keystone_url)
    provision(conn, image_url, glance_password)
    if remote:
        # A second node of the same image service (same database and stores, its own staging).
        catalog_service(conn.identity, "image_remote", "glance_remote", "Second image node (glancelite)", remote[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
