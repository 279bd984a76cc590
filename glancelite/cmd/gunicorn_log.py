"""gunicorn's error and access logs through the handlers oslo.log set up on the root logger."""

from __future__ import annotations

from gunicorn import glogging

# Glance's access line (eventlet.wsgi's default: client, time, request line, status, bytes,
# seconds), then the x-openstack-request-id answered, so a client's report finds its line.
ACCESS_LOG_FORMAT = '%(h)s - - %(t)s "%(r)s" %(s)s %(b)s %(L)s request_id: %({x-openstack-request-id}o)s'


class OsloLogger(glogging.Logger):
    """Adds no handler of its own: ``gunicorn.error`` and ``gunicorn.access`` propagate to the root
    logger, so log_file, use_json, use_journal, use_syslog and log_config_append apply to them, and
    default_log_levels (e.g. ``gunicorn.access=WARN``) sets their levels. An access line is logged
    in the thread that served the request, so it carries that request's context."""

    def setup(self, cfg):
        self.cfg = cfg
        self._access_log_enabled = True
        for log in (self.error_log, self.access_log):
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)
            # No level is set here: the root's (debug) decides, unless oslo.log gave one.
            log.propagate = True

    def _compute_access_log_enabled(self):
        return True
