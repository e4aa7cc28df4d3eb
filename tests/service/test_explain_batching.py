"""Dynamic batching: small queued requests of one model are claimed and explained together, each
keeping its own result, lease, cancellation and errors; small requests ride inline in their rows; one
wake-up message serves a burst of a model's requests (worker.explain.wake_gate).

Real Postgres, real Redis, real model, real local object store; the worker runner is called in this
process."""

from __future__ import annotations

import io
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import redis
import torch
from sqlalchemy import create_engine, event, select, update
from sqlalchemy.orm import sessionmaker

from api.explanations.limits import ExplanationLimits
from batchcam.explain import Explainer
from persistence.db import transaction
from persistence.explanations.batching import BatchLimits
from persistence.explanations.leases import request_explanation_cancel
from persistence.explanations.objects import images_npz
from persistence.models import Explanation, Job, Model, utcnow
from persistence.objects import ObjectStoreUnavailableError
from persistence.states import JobState
from persistence.wakeups import BrokerUnavailableError
from service.api_support import ApiHarness, api_harness
from service.service_stack import REDIS
from service.trained_models import TrainedRun, png_of, store_model, train_tiny_run
from service.webhook_support import add_endpoint
from worker.enqueue import explanation_waker
from worker.explain.cache import ExplainerCache, load_explainer
from worker.explain.context import ExplainContext, ExplainOutcome
from worker.explain.ended_here import EndedHere
from worker.explain.inputs import uploaded_items
from worker.explain.runner import run_explanation
from worker.explain.threads import TorchThreads
from worker.explain.wake_gate import KEY_PREFIX, WAKE_TTL_MS, WakeGate, key, open_wake_gate

CPU = torch.device("cpu")


class Never:
    """The injected enqueue: records, runs nothing (each test runs the worker itself)."""

    def __call__(self, explanation_id: uuid.UUID, model_id: uuid.UUID) -> None:
        pass


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_tiny_run(tmp_path_factory.mktemp("trained") / "run")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    limits = ExplanationLimits(max_images=64)
    with api_harness(
        tmp_path_factory.mktemp("api-batching"), enqueue_explanation=Never(), explanation_limits=limits
    ) as harness:
        yield harness


@pytest.fixture(scope="module")
def tenant(api: ApiHarness) -> dict[str, str]:
    return api.new_tenant()


@pytest.fixture(scope="module")
def model_id(api: ApiHarness, tenant: dict[str, str], run: TrainedRun) -> uuid.UUID:
    return store_model(api.sessions, api.store, api.tenant_id(tenant), run)


@pytest.fixture
def context(api: ApiHarness) -> ExplainContext:
    cache = ExplainerCache(lambda stored: load_explainer(api.store, stored, CPU))
    return ExplainContext(sessions=api.sessions, store=api.store, explainers=cache)


def submit(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, images: list[torch.Tensor]
) -> uuid.UUID:
    files = [("files", (f"image{i}.png", png_of(image), "image/png")) for i, image in enumerate(images)]
    response = api.client.post(f"/v1/models/{model_id}/explanations", files=files, headers=tenant)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def submit_indices(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, indices: list[int]
) -> uuid.UUID:
    body = {"dataset": "shapes", "split": "test", "indices": indices}
    response = api.client.post(f"/v1/models/{model_id}/explanations", json=body, headers=tenant)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def resource(api: ApiHarness, tenant: dict[str, str], explanation_id: uuid.UUID) -> dict[str, Any]:
    response = api.client.get(f"/v1/explanations/{explanation_id}", headers=tenant)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cam_of(api: ApiHarness, tenant: dict[str, str], explanation_id: uuid.UUID, index: int) -> np.ndarray:
    response = api.client.get(f"/v1/explanations/{explanation_id}/heatmaps/{index}.npy", headers=tenant)
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))


def states(api: ApiHarness, ids: list[uuid.UUID]) -> list[str]:
    with api.sessions() as session:
        found = dict(
            session.execute(select(Explanation.id, Explanation.state).where(Explanation.id.in_(ids))).all()
        )
    return [found[i] for i in ids]


def test_queued_small_requests_of_a_model_are_explained_in_one_batch_each_with_its_own_result(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, context: ExplainContext
) -> None:
    images = run.test_data.images
    groups = [[images[0]], [images[1], images[2]], [images[3]]]
    ids = [submit(api, tenant, model_id, group) for group in groups]
    calls: list[int] = []
    explain = Explainer.explain

    def counted(self: Explainer, batch: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(batch))
        return explain(self, batch, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Explainer, "explain", counted)
        assert run_explanation(ids[1], context) == ExplainOutcome.SUCCEEDED  # the message names one row
    assert calls == [4]  # every image of the three requests went through the model at once
    assert states(api, ids) == ["succeeded"] * 3
    assert run_explanation(ids[0], context) == ExplainOutcome.NOT_CLAIMED  # its own message: already done

    # Each result is what the request would have got alone (the library on the same images).
    alone = Explainer.from_run(run.run_dir, CPU)
    for explanation_id, group in zip(ids, groups, strict=True):
        body = resource(api, tenant, explanation_id)
        assert body["count"] == len(group) and body["failed_items"] == 0
        expected = alone.explain(torch.stack([alone.conform(image) for image in group]))
        for index, reference in enumerate(expected):
            assert body["items"][index]["predicted"]["index"] == reference.predicted
            np.testing.assert_allclose(
                cam_of(api, tenant, explanation_id, index), reference.cam.numpy(), atol=1e-5
            )


def test_the_messages_of_rows_a_batch_ended_return_without_a_claim_query(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, context: ExplainContext
) -> None:
    images = run.test_data.images
    first, second = (submit(api, tenant, model_id, [image]) for image in images[:2])
    assert run_explanation(first, context) == ExplainOutcome.SUCCEEDED  # the batch took both
    assert states(api, [first, second]) == ["succeeded", "succeeded"]
    unreachable = sessionmaker(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none"))
    cut_off = replace(context, sessions=unreachable)  # any claim query now fails (RETRY)
    assert run_explanation(second, cut_off) == ExplainOutcome.NOT_CLAIMED  # known here: no query
    elsewhere = replace(context, ended_here=EndedHere())  # another process asks the database
    assert run_explanation(second, elsewhere) == ExplainOutcome.NOT_CLAIMED
    third = submit(api, tenant, model_id, [images[2]])  # not ended here: its message must claim it
    assert run_explanation(third, cut_off) == ExplainOutcome.RETRY
    assert run_explanation(third, context) == ExplainOutcome.SUCCEEDED


def test_a_one_image_batch_runs_three_statements_and_a_webhook_query_only_when_an_endpoint_exists(
    api: ApiHarness, run: TrainedRun, context: ExplainContext
) -> None:
    """The hot path's budget (ARCHITECTURE §7.3): the claim returns the request, and the end says
    whose tenant has a webhook endpoint, so nothing reads the rows back."""
    tenant = api.new_tenant()  # its own: the endpoint added below must not reach other tests
    model_id = store_model(api.sessions, api.store, api.tenant_id(tenant), run)
    image = run.test_data.images[0]
    warm_up = submit(api, tenant, model_id, [image])
    assert run_explanation(warm_up, context) == ExplainOutcome.SUCCEEDED  # loads the model: not counted

    def statements_of_one_request() -> list[str]:
        explanation_id = submit(api, tenant, model_id, [image])
        engine = context.sessions.kw["bind"]
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement.split()[0])

        event.listen(engine, "before_cursor_execute", record)
        try:
            assert run_explanation(explanation_id, context) == ExplainOutcome.SUCCEEDED
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return seen

    claim, queued_look, end = "UPDATE", "SELECT", "UPDATE"
    assert statements_of_one_request() == [claim, queued_look, end]
    add_endpoint(
        api.sessions, api.tenant_id(tenant), "https://example.invalid/hook", ["explanation.succeeded"]
    )
    with_endpoint = statements_of_one_request()
    assert with_endpoint[:4] == [claim, queued_look, end, "SELECT"]  # the ended row, for its event
    assert "INSERT" in with_endpoint[4:]  # its delivery


def test_small_batches_compute_with_the_small_batch_threads_and_large_ones_keep_the_process_s(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, context: ExplainContext
) -> None:
    seen: list[int] = []
    explain = Explainer.explain

    def recorded(self: Explainer, *args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return explain(self, *args, **kwargs)

    original = torch.get_num_threads()
    torch.set_num_threads(2)  # as a two-core worker starts
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Explainer, "explain", recorded)
            small = submit(api, tenant, model_id, [run.test_data.images[0]])
            assert run_explanation(small, context) == ExplainOutcome.SUCCEEDED
        assert seen == [1]  # BATCHCAM_EXPLAIN_TORCH_THREADS' default, while the batch computed
        assert torch.get_num_threads() == 2  # given back afterwards
        with TorchThreads(small_batch=1, large_from=2).for_batch(2):
            assert torch.get_num_threads() == 2  # a large batch keeps what the process has
    finally:
        torch.set_num_threads(original)


def test_small_requests_keep_inputs_and_maps_in_their_row_not_the_object_store(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, context: ExplainContext
) -> None:
    explanation_id = submit(api, tenant, model_id, [run.test_data.images[0]])
    assert run_explanation(explanation_id, context) == ExplainOutcome.SUCCEEDED
    with api.sessions() as session:
        row = session.get_one(Explanation, explanation_id)
        assert row.request["inputs"].get("inline") is True and row.inline_inputs
        assert row.inline_maps and row.results and row.results[0]["maps"] == "inline"
    stored = [
        path for path in api.store_root.rglob("*") if str(explanation_id) in str(path) and path.is_file()
    ]
    assert stored == []
    assert cam_of(api, tenant, explanation_id, 0).shape == (28, 28)


def test_the_image_budget_bounds_a_batch_and_other_models_are_left_alone(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, context: ExplainContext
) -> None:
    other_model = store_model(api.sessions, api.store, api.tenant_id(tenant), run)
    images = run.test_data.images
    first = submit(api, tenant, model_id, [images[0], images[1]])
    fits = submit(api, tenant, model_id, [images[2]])
    too_many = submit(api, tenant, model_id, [images[3], images[4]])  # 2 + 1 + 2 > 4
    elsewhere = submit(api, tenant, other_model, [images[5]])
    small_budget = replace(context, batching=BatchLimits(max_images=4, max_requests=8))
    assert run_explanation(first, small_budget) == ExplainOutcome.SUCCEEDED
    assert states(api, [first, fits, too_many, elsewhere]) == ["succeeded", "succeeded", "queued", "queued"]
    assert run_explanation(too_many, small_budget) == ExplainOutcome.SUCCEEDED
    assert run_explanation(elsewhere, small_budget) == ExplainOutcome.SUCCEEDED

    # Larger than the budget: alone, its maps in object-store shards as before.
    large = submit(api, tenant, model_id, list(images[:6]))
    queued_after = submit(api, tenant, model_id, [images[6]])
    assert run_explanation(large, small_budget) == ExplainOutcome.SUCCEEDED
    assert states(api, [large, queued_after]) == ["succeeded", "queued"]
    with api.sessions() as session:
        results = session.get_one(Explanation, large).results
    assert results and all("maps_key" in item for item in results)
    assert cam_of(api, tenant, large, 5).shape == (28, 28)
    assert run_explanation(queued_after, small_budget) == ExplainOutcome.SUCCEEDED


def test_a_request_that_cannot_be_read_fails_alone_and_the_others_of_its_batch_succeed(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, context: ExplainContext
) -> None:
    images = run.test_data.images
    good, broken, also_good = (submit(api, tenant, model_id, [image]) for image in images[:3])
    with transaction(api.sessions) as session:  # its images lost from the row
        session.execute(update(Explanation).where(Explanation.id == broken).values(inline_inputs=None))
    assert run_explanation(good, context) == ExplainOutcome.SUCCEEDED
    assert states(api, [good, broken, also_good]) == ["succeeded", "failed", "succeeded"]
    failure = resource(api, tenant, broken)["failure"]
    assert failure["reason"] == "infrastructure" and "missing" in failure["message"]


def test_a_request_cancelled_or_taken_back_while_its_batch_runs_is_not_finished(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, context: ExplainContext
) -> None:
    images = run.test_data.images
    named, cancelled, lost, kept = (submit(api, tenant, model_id, [image]) for image in images[:4])
    explain = Explainer.explain

    def interrupted(self: Explainer, *args: Any, **kwargs: Any) -> Any:
        with transaction(api.sessions) as session:  # while the batch computes: a cancel, and a sweep
            request_explanation_cancel(session, session.get_one(Explanation, cancelled), context.clock())
            session.execute(
                update(Explanation)
                .where(Explanation.id == lost)
                .values(state=JobState.QUEUED, lease_owner=None, lease_expires_at=None)
            )
        return explain(self, *args, **kwargs)

    start, minutes = utcnow(), itertools.count()
    late = replace(context, clock=lambda: start + timedelta(minutes=next(minutes)))  # every renewal is due
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Explainer, "explain", interrupted)
        assert run_explanation(named, late) == ExplainOutcome.SUCCEEDED
    # The renewal after the batch saw both: the cancel is confirmed, the lost one writes nothing.
    assert states(api, [named, cancelled, lost, kept]) == ["succeeded", "cancelled", "queued", "succeeded"]
    assert run_explanation(lost, context) == ExplainOutcome.SUCCEEDED  # its next attempt runs it


def test_an_explanation_in_which_no_image_could_be_explained_fails_with_each_reason(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, context: ExplainContext
) -> None:
    nothing = submit_indices(api, tenant, model_id, [10_000, 10_001])
    partly = submit_indices(api, tenant, model_id, [0, 10_000])
    assert run_explanation(nothing, context) == ExplainOutcome.FAILED
    assert run_explanation(partly, context) == ExplainOutcome.NOT_CLAIMED  # it went with the first
    failed = resource(api, tenant, nothing)
    assert failed["state"] == "failed" and failed["failure"]["reason"] == "invalid_input"
    assert "none of the 2 images could be explained" in failed["failure"]["message"]
    assert [item["error"]["code"] for item in failed["items"]] == ["index_out_of_range"] * 2
    some = resource(api, tenant, partly)
    assert some["state"] == "succeeded" and some["failed_items"] == 1


def test_a_model_is_remembered_as_ready_only_once_its_job_has_succeeded(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun
) -> None:
    training = store_model(api.sessions, api.store, api.tenant_id(tenant), run, job_state=JobState.RUNNING)
    files = [("files", ("image.png", png_of(run.test_data.images[0]), "image/png"))]
    path = f"/v1/models/{training}/explanations"
    assert api.client.post(path, files=files, headers=tenant).status_code == 409  # not ready: not remembered
    with transaction(api.sessions) as session:
        job_id = session.get_one(Model, training).job_id
        session.execute(update(Job).where(Job.id == job_id).values(state=JobState.SUCCEEDED))
    assert api.client.post(path, files=files, headers=tenant).status_code == 202
    other = api.new_tenant()  # remembered per tenant: another tenant still cannot see it
    assert api.client.post(path, files=files, headers=other).status_code == 404


@dataclass
class SentMessages:
    """The injected explain sender of a waker: records (row, model) as the broker would get them."""

    sent: list[tuple[uuid.UUID, uuid.UUID | None]] = field(default_factory=list)
    refuse: bool = False

    def __call__(
        self, explanation_id: uuid.UUID, delay_s: float = 0.0, model_id: uuid.UUID | None = None
    ) -> None:
        if self.refuse:
            raise BrokerUnavailableError("the broker is away")
        self.sent.append((explanation_id, model_id))


@pytest.fixture
def gate() -> Iterator[WakeGate]:
    client = redis.Redis.from_url(REDIS)
    yield WakeGate(client)
    for leftover in client.scan_iter(f"{KEY_PREFIX}*"):
        client.delete(leftover)
    client.close()


def ended_row_then_two_queued(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun, context: ExplainContext
) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """A new model; one of its rows explained and ended here, then two more queued: (model, ended, queued)."""
    model = store_model(api.sessions, api.store, api.tenant_id(tenant), run)
    images = run.test_data.images
    ended = submit(api, tenant, model, [images[0]])
    assert run_explanation(ended, context) == ExplainOutcome.SUCCEEDED
    return model, ended, [submit(api, tenant, model, [image]) for image in images[1:3]]


def test_a_model_s_wake_up_claims_its_queued_rows_even_when_the_named_row_has_ended(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun, context: ExplainContext
) -> None:
    model, named, later = ended_row_then_two_queued(api, tenant, run, context)
    assert run_explanation(named, context) == ExplainOutcome.NOT_CLAIMED  # a row's message: nothing more
    assert states(api, later) == ["queued", "queued"]
    assert run_explanation(named, context, woken_model=model) == ExplainOutcome.NOT_CLAIMED  # named: ended
    assert states(api, later) == ["succeeded", "succeeded"]  # the model's wake-up took the queued rows
    assert run_explanation(named, context, woken_model=model) == ExplainOutcome.NOT_CLAIMED  # none left


def test_a_woken_batch_that_leaves_queued_rows_wakes_the_model_again_and_one_that_does_not_stays_quiet(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun, context: ExplainContext
) -> None:
    model = store_model(api.sessions, api.store, api.tenant_id(tenant), run)
    images = run.test_data.images
    rows = [submit(api, tenant, model, [image]) for image in images[:3]]
    wakes: list[tuple[uuid.UUID, uuid.UUID]] = []
    two_at_a_time = replace(
        context,
        batching=BatchLimits(max_images=8, max_requests=2),
        wake_model=lambda row, woken: wakes.append((row, woken)),
    )
    assert run_explanation(rows[0], two_at_a_time, woken_model=model) == ExplainOutcome.SUCCEEDED
    assert states(api, rows) == ["succeeded", "succeeded", "queued"]
    assert wakes == [(rows[0], model)]  # a row was left: the model is woken again
    assert run_explanation(rows[0], two_at_a_time, woken_model=model) == ExplainOutcome.NOT_CLAIMED
    assert states(api, rows) == ["succeeded"] * 3
    assert wakes == [(rows[0], model)]  # it took everything queued: no further wake-up
    unwoken = submit(api, tenant, model, [images[3]])
    also = submit(api, tenant, model, [images[4]])
    one_at_a_time = replace(two_at_a_time, batching=BatchLimits(max_requests=1))
    assert run_explanation(unwoken, one_at_a_time) == ExplainOutcome.SUCCEEDED
    assert wakes == [(rows[0], model)]  # a row's own message never wakes the model: each has its own
    assert run_explanation(also, one_at_a_time) == ExplainOutcome.SUCCEEDED


def test_one_message_wakes_a_burst_and_a_row_committed_after_the_worker_looked_gets_its_own(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun, context: ExplainContext, gate: WakeGate
) -> None:
    model = store_model(api.sessions, api.store, api.tenant_id(tenant), run)
    images = run.test_data.images
    broker = SentMessages()
    wake = explanation_waker(broker, gate)
    burst = [submit(api, tenant, model, [image]) for image in images[:3]]
    for row in burst:  # as the API does after each commit
        wake(row, model)
    assert broker.sent == [(burst[0], model)]  # the first set the key; the others saw it set

    # The worker takes that message: deletes the key first, then claims. A row committed in between
    # sets the key again and sends a message of its own, which then finds nothing left to do.
    woken = replace(context, wake_model=wake)
    gate.disarm(model)
    between = submit(api, tenant, model, [images[3]])
    wake(between, model)
    assert broker.sent[1:] == [(between, model)]
    assert run_explanation(burst[0], woken, woken_model=model) == ExplainOutcome.SUCCEEDED
    assert states(api, [*burst, between]) == ["succeeded"] * 4
    gate.disarm(model)
    assert run_explanation(between, woken, woken_model=model) == ExplainOutcome.NOT_CLAIMED
    assert len(broker.sent) == 2  # nothing was left behind, so nobody woke the model again

    # A message the broker refused leaves the key unset: the next request sends again.
    broker.refuse = True
    refused = submit(api, tenant, model, [images[4]])
    with pytest.raises(BrokerUnavailableError):
        wake(refused, model)
    broker.refuse = False
    retried = submit(api, tenant, model, [images[5]])
    wake(retried, model)
    assert broker.sent[2:] == [(retried, model)]
    gate.disarm(model)
    assert run_explanation(retried, woken, woken_model=model) == ExplainOutcome.SUCCEEDED
    assert states(api, [refused, retried]) == ["succeeded", "succeeded"]


def test_the_wake_up_key_expires_so_a_lost_message_holds_back_others_only_for_a_while(
    gate: WakeGate,
) -> None:
    model = uuid.uuid4()
    client = redis.Redis.from_url(REDIS)
    try:
        assert gate.arm(model) and not gate.arm(model)
        assert 0 < client.pttl(key(model)) <= WAKE_TTL_MS
        client.pexpire(key(model), 50)  # as if WAKE_TTL_MS had passed with its message lost
        time.sleep(0.1)
        assert gate.arm(model)
    finally:
        client.close()


def test_without_a_gate_every_row_sends_its_own_message_naming_no_model() -> None:
    broker = SentMessages()
    wake = explanation_waker(broker, None)
    rows, model = [uuid.uuid4(), uuid.uuid4()], uuid.uuid4()
    for row in rows:
        wake(row, model)
    assert broker.sent == [(rows[0], None), (rows[1], None)]
    assert open_wake_gate("filesystem://") is None and open_wake_gate(REDIS) is not None


@pytest.mark.parametrize("shapes", [[(1, 28, 28)] * 3, [(1, 28, 28), (1, 32, 32), (3, 28, 28)]])
def test_uploaded_images_reach_the_worker_as_sent_stacked_when_they_share_a_size(
    api: ApiHarness, shapes: list[tuple[int, ...]]
) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    npz = images_npz(images)
    names = [f"{position}.png" for position in range(len(images))]
    items = uploaded_items(api.store, {"kind": "upload", "inline": True, "names": names}, npz)
    for item, name, image in zip(items, names, images, strict=True):
        assert item.source == {"kind": "upload", "filename": name}
        np.testing.assert_array_equal(item.image.numpy(), image)
    with np.load(io.BytesIO(npz)) as archive:
        one_size = len(set(shapes)) == 1
        assert archive.files == (["images"] if one_size else [f"image_{i:05d}" for i in range(len(images))])


def test_a_woken_batch_whose_rows_were_given_back_asks_for_the_model_s_wake_up_again(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun, context: ExplainContext
) -> None:
    model, named, queued = ended_row_then_two_queued(api, tenant, run, context)

    def store_down(self: Explainer, *args: Any, **kwargs: Any) -> Any:
        raise ObjectStoreUnavailableError("the object store is away")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Explainer, "explain", store_down)
        # The named row ended long ago; the rows claimed by model were given back: wake it again.
        assert run_explanation(named, context, woken_model=model) == ExplainOutcome.RETRY
        assert states(api, queued) == ["queued", "queued"]
        assert run_explanation(named, context) == ExplainOutcome.NOT_CLAIMED  # a row's own message: no
    assert run_explanation(named, context, woken_model=model) == ExplainOutcome.NOT_CLAIMED  # named: ended
    assert states(api, queued) == ["succeeded", "succeeded"]  # the second wake-up's attempt ran them
