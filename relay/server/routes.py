"""Every route of the relay, in one table. Each handler must carry a guard (or be public)."""

from __future__ import annotations

from aiohttp import web

from relay.server.api import operation_of
from relay.server.handlers import coordinator, items, sessions, system, uploads

ROUTES = [
    ("GET", "/healthz", system.health),
    ("GET", "/readyz", system.ready),
    ("GET", "/metrics", system.metrics_exposition),
    ("GET", "/openapi.json", system.openapi_document),
    ("POST", "/v1/bootstrap", system.bootstrap),
    # sessions and the key directory
    ("POST", "/v1/auth/challenge", sessions.challenge),
    ("POST", "/v1/auth/session", sessions.open_session),
    ("DELETE", "/v1/auth/session", sessions.close_session),
    ("GET", "/v1/me", sessions.me),
    ("GET", "/v1/directory/{person_id}", sessions.directory),
    ("GET", "/v1/people/{person_id}/key-bundle", sessions.key_bundle),
    ("POST", "/v1/kiosk/identify", sessions.kiosk_identify),
    # the coordinator
    ("POST", "/v1/institutions", coordinator.create_institution),
    ("GET", "/v1/institutions", coordinator.list_institutions),
    ("POST", "/v1/people", coordinator.enroll),
    ("GET", "/v1/people", coordinator.list_people),
    ("POST", "/v1/people/{person_id}/revoke", coordinator.revoke_person),
    ("POST", "/v1/people/{person_id}/kiosk-code", coordinator.issue_kiosk_code),
    ("POST", "/v1/people/{person_id}/key-bundle/unlock", coordinator.unlock_key_bundle),
    ("POST", "/v1/devices", coordinator.register_device),
    ("GET", "/v1/devices", coordinator.list_devices),
    ("POST", "/v1/devices/{device_id}/revoke", coordinator.revoke_device),
    ("POST", "/v1/cases", coordinator.open_case),
    ("GET", "/v1/cases", coordinator.list_cases),
    ("GET", "/v1/cases/{case_id}", coordinator.view_case),
    ("GET", "/v1/cases/{case_id}/items", coordinator.case_items),
    ("GET", "/v1/cases/{case_id}/timeline", coordinator.case_timeline),
    ("POST", "/v1/cases/{case_id}/pause", coordinator.pause_case),
    ("POST", "/v1/cases/{case_id}/participants", coordinator.add_participant),
    ("POST", "/v1/cases/{case_id}/mediators", coordinator.assign_mediator),
    ("POST", "/v1/cases/{case_id}/participants/{person_id}/consent", coordinator.set_consent),
    ("POST", "/v1/cases/{case_id}/status", coordinator.set_status),
    ("POST", "/v1/cases/{case_id}/legal-hold", coordinator.set_legal_hold),
    ("POST", "/v1/cases/{case_id}/retention", coordinator.set_retention_override),
    ("POST", "/v1/cases/{case_id}/participants/{person_id}/erasure", coordinator.erase_withdrawn),
    ("GET", "/v1/retention", coordinator.retention_status),
    ("GET", "/v1/retention/due", coordinator.retention_due),
    ("POST", "/v1/conditions", coordinator.add_condition),
    ("GET", "/v1/conditions", coordinator.list_conditions),
    ("GET", "/v1/conditions/{condition_id}", coordinator.show_condition),
    ("POST", "/v1/conditions/{condition_id}/amend", coordinator.amend_condition),
    ("POST", "/v1/conditions/{condition_id}/lift", coordinator.lift_condition),
    ("POST", "/v1/approvals", coordinator.add_approval),
    ("GET", "/v1/approvals", coordinator.list_approvals),
    ("POST", "/v1/approvals/{approval_id}/revoke", coordinator.revoke_approval),
    # resumable uploads (tus 1.0) and the limits announced before anyone uploads
    ("GET", "/v1/limits", items.limits_announced),
    ("OPTIONS", "/v1/uploads", uploads.options),
    ("POST", "/v1/uploads", uploads.create),
    ("HEAD", "/v1/uploads/{upload_id}", uploads.head),
    ("PATCH", "/v1/uploads/{upload_id}", uploads.patch),
    ("DELETE", "/v1/uploads/{upload_id}", uploads.delete),
    # items
    ("POST", "/v1/items", items.submit),
    ("GET", "/v1/items/sent", items.sent),
    ("GET", "/v1/items/{item_id}", items.original),
    ("GET", "/v1/items/{item_id}/content", items.original_content),
    ("GET", "/v1/items/{item_id}/poster", items.poster),
    ("GET", "/v1/items/{item_id}/note", items.note),
    ("GET", "/v1/items/{item_id}/note/content", items.note_content),
    ("GET", "/v1/inbox", items.inbox),
    ("GET", "/v1/items/{item_id}/delivery", items.delivery),
    ("GET", "/v1/items/{item_id}/delivery/content", items.delivery_content),
    ("POST", "/v1/items/{item_id}/receipt", items.receipt),
    ("GET", "/v1/review/queue", items.queue),
    ("GET", "/v1/review/inbox", items.mediator_inbox),
    ("POST", "/v1/items/{item_id}/decision", items.decide),
    ("POST", "/v1/items/{item_id}/read", items.mark_read),
]


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        if not getattr(handler, "__relay_guarded__", False):
            raise RuntimeError(f"{method} {path} has no guard")
        if operation_of(handler) is None:
            raise RuntimeError(f"{method} {path} has no @operation (what it takes and answers)")
        app.router.add_route(method, path, handler)
