"""The connection to a Label Studio server through the official SDK (label-studio-sdk), and the
one error of this package.

The URL comes from ``--label-studio URL`` or ``LABEL_STUDIO_URL``; the token from
``LABEL_STUDIO_API_KEY`` -- a legacy token or a personal access token (a JWT refresh token:
the SDK exchanges it for access tokens). Without the SDK every entry point raises
:class:`LabelStudioError` naming the extra to install.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional, Tuple

__all__ = ["Connection", "connect", "URL_ENV", "TOKEN_ENV", "require_sdk", "LabelStudioError", "EXTRA_HINT"]

EXTRA_HINT = 'pip install "tavaal[labelstudio]"'
"""How to install what this package needs (the optional extra: label-studio-sdk)."""
URL_ENV = "LABEL_STUDIO_URL"
TOKEN_ENV = "LABEL_STUDIO_API_KEY"
TIMEOUT_S = 60.0
"""Seconds one request may take before it is given up."""


class LabelStudioError(ValueError):
    """A Label Studio request that cannot be done: missing SDK, server unreachable, a token it
    refuses, a project that does not fit, images it does not serve. Raised before the work
    directory changes, except where the message says otherwise."""


def require_sdk():
    """The ``label_studio_sdk`` module, or :class:`LabelStudioError` naming the extra."""
    try:
        import label_studio_sdk
    except ImportError:
        raise LabelStudioError(f"talking to Label Studio needs the label-studio-sdk package: {EXTRA_HINT}") from None
    return label_studio_sdk


class Connection:
    """An authenticated client of one Label Studio server: ``sdk`` (a ``LabelStudio`` client),
    ``url``, and the few raw requests the SDK has no call for (:meth:`fetch`)."""

    def __init__(self, url: str, token: str):
        sdk = require_sdk()
        self.url = url.rstrip("/")
        self.sdk = sdk.LabelStudio(base_url=self.url, api_key=token, timeout=TIMEOUT_S)

    def fetch(self, path: str) -> Tuple[int, bytes]:
        """(HTTP status, body) of a GET of ``path``: a path on the server (e.g. an image URL
        ``/data/local-files/?d=...``, authenticated) or an absolute URL (another host: sent
        without the token)."""
        import httpx

        url = path if path.startswith(("http://", "https://")) else self.url + "/" + path.lstrip("/")
        # the SDK's headers carry the right Authorization (legacy or access token); this server only
        headers = self.sdk._client_wrapper.get_headers() if url.startswith(self.url + "/") else {}
        try:
            response = httpx.get(url, headers=headers, timeout=TIMEOUT_S, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise LabelStudioError(f"Label Studio at {self.url} cannot be reached ({exc})") from None
        return response.status_code, response.content

    def call(self, what: str, function, *args, **kwargs) -> Any:
        """``function(*args, **kwargs)`` (an SDK call); its HTTP and API errors become one
        :class:`LabelStudioError` saying ``what`` was being done."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return function(*args, **kwargs)
        except httpx.HTTPError as exc:
            raise LabelStudioError(f"{what}: Label Studio at {self.url} cannot be reached ({exc})") from None
        except ApiError as exc:
            status = getattr(exc, "status_code", None)
            hint = {401: f": the token is not accepted (set {TOKEN_ENV} to a legacy token or a personal access "
                         "token from Label Studio's Account & Settings)",
                    403: ": the token's user may not do this",
                    404: ": not found (check --project)"}.get(status, "")
            raise LabelStudioError(f"{what}: Label Studio answered HTTP {status}{hint} ({_body(exc)})") from None

    def tasks(self, project: int, fields: str = "all") -> Iterator[Dict[str, Any]]:
        """Every task of ``project`` as a plain dict (``fields="all"``: with annotations)."""
        pager = self.call(f"listing the tasks of project {project}", self.sdk.tasks.list, project=project,
                          fields=fields, page_size=100)
        for task in self.call(f"listing the tasks of project {project}", list, pager):
            yield task.model_dump(mode="json") if hasattr(task, "model_dump") else dict(task)


def _body(exc) -> str:
    body = getattr(exc, "body", None)
    text = str(body if body is not None else exc)
    return text if len(text) < 400 else text[:400] + " ..."


def connect(url: Optional[str] = None, token: Optional[str] = None) -> Connection:
    """A :class:`Connection` to ``url`` (default ``$LABEL_STUDIO_URL``) with ``token`` (default
    ``$LABEL_STUDIO_API_KEY``); checks both are given and the server answers with this token.
    Raises :class:`LabelStudioError`."""
    require_sdk()
    url = url or os.environ.get(URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    if not url:
        raise LabelStudioError(f"no Label Studio URL: give --label-studio URL or set {URL_ENV}")
    if not url.startswith(("http://", "https://")):
        raise LabelStudioError(f"--label-studio {url!r} is not an http(s) URL (e.g. http://localhost:8080)")
    if not token:
        raise LabelStudioError(f"no Label Studio token: set {TOKEN_ENV} to your legacy token or personal access token "
                               "(Label Studio: Account & Settings)")
    connection = Connection(url, token)
    connection.call("checking the token", connection.sdk.users.whoami)
    return connection
