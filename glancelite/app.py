"""Composition root: settings in, services built once, the falcon app out."""

from __future__ import annotations

import logging

import falcon

from glancelite import config, errors
from glancelite.api import errors as api_errors
from glancelite.api import routes
from glancelite.api.admission import TransferAdmission
from glancelite.api.middleware import RequestContextMiddleware, RequestMetrics
from glancelite.db import engine as db_engine
from glancelite.db.repositories import (
    ImageRepository,
    LocationRepository,
    MemberRepository,
    MetadefRepository,
    ScrubQueueRepository,
    StoreReferenceRepository,
    TaskRepository,
    UsageRepository,
)
from glancelite.metrics import Metrics
from glancelite.services import ScrubberServices, Services, StoreAuditServices
from glancelite.services import cache as image_cache
from glancelite.services import notifier as notifications
from glancelite.services.health import HealthService
from glancelite.services.image_access import ImageAccess
from glancelite.services.image_data import ImageDataService
from glancelite.services.image_locations import LocationEditor
from glancelite.services.images import ImageService
from glancelite.services.imports import ImportService
from glancelite.services.locations import LocationService
from glancelite.services.members import MemberService
from glancelite.services.metadefs import MetadefService
from glancelite.services.policy import Policy
from glancelite.services.property_protections import PropertyProtections
from glancelite.services.quotas import Quotas
from glancelite.services.scrubber import Scrubber
from glancelite.services.stage_hosts import StageHosts
from glancelite.services.store_audit import StoreAudit
from glancelite.services.tasks import TaskService
from glancelite.settings import Settings
from glancelite.store.areas import StagingArea, WorkArea
from glancelite.store.stores import StoreSet
from glancelite.tasks import runner as task_runner
from glancelite.tasks.ingest import Ingest
from glancelite.tasks.steps import ImportEnv

LOG = logging.getLogger(__name__)


def build_services(settings: Settings, conf=None) -> Services:
    """Build every collaborator once, in dependency order; ``conf`` is only for libraries that need oslo (policy).

    Then the start-up work: recover interrupted imports and uploads, remove partial files, start the prefetcher.
    """
    metrics = Metrics()  # the process's one set: every collaborator below records into it
    engine = db_engine.create_engine(settings.database, metrics=metrics)
    images = ImageRepository(engine)
    members = MemberRepository(engine)
    locations = LocationRepository(engine)
    tasks = TaskRepository(engine)
    policy = Policy(config.policy_conf(conf))
    # Glance's notifications through oslo.messaging; sends nothing (and imports nothing) without a driver.
    notifier = notifications.build(settings.notifications, conf)
    stores = StoreSet(settings, metrics=metrics)
    access = ImageAccess(policy, images, members)  # who may see / target which image, for every service
    quotas = Quotas(settings, UsageRepository(engine))  # keystone unified limits (no-op unless use_keystone_limits)
    cache = image_cache.build(settings, images, access, policy, stores)
    # The one path every byte takes into a store: upload, stage, each import's store writes, location hashing.
    ingest = Ingest(settings, stores=stores, images=images, locations=locations, members=members)
    image_data = ImageDataService(
        settings,
        images=images,
        locations=locations,
        members=members,
        access=access,
        policy=policy,
        stores=stores,
        quotas=quotas,
        cache=cache.download_cache,
        notifier=notifier,
        ingest=ingest,
    )
    # One import runner per process (the taskflow stop-file spec-lite).
    runner = task_runner.for_process(
        max_workers=settings.taskflow_max_workers,
        engine_mode=settings.taskflow_engine_mode,
        stop_file=settings.healthcheck_disable_file,
    )
    env = ImportEnv(
        settings=settings,
        images=images,
        locations=locations,
        tasks=tasks,
        members=members,
        stores=stores,
        staging=StagingArea(stores, settings.staging_store),
        work=WorkArea(stores, settings.tasks_store),
        ingest=ingest,
        events=notifier,
        metrics=metrics,
    )
    stage_hosts = StageHosts(settings)  # the nodes holding staged data (several nodes, one database)
    # [taskflow_jobboard]: imports go through the shared job board; this worker's conductor runs on the runner.
    import_runner = _job_board(settings, runner, env) if settings.jobboard.enabled else runner
    imports = ImportService(
        settings,
        env=env,
        access=access,
        policy=policy,
        quotas=quotas,
        runner=import_runner,
        stage_hosts=stage_hosts,
        notifier=notifier,
    )
    image_service = ImageService(
        settings,
        images=images,
        members=members,
        access=access,
        policy=policy,
        quotas=quotas,
        stores=stores,
        locations=LocationEditor(
            settings, images=images, locations=locations, access=access, policy=policy, stores=stores
        ),
        imports=imports,
        stage_hosts=stage_hosts,
        cache=cache,
        property_protections=PropertyProtections.build(settings, policy),
        notifier=notifier,
    )
    services = Services(
        settings=settings,
        policy=policy,
        stores=stores,
        quotas=quotas,
        cache=cache,
        image_data=image_data,
        imports=imports,
        images=image_service,
        members=MemberService(
            settings, members=members, access=access, policy=policy, stores=stores, notifier=notifier
        ),
        locations=LocationService(settings, env=env, access=access, policy=policy, imports=imports, runner=runner),
        tasks=TaskService(settings, tasks=tasks, access=access, policy=policy, images=image_service, imports=imports),
        metadefs=MetadefService(MetadefRepository(engine), policy),
        notifier=notifier,
        health=HealthService(
            ping_database=lambda: db_engine.ping(engine),
            stores=stores,
            stop_file=settings.healthcheck_disable_file,
            ping_job_board=import_runner.ping if import_runner is not runner else None,
        ),
        metrics=metrics,
        close_database=engine.dispose,
    )
    _recover_at_start(imports, image_data, stores)
    cache.start()
    return services


def _job_board(settings: Settings, runner: task_runner.Runner, env: ImportEnv):
    """This worker's side of the job board and its conductor thread (one per gunicorn worker).

    Imported here: the board brings taskflow's conductors and the redis client, which a
    worker without [taskflow_jobboard] never needs (worker memory, issue 12).
    """
    from glancelite.tasks import jobboard as task_jobboard

    board = task_jobboard.JobBoard(
        settings.jobboard,
        runner=runner,
        env=env,
        self_url=settings.worker_self_reference_url or settings.public_endpoint,
        persistence_connection=settings.jobboard.persistence_connection
        or db_engine.database_url(settings.database).render_as_string(hide_password=False),
    )
    return board.start()


def _recover_at_start(imports: ImportService, image_data: ImageDataService, stores: StoreSet) -> None:
    """Imports whose worker died are failed and their images put back; a worker that died
    mid-upload (SIGKILL, OOM) left its image saving and its temp file behind.

    A worker that gunicorn starts while the database is away must still come up and answer 503:
    a worker that fails to boot makes gunicorn stop the whole service. So recovery never stops
    a start, whatever it meets; the next worker to start recovers what this one could not.
    """
    for recover in (imports.recover, image_data.recover_dead_uploads, stores.remove_orphaned_partials):
        try:
            recover()
        except errors.Unavailable as exc:
            LOG.warning("start-up recovery step %s skipped, the database is unavailable: %s", recover.__qualname__, exc)
        except Exception:
            LOG.exception("start-up recovery step %s failed; the worker starts anyway", recover.__qualname__)


def build_scrubber(settings: Settings) -> ScrubberServices:
    """glancelite-scrubber's collaborators, from the same settings and repositories as the API's.

    No start-up work: the scrubber runs no imports and serves no uploads.
    """
    engine = db_engine.create_engine(settings.database)
    stores = StoreSet(settings)
    scrubber = Scrubber(settings, queue=ScrubQueueRepository(engine), stores=stores)
    return ScrubberServices(settings=settings, scrubber=scrubber, stores=stores, close_database=engine.dispose)


def build_store_audit(settings: Settings) -> StoreAuditServices:
    """``glancelite-manage store audit``'s collaborators. The stores are built as a configuration
    check builds them (``prepare=False``): the audit creates nothing; it deletes only when asked.
    They act as their operator (``operator=True``): a multi-tenant swift store lists its tenants'
    accounts with its reseller-admin login."""
    engine = db_engine.create_engine(settings.database)
    stores = StoreSet(settings, prepare=False, operator=True)
    audit = StoreAudit(
        stores=stores,
        references=StoreReferenceRepository(engine),
        images=ImageRepository(engine),
        tasks=TaskRepository(engine),
    )
    return StoreAuditServices(audit=audit, stores=stores, close_database=engine.dispose)


def create_app(settings: Settings, services: Services) -> falcon.App:
    app = falcon.App(
        middleware=[
            RequestMetrics(services.metrics),  # first: it times and counts every request falcon answers
            RequestContextMiddleware(
                settings.auth_flavor, services.policy.is_admin, anonymous=settings.allow_anonymous_access
            ),
            # After identity: an unauthenticated transfer is refused with 401 and takes no slot.
            TransferAdmission(settings.max_transfers_per_worker, settings.client_socket_timeout),
        ],
        cors_enable=False,
    )
    # Image data is streamed by the resources themselves; never let falcon buffer forms.
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = True
    api_errors.install(app)
    routes.register(app, services)
    return app
