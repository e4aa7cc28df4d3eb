"""What the dashboard tests do on every page: sign in, screenshot, accessibility and layout checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, Route

BLOCKING_IMPACTS = ("serious", "critical")


@dataclass
class OffsiteRequests:
    """Requests a page tried to make to another host (a CDN, a web font): refused and kept here."""

    urls: list[str] = field(default_factory=list)


def refuse_offsite(context: BrowserContext, base_url: str, offsite: OffsiteRequests) -> None:
    own = urlsplit(base_url).netloc

    def handle(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == own:
            route.continue_()
        else:
            offsite.urls.append(url)
            route.abort()

    context.route("**/*", handle)


def sign_in(page: Page, api_key: str) -> None:
    page.goto("/dashboard/sign-in")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/jobs")


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def check_page(page: Page, screenshots: Path, name: str) -> None:
    """Screenshot the whole page, then require no serious or critical axe-core violation and no
    sideways scrolling of the page itself (wide tables scroll inside their own box)."""
    page.wait_for_load_state("load")
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    assert serious_violations(page) == [], name
    assert horizontal_overflow(page) <= 0, f"{name} scrolls sideways at {page.viewport_size}"
