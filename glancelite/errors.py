"""The one exception tree.

Every layer raises these (or subclasses defined next to the code that raises
them); api/errors.py turns the category into an HTTP status in one table.
"""

from __future__ import annotations

from collections.abc import Mapping


class GlanceliteError(Exception):
    """Base class. ``message`` is the user-facing explanation Glance would show."""

    default_message = "An unknown error occurred."

    def __init__(self, message: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.message = message or self.default_message
        # Extra response headers the HTTP layer must send (Allow, Accept-Patch, Retry-After...).
        self.headers = dict(headers or {})
        super().__init__(self.message)

    @property
    def public_message(self) -> str:
        """What a client is told. An error whose ``message`` carries a backend's own words (its
        endpoint, its exception text) tells clients less; the full message goes to the log."""
        return self.message


class Invalid(GlanceliteError):
    default_message = "Invalid request."


class Unauthorized(GlanceliteError):
    default_message = "This server could not verify that you are authorized to access the document you requested."


class Forbidden(GlanceliteError):
    default_message = "You are not authorized to complete this action."


class NotFound(GlanceliteError):
    default_message = "The resource could not be found."


class MethodNotAllowed(GlanceliteError):
    default_message = "The method is not allowed for this resource."


class Conflict(GlanceliteError):
    default_message = "There was a conflict when trying to complete your request."


class Gone(GlanceliteError):
    default_message = "The resource is no longer available."


class TooLarge(GlanceliteError):
    default_message = "Request entity too large."


class UnsupportedMedia(GlanceliteError):
    default_message = "The request media type is not supported by this server."


class RangeNotSatisfiable(GlanceliteError):
    default_message = "Requested range not satisfiable."


class RequestHeaderTooLarge(GlanceliteError):
    default_message = "Request header fields too large."


class Unavailable(GlanceliteError):
    default_message = "The server is currently unavailable."


class BadGateway(GlanceliteError):
    """Another node this request was forwarded to failed to answer properly."""

    default_message = "The proxy server received an invalid response from an upstream server."


class GatewayTimeout(BadGateway):
    """Another node this request was forwarded to could not be reached."""

    default_message = "The upstream server could not be reached."


class Upstream(GlanceliteError):
    """An error answer from the node a request was forwarded to; its status is passed on as is."""

    def __init__(self, status: str, message: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.status = status  # e.g. "409 Conflict", the remote's code and reason
        super().__init__(message or status, headers=headers)


class ConfigError(GlanceliteError):
    """A configuration the service cannot start with; never reaches HTTP.

    ``group`` and ``option`` name where the operator has to look.
    """

    def __init__(self, group: str, option: str | None, message: str):
        self.group = group
        self.option = option
        where = f"[{group}] {option}" if option else f"[{group}]"
        super().__init__(f"{where}: {message}")
