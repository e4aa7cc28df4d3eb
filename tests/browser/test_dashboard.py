"""A person's way through the dashboard, in a real browser against the real service: sign in, upload a
dataset, submit a job on shapes and watch it train without reloading, read the model and page through
its gallery, drop an image into the playground, cancel a job, sign out; another tenant sees none of
it, and a form without the CSRF token is refused. Every page is screenshotted and checked by axe-core.

The tests run in order and share the first tenant's browser profile and what it made (``journey``).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect
from service.service_stack import ServiceStack, small_dataset

from batchcam.data import make_shapes
from browser.pages import OffsiteRequests, check_page, horizontal_overflow, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
expect.set_options(timeout=15_000)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def journey() -> dict[str, Any]:
    """Ids made by earlier tests of this module (the job, the model, the explanation)."""
    return {}


@pytest.fixture(scope="module")
def page(owner: BrowserContext) -> Page:
    return owner.new_page()


def shape_png(index: int) -> bytes:
    image = make_shapes(index + 1, seed=11).images[index, 0].numpy()
    buffer = io.BytesIO()
    Image.fromarray((image * 255).astype("uint8") if image.dtype != "uint8" else image).save(buffer, "PNG")
    return buffer.getvalue()


def test_sign_in_refuses_a_wrong_key_then_signs_in(page: Page, owner_key: str, screenshots: Path) -> None:
    page.goto("/dashboard/jobs")
    expect(page).to_have_url(re.compile(r"/dashboard/sign-in\?next="))
    check_page(page, screenshots, "01-sign-in")
    page.get_by_label("API key").fill("bc_000000000000_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#api_key-error")).to_contain_text("not valid")
    sign_in(page, owner_key)
    cookie = next(c for c in page.context.cookies() if c["name"] == "batchcam_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert owner_key not in cookie["value"] and owner_key not in page.url
    assert page.evaluate("Object.keys(localStorage).length + Object.keys(sessionStorage).length") == 0


def test_keyboard_reaches_the_skip_link_and_the_menu(page: Page) -> None:
    page.goto("/dashboard/jobs")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Jobs", exact=True)).to_be_focused()


def test_new_job_form_shows_the_servers_errors_by_their_fields(page: Page, screenshots: Path) -> None:
    page.goto("/dashboard/jobs/new")
    page.get_by_label("λ prototype").fill("lots")  # refused by the API's model (a number)
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#e-lambda_prototype")).to_contain_text("number")
    page.get_by_label("λ prototype").fill("1")
    page.get_by_label("epochs").fill("0")  # refused by TrainConfig, as on the command line
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator("#e-epochs")).to_contain_text("epochs")
    expect(page.locator("#e-lambda_prototype")).to_have_count(0)
    expect(page.get_by_label("epochs")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("epochs")).to_have_value("0")  # what was typed stays
    check_page(page, screenshots, "03-new-job-errors")
    page.goto("/dashboard/jobs")
    expect(page.locator("tbody tr")).to_have_count(0)  # nothing was submitted


def test_upload_shows_progress_and_selects_the_dataset(page: Page, screenshots: Path) -> None:
    page.goto("/dashboard/jobs/new")
    page.get_by_label("Dataset file").set_input_files(
        {"name": "shapes-300.npz", "mimeType": "application/octet-stream", "buffer": small_dataset()}
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_contain_text(
        "Uploaded shapes-300: 5 classes, 240 training and 60 test images"
    )
    expect(page.locator("#upload-progress")).to_have_js_property("value", 1)
    assert re.fullmatch(UUID, page.get_by_label("dataset", exact=True).input_value())
    check_page(page, screenshots, "04-new-job-uploaded")


def test_a_job_on_shapes_trains_while_the_page_watches(
    page: Page, journey: dict[str, Any], screenshots: Path
) -> None:
    page.goto("/dashboard/jobs/new")
    page.get_by_label("dataset", exact=True).select_option("shapes")
    page.get_by_label("epochs").fill("1")
    page.locator("summary", has_text="More options").click()
    page.get_by_label("faithfulness images").fill("16")
    page.get_by_label("bn recalibration batches").fill("2")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(rf"/dashboard/jobs/{UUID}$"))
    journey["job"] = page.url.rsplit("/", 1)[1]
    check_page(page, screenshots, "05-job-queued")

    page.goto("/dashboard/jobs")
    row = page.locator(f'tr[data-job-id="{journey["job"]}"]')
    page.evaluate("window.notReloaded = true")  # gone if the page reloads
    seen: set[str] = set()
    for _ in range(600):  # the row's progress, as the stream moves it
        value = row.locator("progress").evaluate("bar => bar.value")
        if 0 < value < 1 and not any(0 < float(shown) < 1 for shown in seen):
            page.screenshot(path=str(screenshots / "06-jobs-running.png"))
        seen.add(str(value))
        if row.locator(".badge").inner_text() == "succeeded":
            break
        page.wait_for_timeout(200)
    expect(row.locator(".badge")).to_have_text("succeeded")
    assert page.evaluate("window.notReloaded") is True
    assert len(seen) >= 2, f"the progress bar never moved: {seen}"
    expect(row.locator('[data-field="percent"]')).to_have_text("100 %")
    check_page(page, screenshots, "06-jobs")

    page.goto(f"/dashboard/jobs/{journey['job']}")
    expect(page.locator("#chart-accuracy canvas")).to_have_count(1)  # uPlot drew the curves
    expect(page.get_by_role("link", name="Open the model")).to_be_visible()
    check_page(page, screenshots, "07-job-succeeded")
    page.get_by_role("link", name="Open the model").click()
    page.wait_for_url(re.compile(rf"/dashboard/models/{UUID}$"))
    journey["model"] = page.url.rsplit("/", 1)[1]


def test_the_jobs_list_filters_by_state(page: Page, journey: dict[str, Any]) -> None:
    page.goto("/dashboard/jobs")
    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"state=failed"))
    expect(page.locator(f'tr[data-job-id="{journey["job"]}"]')).to_have_count(0)
    page.get_by_label("State").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f'tr[data-job-id="{journey["job"]}"]')).to_have_count(1)
    answer = page.goto("/dashboard/jobs?state=nonsense")  # an edited address: a page, not JSON
    assert answer is not None and answer.status == 422
    expect(page.get_by_role("heading", name="Not understood")).to_be_visible()


def test_the_model_page_shows_the_report_and_pages_the_gallery(
    page: Page, journey: dict[str, Any], screenshots: Path
) -> None:
    page.goto(f"/dashboard/models/{journey['model']}?per_page=2")
    expect(page.locator("table.heat tbody tr")).to_have_count(5)  # shapes has five classes
    expect(page.locator(".class-card img")).to_have_count(10)  # prototype beside CAM prototype
    assert_images_loaded(page)
    expect(page.get_by_role("heading", name="Faithfulness")).to_be_visible()
    expect(page.get_by_role("link", name="Download weights")).to_have_attribute(
        "href", f"/v1/models/{journey['model']}/weights"
    )
    check_page(page, screenshots, "08-model")
    range_text = page.locator("#gallery-range").inner_text()
    total = int(range_text.split(" of ")[1])
    assert range_text == f"1–2 of {total}" and total > 2, range_text
    first = page.locator(".gallery-item h3").first.inner_text()
    page.get_by_role("link", name="Next page").click()
    expect(page.locator("#gallery-range")).to_have_text(f"3–{min(4, total)} of {total}")
    assert page.locator(".gallery-item h3").first.inner_text() != first
    assert_images_loaded(page)
    check_page(page, screenshots, "09-model-gallery-page-2")


def test_an_image_dropped_into_the_playground_gets_its_heatmap(
    page: Page, journey: dict[str, Any], screenshots: Path
) -> None:
    page.goto(f"/dashboard/models/{journey['model']}/explain")
    drop_file(page, "#drop-zone", "dropped-shape.png", shape_png(3))
    expect(page.locator("#chosen")).to_have_text("Chosen: dropped-shape.png")
    expect(page.get_by_role("img", name="Chosen image dropped-shape.png")).to_be_visible()
    page.get_by_label("Colormap").select_option("viridis")
    page.get_by_role("button", name="Explain").click()
    result = page.locator(".result").first
    expect(result.locator(".prediction")).to_contain_text(
        re.compile(r"predicted \w+ \(\d+ %\) · CAM for \w+")
    )
    expect(result.get_by_role("list", name="Probability of each class").locator("li")).to_have_count(5)
    overlay = result.get_by_role("img", name=re.compile("over the image"))
    expect(overlay).to_have_attribute("src", re.compile(r"colormap=viridis"))
    assert_images_loaded(page)
    expect(result.get_by_role("link", name="CAM .npy")).to_have_attribute("href", re.compile(r"\.npy$"))
    page.get_by_label("Colormap").select_option("magma")
    expect(overlay).to_have_attribute("src", re.compile(r"colormap=magma"))
    page.get_by_label("Target class").select_option(label="0 · circle")  # not the prediction
    page.get_by_role("button", name="Explain").click()
    expect(page.locator(".result")).to_have_count(2)
    expect(page.locator(".result").first.locator(".prediction")).to_contain_text("CAM for circle")
    check_page(page, screenshots, "10-playground")
    page.locator(".result").last.get_by_role("link", name="explanation page").click()
    page.wait_for_url(re.compile(rf"/dashboard/explanations/{UUID}$"))
    journey["explanation"] = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("list", name="Probability of each class").locator("li")).to_have_count(5)
    assert_images_loaded(page)
    check_page(page, screenshots, "11-explanation")
    page.goto("/dashboard/explanations")
    expect(page.locator(f'a[href="/dashboard/explanations/{journey["explanation"]}"]')).to_have_count(1)
    check_page(page, screenshots, "12-explanations")
    page.goto("/dashboard/models")
    check_page(page, screenshots, "13-models")


def test_a_forged_form_without_the_csrf_token_is_refused(page: Page, journey: dict[str, Any]) -> None:
    # A CAM layer followed by BatchNorm: valid, with a warning (shown on the job's page).
    job = submit_long_job(page, target_layer="features.4")
    journey["long_job"] = job
    forged = page.request.post(f"/dashboard/jobs/{job}/cancel", form={"csrf_token": "forged"})
    assert forged.status == 403
    # The JSON API with the cookie alone: a request without the X-CSRF-Token header is refused too.
    status = page.evaluate(f"fetch('/v1/jobs/{job}/cancel', {{method: 'POST'}}).then(r => r.status)")
    assert status == 403
    page.reload()
    expect(page.locator('[data-field="state"] .badge')).not_to_have_text(re.compile("cancel"))


def test_cancel_a_job(page: Page, journey: dict[str, Any], screenshots: Path) -> None:
    page.goto(f"/dashboard/jobs/{journey['long_job']}")
    expect(page.locator("#warning-list")).to_contain_text("features.4")
    page.evaluate("window.notReloaded = true")  # the job's own page follows its progress too
    expect(page.locator('[data-field="state"] .badge')).to_have_text("running", timeout=60_000)
    expect(page.locator('[data-field="epoch"]')).to_have_text("1 of 200", timeout=60_000)
    expect(page.locator('[data-field="eta"]')).not_to_have_text("—")
    assert page.evaluate("window.notReloaded") is True
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator('[data-field="state"] .badge')).to_have_text(re.compile(r"cancell(ing|ed)"))
    expect(page.locator('[data-field="state"] .badge')).to_have_text("cancelled", timeout=60_000)
    expect(page.get_by_role("button", name=re.compile("Cancel"))).to_have_count(0)
    expect(page.locator("#live-note")).to_have_text("")  # the page has reloaded itself, as the job ended
    expect(page.locator("#charts")).to_be_hidden()  # no epoch finished: no empty charts
    check_page(page, screenshots, "14-job-cancelled")


def test_a_form_sent_twice_makes_one_job(page: Page, stack: ServiceStack, owner_key: str) -> None:
    """Each rendering of the new-job form carries an Idempotency-Key: sent again (a double click, a
    resend), it replays the first answer; the same key with other values is refused."""
    page.goto("/dashboard/jobs/new")
    form = {
        name: page.locator(f'form.job-form input[name="{name}"]').input_value()
        for name in ("csrf_token", "idempotency_key")
    }
    sent = {**form, "dataset": "shapes", "epochs": "200"}
    first = page.request.post("/dashboard/jobs/new", form=sent, max_redirects=0)
    again = page.request.post("/dashboard/jobs/new", form=sent, max_redirects=0)
    assert first.status == again.status == 303
    assert first.headers["location"] == again.headers["location"]
    changed = page.request.post("/dashboard/jobs/new", form={**sent, "epochs": "100"}, max_redirects=0)
    assert changed.status == 422 and "Idempotency-Key" in changed.text()
    job = first.headers["location"].rsplit("/", 1)[1]
    with httpx.Client(base_url=stack.api.base_url, headers={"Authorization": f"Bearer {owner_key}"}) as api:
        api.post(f"/v1/jobs/{job}/cancel")


def test_a_failed_job_says_why(page: Page, screenshots: Path) -> None:
    submit_long_job(page, max_runtime_s="2")
    expect(page.get_by_role("alert")).to_contain_text("Failed: timeout", timeout=90_000)
    expect(page.get_by_role("alert")).to_contain_text("max_runtime_s")
    check_page(page, screenshots, "15-job-failed")


def test_rows_past_the_streamed_ones_are_polled(page: Page, stack: ServiceStack, owner_key: str) -> None:
    """Four rows follow event streams (a browser opens six connections to a server at most); a fifth
    queued job's row is polled, and still shows its cancellation without a reload."""
    with httpx.Client(base_url=stack.api.base_url, headers={"Authorization": f"Bearer {owner_key}"}) as api:
        jobs = [
            api.post("/v1/jobs", json={"dataset": "shapes", "epochs": 200}).json()["id"] for _ in range(5)
        ]
        try:
            page.goto("/dashboard/jobs")
            page.evaluate("window.notReloaded = true")
            oldest = page.locator(f'tr[data-job-id="{jobs[0]}"]')  # newest first: the fifth row
            assert page.locator("tbody tr").nth(4).get_attribute("data-job-id") == jobs[0]
            api.post(f"/v1/jobs/{jobs[0]}/cancel")
            expect(oldest.locator(".badge")).to_have_text(re.compile(r"cancell(ing|ed)"))
            assert page.evaluate("window.notReloaded") is True
        finally:
            for job in jobs:
                api.post(f"/v1/jobs/{job}/cancel")


def test_another_tenant_sees_none_of_the_first_tenants_pages(
    context: BrowserContext, stack: ServiceStack, journey: dict[str, Any], screenshots: Path
) -> None:
    page = context.new_page()
    sign_in(page, stack.new_api_key("dashboard-stranger"))
    expect(page.locator("tbody tr")).to_have_count(0)
    for path in (
        f"/dashboard/jobs/{journey['job']}",
        f"/dashboard/models/{journey['model']}",
        f"/dashboard/models/{journey['model']}/explain",
        f"/dashboard/explanations/{journey['explanation']}",
        f"/v1/models/{journey['model']}/prototypes/0.png",
    ):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
    page.goto(f"/dashboard/jobs/{journey['job']}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    check_page(page, screenshots, "16-other-tenant-404")


def test_pages_fit_a_narrow_screen(page: Page, journey: dict[str, Any], screenshots: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        for name, path in (
            ("jobs", "/dashboard/jobs"),
            ("job", f"/dashboard/jobs/{journey['job']}"),
            ("new-job", "/dashboard/jobs/new"),
            ("model", f"/dashboard/models/{journey['model']}"),
            ("playground", f"/dashboard/models/{journey['model']}/explain"),
        ):
            page.goto(path)
            page.wait_for_load_state("load")
            page.screenshot(path=str(screenshots / f"narrow-{name}.png"), full_page=True)
            assert horizontal_overflow(page) <= 0, f"{path} scrolls sideways at 390 px"
    finally:
        page.set_viewport_size({"width": 1280, "height": 800})


def test_sign_in_goes_back_only_to_a_dashboard_page(context: BrowserContext, owner_key: str) -> None:
    page = context.new_page()
    for target, landing in (
        ("/dashboard/models", "/dashboard/models"),
        ("https://example.org/", "/dashboard/jobs"),
        ("//example.org/dashboard/", "/dashboard/jobs"),
    ):
        context.clear_cookies()
        page.goto(f"/dashboard/sign-in?next={quote(target, safe='')}")
        page.get_by_label("API key").fill(owner_key)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(rf"^http://127\.0\.0\.1:\d+{landing}$"))


def test_the_api_docs_work_offline(page: Page, screenshots: Path) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Batch-CAM")
    page.screenshot(path=str(screenshots / "17-api-docs.png"))


def test_sign_out_ends_the_session(page: Page) -> None:
    page.goto("/dashboard/jobs")
    cookie = next(c for c in page.context.cookies() if c["name"] == "batchcam_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/dashboard/jobs")
    expect(page).to_have_url(re.compile(r"/dashboard/sign-in"))
    page.context.add_cookies([cookie])  # the old cookie, replayed: the session is gone server-side
    answer = page.request.get("/v1/jobs")
    assert answer.status == 401


def test_no_page_asked_another_host_for_anything(offsite: OffsiteRequests) -> None:
    assert offsite.urls == []


def submit_long_job(page: Page, **options: str) -> str:
    page.goto("/dashboard/jobs/new")
    page.get_by_label("dataset", exact=True).select_option("shapes")
    page.get_by_label("epochs").fill("200")
    page.locator("summary", has_text="More options").click()
    for name, value in options.items():
        page.get_by_label(name.replace("_", " "), exact=True).fill(value)
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(rf"/dashboard/jobs/{UUID}$"))
    return page.url.rsplit("/", 1)[1]


def drop_file(page: Page, selector: str, name: str, content: bytes) -> None:
    """Drop a file as a person drags one from their desktop: a DataTransfer holding it, dispatched on
    the drop zone (dragenter, dragover, drop)."""
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            return transfer;
        }""",
        [name, base64.b64encode(content).decode()],
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": transfer})


def assert_images_loaded(page: Page) -> None:
    # Polled from here: wait_for_function evaluates a string, which the pages' CSP forbids.
    for _ in range(100):
        if page.evaluate("Array.from(document.images).every((image) => image.complete)"):
            break
        page.wait_for_timeout(100)
    broken = page.evaluate(
        "Array.from(document.images).filter((image) => image.naturalWidth === 0).map((image) => image.src)"
    )
    assert broken == []
