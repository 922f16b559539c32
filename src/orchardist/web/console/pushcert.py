"""/console/pushcert: the APNs push certificate — its status for every role, and for
admins (pushcert.manage) a CSR to download and the import of the certificate Apple signs.

Status is `push.certificate.describe`, what `orchardist pushcert show` prints. The CSR is
`push.replacement.request_csr`: its key stays on the server (never shown) until the
certificate is imported with it; `orchardist pushcert csr` does the same with the key in a
file. The import takes the certificate's PEM and, optionally, a key PEM (else the key of
the CSR made here), checked as `orchardist pushcert import --cert --key` checks them, and
stored through `push.replacement.replace`: a certificate for another topic than enrolled
devices use is refused unless the form confirms it (the CLI's --force). Recorded as
`pushcert.import` (targets: the topic; detail: force, not_after) and `pushcert.csr`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from orchardist.accounts.permissions import Actor, Permission
from orchardist.config import Settings
from orchardist.pki.store import PkiFiles
from orchardist.push import replacement
from orchardist.push.certificate import PushCertificateError, describe, from_pem, stored
from orchardist.push.replacement import TopicChangeError
from orchardist.web.console import auditing
from orchardist.web.console.forms import form_of
from orchardist.web.console.session import CurrentAccount, page_router, require, services_of
from orchardist.web.console.templating import render
from orchardist.wiring import Services

router = page_router()
Manager = Annotated[Actor, require(Permission.PUSHCERT)]
PAGE = "/console/pushcert"
MAX_PEM = 64 * 1024  # a certificate or a key: a few kilobytes
CONFIRM = "replace_topic"


@router.get("/pushcert")
async def pushcert_page(request: Request, user: CurrentAccount) -> Response:
    services = services_of(request)
    files = _files(services)
    status: dict[str, Any] | None = None
    problem = None
    try:
        pushed = stored(files)
    except PushCertificateError as exc:
        pushed, problem = None, f"The stored push certificate is unusable: {exc}. Import one."
    if pushed is not None:
        status = {**describe(pushed, datetime.now(UTC)), "not_after": pushed.not_after}
    running = services.ota.settings.topic if services.ota is not None else None
    stranded = request.query_params.get("stranded", "")[:9]  # devices, after an import
    context = {
        "title": "Push certificate",
        "status": status,
        "problem": problem,
        "pending_csr": files.push_request_key.exists(),
        "restart": status is not None and running is not None and running != status["topic"],
        "running_topic": running,
        "confirm": CONFIRM,
        "done": request.query_params.get("done"),
        "stranded": int(stranded) if stranded.isdecimal() else 0,
    }
    return render(request, "pushcert.html", context)


@router.post("/pushcert/csr")
async def download_csr(request: Request, actor: Manager) -> Response:
    csr, new_key = replacement.request_csr(_files(services_of(request)))
    await auditing.record(request, actor, "pushcert.csr", [], {"new_request": new_key})
    disposition = 'attachment; filename="orchardist-push.csr"'
    return Response(csr.public_bytes(serialization.Encoding.PEM), media_type="application/pkcs10",
                    headers={"Content-Disposition": disposition})  # fmt: skip


@router.post("/pushcert/import")
async def import_certificate(request: Request, actor: Manager) -> Response:
    services = services_of(request)
    files = _files(services)
    form = await form_of(request)
    force = form.get(CONFIRM) == "yes"
    pending = False  # the key is the one kept for the CSR made here
    try:
        cert_pem, key_pem = await _pem(form.get("certificate")), await _pem(form.get("key"))
        if key_pem is None and (kept := files.load_push_request_key()) is not None:
            # Encrypted on disk under the master key; in the clear only in memory here.
            key_pem, pending = (
                kept.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
                True,
            )
        if cert_pem is None or key_pem is None:
            raise PushCertificateError(_missing(cert_pem is None))
        password = str(form.get("password") or "").encode() or None
        pushed = from_pem(cert_pem, key_pem, password=password, now=datetime.now(UTC))
        replaced = await replacement.replace(
            files, services.storage, pushed, placeholder=_placeholder(), force=force
        )
    except PushCertificateError as exc:
        refusal = _refusal(exc, pending)
        raise await auditing.refused(
            request, actor, "pushcert.import", [], refusal, {"force": force}
        ) from exc
    if pending:
        replacement.request_done(files)
    detail = {"force": force, "not_after": pushed.not_after.isoformat()}
    await auditing.record(request, actor, "pushcert.import", [pushed.topic], detail)
    stranded = sum(replaced.stranded.values())
    return RedirectResponse(f"{PAGE}?done=imported&stranded={stranded}", 303)


async def _pem(value: object) -> bytes | None:
    """An uploaded file's bytes (None when none was chosen), at most MAX_PEM of them."""
    if isinstance(value, UploadFile):
        data = await value.read(MAX_PEM + 1)
    elif isinstance(value, str):
        data = value.encode()
    else:
        return None
    if len(data) > MAX_PEM:
        raise PushCertificateError(f"a PEM file here is at most {MAX_PEM // 1024} KiB")
    return data if data.strip() else None


def _missing(certificate: bool) -> str:
    if certificate:
        return "choose the certificate file (PEM) that Apple's portal gave you"
    return (
        "give the private key (PEM) made with the CSR, e.g. push.key from `orchardist "
        "pushcert csr`, or download a CSR here first and import the certificate issued for it"
    )


def _refusal(exc: PushCertificateError, pending: bool) -> tuple[int, str, str]:
    """(status, title, message) of the refusal page: what to do instead."""
    if isinstance(exc, TopicChangeError):
        return 409, "Not imported", _topic_refusal(exc)
    reason = str(exc)
    message = f"{reason[:1].upper()}{reason[1:]}: nothing was changed."
    if pending:
        message += (
            " The key used is the one made with the CSR downloaded here: import the "
            "certificate Apple issued for that CSR, or give that certificate's own key."
        )
    return 422, "Not imported", message


def _topic_refusal(exc: TopicChangeError) -> str:
    return (
        f"{exc.devices} enrolled device(s) use topic {exc.enrolled_topic}; this certificate is "
        f"for {exc.new_topic}, so they could never be woken again. Renew the existing "
        "certificate at identity.apple.com with the same Apple ID (it keeps the topic) "
        "instead. To switch anyway, tick the box to replace the topic: those devices must "
        "then enroll again. Nothing was changed."
    )


def _placeholder() -> str:
    default: str = Settings.model_fields["apns_topic"].default
    return default


def _files(services: Services) -> PkiFiles:
    return services.pki_files()
