"""glancelite: a drop-in, Glance-compatible image service."""

import warnings

__version__ = "0.1.0"

# oslo.messaging depends on oslo.service, which installs eventlet; with eventlet importable,
# futurist (under taskflow) and oslo.service's eventlet backend warn at import that eventlet is
# deprecated. glancelite never runs eventlet (gunicorn threads): these say nothing to an operator.
for _message in (
    r"\s*Eventlet is deprecated",
    r"eventletutils module is deprecated",
    r".*'oslo_service\.eventlet_backdoor' module usage is deprecated",
):
    warnings.filterwarnings("ignore", message=_message)
