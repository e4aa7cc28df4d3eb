"""Several small requests of one model, claimed together, explained as one batch (dynamic batching).

``persistence.explanations.batching`` claims them (each row its own attempt and lease). Here each
request's inputs are read and conformed on their own, so a request that cannot be read fails alone;
the usable images of all requests that ask for the same method and metrics go through the model
together (``explained_chunks``); if that batch raises, each request is run alone, so an error is
charged to the request that causes it. The leases are renewed together before the ends are written:
a request whose lease was lost writes nothing, one being cancelled is confirmed ``cancelled``. Each
request's maps are one ``.npz``: in its row when small (no object store round trip), else one object.
All ends are written in one transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sqlalchemy.orm import Session, sessionmaker

from batchcam.explain import Explainer, Explanation
from persistence.db import transaction
from persistence.explanations.batching import ClaimedBatch
from persistence.explanations.leases import ExplanationClaim, cancel_explanation, finish_explanations
from persistence.explanations.objects import INLINE, NPZ_CONTENT_TYPE, fits_inline, maps_key, maps_npz
from persistence.models import Model
from persistence.states import JobState
from worker.explain.batches import ReadyItem, conform_all, explained_chunks, item_result
from worker.explain.cache import StoredModel, stored_model
from worker.explain.context import ENDINGS, ExplainContext, ExplainOutcome
from worker.explain.inputs import InputItem, ItemError, load_inputs
from worker.explain.lease import BatchLeaseKeeper

log = logging.getLogger(__name__)

Group = tuple[str, tuple[str, ...]]  # method, metrics: what one Explainer.explain call shares
EndWithError = Callable[[ExplanationClaim, Exception], ExplainOutcome]


@dataclass(frozen=True)
class RequestWork:
    """One claimed request, as its row asks."""

    claim: ExplanationClaim
    request: dict[str, Any]
    inline_inputs: bytes | None

    @property
    def group(self) -> Group:
        return self.request["method"], tuple(self.request.get("metrics") or ())


@dataclass
class Prepared:
    """A request whose inputs were read: its usable images, and the reasons for the others."""

    work: RequestWork
    inputs: list[InputItem]
    ready: list[ReadyItem]
    errors: dict[int, ItemError]
    explained: dict[int, tuple[Explanation, dict[str, float] | None]] = field(default_factory=dict)


def run_together(
    model_id: uuid.UUID,
    works: list[RequestWork],
    context: ExplainContext,
    end_with_error: EndWithError,
) -> dict[uuid.UUID, ExplainOutcome]:
    """Every claimed request's outcome (``works``: as the claim returned them, ``works_of``).
    ``end_with_error`` ends one claim after an exception (retry or fail)."""
    claims = [work.claim for work in works]
    lease = BatchLeaseKeeper(context.sessions, claims, context.lease_for, context.clock)
    try:
        explainer = context.explainers.for_model(model_id, lambda: model_of(context.sessions, model_id))
    except Exception as error:  # the model cannot be loaded: every request shares it
        return {claim.explanation_id: end_with_error(claim, error) for claim in claims}
    outcomes: dict[uuid.UUID, ExplainOutcome] = {}
    groups: defaultdict[Group, list[Prepared]] = defaultdict(list)
    for work in works:
        try:
            groups[work.group].append(prepare(work, explainer, context))
        except Exception as error:  # this request's inputs: it alone fails
            outcomes[work.claim.explanation_id] = end_with_error(work.claim, error)
    explained: list[Prepared] = []
    for group, requests in groups.items():
        try:
            explain_group(explainer, requests, group, context, lease.renew)
            explained += requests
        except Exception as error:
            if len(requests) == 1:
                outcomes[requests[0].work.claim.explanation_id] = end_with_error(
                    requests[0].work.claim, error
                )
                continue
            for request in requests:  # alone, so that only the request that breaks the batch fails
                try:
                    explain_group(explainer, [request], group, context, lease.renew)
                    explained.append(request)
                except Exception as alone:
                    outcomes[request.work.claim.explanation_id] = end_with_error(request.work.claim, alone)
    return outcomes | record_ends(explained, lease, context)


def model_of(sessions: sessionmaker[Session], model_id: uuid.UUID) -> StoredModel:
    with sessions() as session:
        return stored_model(session.get_one(Model, model_id))


def works_of(batch: ClaimedBatch) -> list[RequestWork]:
    """Each claimed request, in the claims' order, as the claim returned it."""
    return [
        RequestWork(claim, asked.request, asked.inline_inputs)
        for claim in batch.claims
        if (asked := batch.requests.get(claim.explanation_id)) is not None
    ]


def prepare(work: RequestWork, explainer: Explainer, context: ExplainContext) -> Prepared:
    inputs = load_inputs(
        context.store, work.request["inputs"], context.splits, context.upload_limits, work.inline_inputs
    )
    targets: list[int | None] = work.request.get("targets") or [None] * len(inputs)
    ready, errors = conform_all(explainer, inputs, targets)
    return Prepared(work, inputs, ready, errors)


def explain_group(
    explainer: Explainer,
    requests: list[Prepared],
    group: Group,
    context: ExplainContext,
    after_chunk: Callable[[], None],
) -> None:
    """Every usable image of the requests, explained in shared chunks; each request keeps its own."""
    method, metrics = group
    owners: list[tuple[Prepared, int]] = []  # merged position → (request, position in it)
    merged: list[ReadyItem] = []
    for request in requests:
        for item in request.ready:
            merged.append(ReadyItem(len(merged), item.image, item.target, item.true_label))
            owners.append((request, item.position))
    for chunk in explained_chunks(explainer, merged, method, context.batch_size, metrics, context.threads):
        for item, explanation in zip(chunk.items, chunk.explanations, strict=True):
            request, position = owners[item.position]
            request.explained[position] = (explanation, chunk.to_true.get(item.position))
        after_chunk()


def record_ends(
    explained: list[Prepared], lease: BatchLeaseKeeper, context: ExplainContext
) -> dict[uuid.UUID, ExplainOutcome]:
    """Store the maps and write every end in one transaction. Finishing is conditional on the claim, as
    a renewal is: a request whose lease was lost writes nothing. One that a renewal found ``cancelling``
    is confirmed ``cancelled``; one cancelled since its last renewal finished first (as alone)."""
    if not explained:
        return {}
    outcomes: dict[uuid.UUID, ExplainOutcome] = {}
    finished: list[tuple[ExplanationClaim, list[dict[str, Any]], bytes | None]] = []
    cancelled: list[ExplanationClaim] = []
    for request in explained:
        claim = request.work.claim
        state = lease.state(claim)
        if state is None:
            log.warning("explanation %s attempt %d: lease lost; stopped", claim.explanation_id, claim.attempt)
            outcomes[claim.explanation_id] = ExplainOutcome.NOT_CLAIMED
        elif state == JobState.CANCELLING:
            cancelled.append(claim)
        else:
            finished.append((claim, *stored_results(request, context)))
    now = context.clock()
    with transaction(context.sessions) as session:
        for claim in cancelled:
            confirmed = cancel_explanation(session, claim, now)
            outcomes[claim.explanation_id] = (
                ExplainOutcome.CANCELLED if confirmed else ExplainOutcome.NOT_CLAIMED
            )
        ends = finish_explanations(session, finished, now)  # their webhooks: one query for all
        for claim, _, _ in finished:
            ended = ends[claim.explanation_id]
            if ended is None:
                log.warning(
                    "explanation %s attempt %d: lease lost; not recorded", claim.explanation_id, claim.attempt
                )
            outcomes[claim.explanation_id] = ENDINGS.get(ended, ExplainOutcome.NOT_CLAIMED)
    return outcomes


def stored_results(request: Prepared, context: ExplainContext) -> tuple[list[dict[str, Any]], bytes | None]:
    """The request's per-image results, and its maps inline (``None`` once stored as one object)."""
    positions = sorted(request.explained)
    where: dict[str, Any] = {}
    inline: bytes | None = None
    if positions:
        by_position = {item.position: item for item in request.ready}
        cams = torch.stack([request.explained[position][0].cam for position in positions]).numpy()
        images = np.stack([by_position[position].image.numpy() for position in positions])
        npz = maps_npz(cams, images)
        if fits_inline(npz):
            inline, where = npz, {"maps": INLINE}
        else:
            claim = request.work.claim
            key = maps_key(claim.tenant_id, claim.explanation_id, claim.attempt, 0)
            context.store.put(key, npz, content_type=NPZ_CONTENT_TYPE)
            where = {"maps_key": key}
    slots = {position: slot for slot, position in enumerate(positions)}
    results = []
    for position, item in enumerate(request.inputs):
        head = {"index": position, "source": item.source, "true_label": item.true_label}
        if position in request.explained:
            explanation, to_true = request.explained[position]
            results.append(head | item_result(explanation, to_true, slots[position]) | where)
        else:
            results.append(head | {"error": request.errors[position].to_dict()})
    return results, inline
