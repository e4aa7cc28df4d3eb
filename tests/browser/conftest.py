"""The dashboard's browser tests: Debian's Chromium, driven by Playwright, against the whole service
as operators run it (tests/service/service_stack.py). Nothing is downloaded: the browser is the
system's, axe-core comes inside the axe-playwright-python package, and every request a page makes
to another host is refused and recorded (the dashboard must work offline).

Screenshots of every page are written under runs/browser-tests/screenshots/ (printed at the end).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from service.conftest import seaweedfs  # noqa: F401  (the session's S3 server, as tests/service use it)
from service.seaweed import SeaweedServer
from service.service_stack import ServiceStack, service_stack

from browser.pages import OffsiteRequests, refuse_offsite

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "runs" / "browser-tests" / "screenshots"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedServer) -> Iterator[ServiceStack]:  # noqa: F811
    with service_stack(tmp_path_factory.mktemp("dashboard-stack"), seaweedfs, "dashboard") as running:
        yield running


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module-scoped, as the browser and the stack: Playwright's sync API keeps an event loop running
    # in this thread until it stops, which breaks any later test that calls asyncio.run().
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (make test installs it as root)")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start; /dev/shm may be tiny in
    # containers, where Chromium's renderers then crash on long pages.
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def offsite() -> OffsiteRequests:
    return OffsiteRequests()


def open_context(browser: Browser, stack: ServiceStack, offsite: OffsiteRequests) -> BrowserContext:
    context = browser.new_context(base_url=stack.api.base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    refuse_offsite(context, stack.api.base_url, offsite)
    return context


@pytest.fixture
def context(browser: Browser, stack: ServiceStack, offsite: OffsiteRequests) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for one test."""
    opened = open_context(browser, stack, offsite)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def owner_key(stack: ServiceStack) -> str:
    return stack.new_api_key("dashboard-owner")


@pytest.fixture(scope="module")
def owner(browser: Browser, stack: ServiceStack, offsite: OffsiteRequests) -> Iterator[BrowserContext]:
    """The first tenant's browser profile, shared by a module's tests (signed in by the first)."""
    opened = open_context(browser, stack, offsite)
    yield opened
    opened.close()
