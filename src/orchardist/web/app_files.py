"""What devices fetch to install an in-house app, under signed links that expire
(orchardist.apps.urls makes them):

- GET /apps/manifest/{bundle id}/{version id}.plist?t= — the manifest, built from the
  stored version when asked (so the .ipa and icon links inside are fresh), text/xml;
- GET|HEAD /apps/files/{sha256}.ipa?t= — the .ipa, application/octet-stream, streamed from
  the file store, with single-range requests (206, 416) so an interrupted download resumes;
- GET|HEAD /apps/icons/{sha256}.png?t= — an icon, image/png, for the manifest and the
  catalog.

The token is checked before anything else, against the subject the path names: no token,
a forged or altered one, or one for another path answer 403 with the reason (and a log
line, never the token); an expired one says to fetch a new link. Only then is the file
looked up: a valid link to a file that is gone answers 404. The .ipa and icons carry their
SHA-256 as a strong ETag: the file under a hash never changes.
"""

from __future__ import annotations

import structlog
from fastapi import Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from orchardist.apps.files import FileMissingError, FileStore, is_sha256
from orchardist.apps.ranges import UnsatisfiableRangeError, if_range_allows, requested_range
from orchardist.apps.urls import (
    AppUrls,
    icon_subject,
    ipa_subject,
    manifest_subject,
    version_manifest,
)
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.apps")
IPA = "application/octet-stream"
PNG = "image/png"
MANIFEST = "text/xml"
# The URL is the permission and the bytes under a hash never change: browsers may keep
# them, shared caches may not (a link shared by mistake should die with its token).
CACHE_FILE = "private, max-age=3600"
_REASONS = {
    "missing": "This link has no token. Open the app catalog again for a working link.",
    "malformed": "This link's token is damaged. Open the app catalog again for a working link.",
    "bad signature": "This link is not one this server made, or was changed.",
    "expired": "This link has expired. Open the app catalog again for a fresh link.",
}


class LinkRefusedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _urls(request: Request) -> AppUrls:
    urls = _services(request).app_urls
    assert urls is not None, "the app links are wired in open_services"
    return urls


def _files(request: Request) -> FileStore:
    files = _services(request).files
    assert files is not None, "the file store is wired in open_services"
    return files


def _check(request: Request, subject: str) -> Response | None:
    """None when the request's token grants `subject`, else the 403 to answer."""
    token = request.query_params.get("t")
    reason = "missing" if not token else _urls(request).check(subject, token).reason
    if reason is None:
        return None
    address = request.client.host if request.client else "unknown"
    log.warning("app_link_refused", subject=subject, reason=reason, address=address)
    return PlainTextResponse(f"{_REASONS[reason]}\n", status_code=403)


def _not_found(what: str) -> Response:
    return PlainTextResponse(
        f"{what} is no longer on this server. Open the app catalog again.\n", status_code=404
    )


async def manifest(request: Request) -> Response:
    bundle_id = request.path_params["bundle_id"]
    version_id: int = request.path_params["version_id"]
    refused = _check(request, manifest_subject(bundle_id, version_id))
    if refused is not None:
        return refused
    storage = _services(request).storage
    version = await storage.app_version(bundle_id, version_id)
    if version is None:
        return _not_found("This version of the app")
    body = version_manifest(_urls(request), await storage.get_app(bundle_id), version)
    log.info("app_manifest_served", bundle_id=bundle_id, version_id=version_id)
    return Response(body, media_type=MANIFEST, headers={"Cache-Control": "no-store"})


async def ipa(request: Request) -> Response:
    sha256 = request.path_params["sha256"]
    return await _file(request, sha256, ipa_subject(sha256), IPA, "The app file")


async def icon(request: Request) -> Response:
    sha256 = request.path_params["sha256"]
    return await _file(request, sha256, icon_subject(sha256), PNG, "The icon")


async def _file(
    request: Request, sha256: str, subject: str, media_type: str, what: str
) -> Response:
    refused = _check(request, subject)
    if refused is not None:
        return refused
    files = _files(request)
    try:
        size = files.size(sha256) if is_sha256(sha256) else None
    except FileMissingError:
        size = None
    if size is None:
        return _not_found(what)
    etag = f'"{sha256}"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": CACHE_FILE}
    try:
        wanted = requested_range(request.headers.get("range"), size)
    except UnsatisfiableRangeError:
        headers["Content-Range"] = f"bytes */{size}"
        return PlainTextResponse("The range asked for lies outside the file.\n", 416, headers)
    if wanted is not None and not if_range_allows(request.headers.get("if-range"), etag):
        wanted = None
    start, end, status = 0, size, 200
    if wanted is not None:
        start, end, status = wanted.start, wanted.end, 206
        headers["Content-Range"] = wanted.content_range(size)
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    if status == 200:
        log.info("app_file_served", sha256=sha256, size=size, media_type=media_type)
    chunks = files.iter_range(sha256, start, end)
    return StreamingResponse(chunks, status, headers, media_type=media_type)


routes = [
    Route("/apps/manifest/{bundle_id}/{version_id:int}.plist", manifest, methods=["GET"]),
    Route("/apps/files/{sha256}.ipa", ipa, methods=["GET", "HEAD"]),
    Route("/apps/icons/{sha256}.png", icon, methods=["GET", "HEAD"]),
]
