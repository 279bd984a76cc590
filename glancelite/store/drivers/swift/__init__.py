"""Swift store (python-swiftclient), as glance_store's two stores:

- ``single_tenant.SwiftDriver``: every image in one container of the store's own account;
- ``multi_tenant.MultiTenantSwiftDriver``: each image in a container of the caller's own
  account, through a per-caller ``CallerView`` (``for_context``);

``SwiftDriver.variant`` picks between them by ``swift_store_multi_tenant``. ``client``
holds what both send to Swift (tokens, segmented uploads, ranged reads, deletes),
``auth`` the credentials, ``options`` the declarations (importable without swiftclient).
This package module imports nothing, so ``options`` stays light.
"""
