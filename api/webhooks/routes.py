"""Webhook endpoints: register (the secret shown once), list, read, delete, rotate the secret; their
deliveries: list with attempts, send one again (docs/ARCHITECTURE.md §7.5)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.context import ApiContext, Context
from api.http.auth import Caller
from api.http.errors import ProblemError
from api.http.idempotency import (
    IdempotencyClaim,
    IdempotencyKey,
    IdempotentRequest,
    StoredResponse,
    answer_once,
    record_response,
    stored_json_response,
)
from api.http.openapi import LOCATION_HEADER, problem_responses
from api.http.pages import PageLinks
from api.http.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    decode_cursor,
    newest_first_page,
    next_page_link,
    split_page,
)
from api.ownership import owned_delivery, owned_webhook
from api.webhooks.schemas import (
    CreatedWebhook,
    DeliveryPage,
    RotatedSecret,
    WebhookCreate,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookPage,
    WebhookResource,
)
from api.webhooks.views import WEBHOOKS_PATH, delivery_resource, webhook_path, webhook_resource
from persistence.db import transaction
from persistence.models import WebhookAttempt, WebhookEndpoint
from persistence.models import WebhookDelivery as DeliveryRow
from persistence.webhooks.deliveries import redeliver
from persistence.webhooks.destinations import DestinationPolicy, UnsafeDestinationError, check_destination
from persistence.webhooks.secrets import new_secret, rotate

router = APIRouter(prefix=WEBHOOKS_PATH, tags=["webhooks"])
CREATE_OPERATION = "POST /v1/webhooks"
ATTEMPTS_SHOWN = 20
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PageCursor = Annotated[str | None, Query(max_length=200, description="links.next of the previous page.")]


@router.post(
    "",
    status_code=201,
    response_model=CreatedWebhook,
    summary="Register a webhook endpoint; the answer holds its signing secret, shown only this once",
    responses={
        201: {"description": "Registered.", "headers": {"Location": LOCATION_HEADER}},
        **problem_responses(400, 401, 409, 413, 422),
    },
)
def create_webhook(
    body: WebhookCreate, caller: Caller, context: Context, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    checked_url(context, body.url)
    request = IdempotentRequest(
        caller.tenant_id, idempotency_key, CREATE_OPERATION, body.model_dump(mode="json", exclude_unset=True)
    )
    response, replayed = answer_once(
        context.sessions,
        request,
        context.clock(),
        lambda claim: register(context, caller.tenant_id, body, claim),
    )
    return stored_json_response(response, replayed=replayed)


def checked_url(context: ApiContext, url: str) -> None:
    """A receiver the workers may send to (they check again before every send)."""
    try:
        check_destination(url, DestinationPolicy.from_settings(context.settings))
    except UnsafeDestinationError as refused:
        raise ProblemError(422, "webhook_url_refused", f"the webhook URL is refused: {refused}") from refused


def register(
    context: ApiContext, tenant_id: uuid.UUID, body: WebhookCreate, claim: IdempotencyClaim | None
) -> StoredResponse:
    now = context.clock()
    with transaction(context.sessions) as session:
        endpoint = WebhookEndpoint(
            tenant_id=tenant_id,
            url=body.url,
            events=sorted({str(event) for event in body.events}),
            description=body.description,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
        session.add(endpoint)
        session.flush()
        resource = webhook_resource(endpoint)
        created = CreatedWebhook(**resource.model_dump(), secret=endpoint.secret)
        response = StoredResponse(
            status=201, body=created.model_dump(mode="json"), headers={"Location": resource.links.webhook}
        )
        if claim is not None:
            record_response(session, claim, response)
    return response


@router.get(
    "",
    response_model=WebhookPage,
    summary="List webhook endpoints, newest first",
    responses=problem_responses(400, 401, 422),
)
def list_webhooks(
    caller: Caller, context: Context, limit: Limit = DEFAULT_PAGE_SIZE, cursor: PageCursor = None
) -> WebhookPage:
    after = decode_cursor(cursor) if cursor is not None else None
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == caller.tenant_id)
    page_query = newest_first_page(
        query, WebhookEndpoint.created_at, WebhookEndpoint.id, after=after, limit=limit
    )
    with context.sessions() as session:
        rows = list(session.scalars(page_query))
    page, next_cursor = split_page(rows, limit, lambda row: Cursor(row.created_at, row.id))
    return WebhookPage(
        items=[webhook_resource(row) for row in page],
        next_cursor=next_cursor,
        links=PageLinks(next=next_page_link(WEBHOOKS_PATH, next_cursor, limit)),
    )


@router.get(
    "/{webhook_id}",
    response_model=WebhookResource,
    summary="A webhook endpoint (without its secret)",
    responses=problem_responses(401, 404, 422),
)
def get_webhook(webhook_id: uuid.UUID, caller: Caller, context: Context) -> WebhookResource:
    with context.sessions() as session:
        return webhook_resource(owned_webhook(session, caller.tenant_id, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook endpoint: its deliveries, pending ones too, go with it",
    responses=problem_responses(401, 404, 422),
)
def delete_webhook(webhook_id: uuid.UUID, caller: Caller, context: Context) -> Response:
    with transaction(context.sessions) as session:
        owned_webhook(session, caller.tenant_id, webhook_id)
        session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == webhook_id))
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=RotatedSecret,
    summary="Replace the signing secret; the previous one also signs for a grace period",
    responses=problem_responses(401, 404, 422),
)
def rotate_webhook_secret(webhook_id: uuid.UUID, caller: Caller, context: Context) -> RotatedSecret:
    now = context.clock()
    grace_until = now + timedelta(seconds=context.settings.webhook_secret_grace_seconds)
    with transaction(context.sessions) as session:
        endpoint = owned_webhook(session, caller.tenant_id, webhook_id, for_update=True)
        secret = rotate(endpoint, now, grace_until)
        previous_ends = endpoint.previous_secret_expires_at or grace_until
    return RotatedSecret(secret=secret, previous_secret_expires_at=previous_ends)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    summary="An endpoint's deliveries, newest first, with their attempts",
    responses=problem_responses(400, 401, 404, 422),
)
def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    caller: Caller,
    context: Context,
    status: Annotated[
        list[WebhookDeliveryStatus] | None, Query(description="Only deliveries in these states (repeatable).")
    ] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> DeliveryPage:
    after = decode_cursor(cursor) if cursor is not None else None
    query = select(DeliveryRow).where(DeliveryRow.endpoint_id == webhook_id)
    if status:
        query = query.where(DeliveryRow.status.in_([str(s) for s in status]))
    with context.sessions() as session:
        owned_webhook(session, caller.tenant_id, webhook_id)
        rows = list(
            session.scalars(
                newest_first_page(query, DeliveryRow.created_at, DeliveryRow.id, after=after, limit=limit)
            )
        )
        page, next_cursor = split_page(rows, limit, lambda row: Cursor(row.created_at, row.id))
        attempts = attempts_of(session, [row.id for row in page])
    path = f"{webhook_path(webhook_id)}/deliveries"
    return DeliveryPage(
        items=[delivery_resource(row, attempts[row.id]) for row in page],
        next_cursor=next_cursor,
        links=PageLinks(
            next=next_page_link(path, next_cursor, limit, [("status", str(s)) for s in status or []])
        ),
    )


def attempts_of(session: Session, delivery_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """The latest ``ATTEMPTS_SHOWN`` attempts of each delivery, oldest first."""
    found: dict[uuid.UUID, list[WebhookAttempt]] = {row_id: [] for row_id in delivery_ids}
    if delivery_ids:
        query = select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
        for attempt in session.scalars(query.order_by(WebhookAttempt.id)):
            found[attempt.delivery_id].append(attempt)
    return {row_id: attempts[-ATTEMPTS_SHOWN:] for row_id, attempts in found.items()}


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=WebhookDelivery,
    summary="Send a delivery again, now, with the same webhook-id",
    responses=problem_responses(401, 404, 409, 422),
)
def redeliver_webhook(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, caller: Caller, context: Context
) -> WebhookDelivery:
    with transaction(context.sessions) as session:
        owned_delivery(session, caller.tenant_id, webhook_id, delivery_id)
        if not redeliver(session, delivery_id, context.clock()):
            raise ProblemError(
                409,
                "webhook_delivery_in_progress",
                f"delivery {delivery_id} is being sent; try again shortly",
            )
    with context.sessions() as session:
        row = owned_delivery(session, caller.tenant_id, webhook_id, delivery_id)
        return delivery_resource(row, attempts_of(session, [delivery_id])[delivery_id])
