"""The website demo and the agent desktop, used as a person would in a real headless Chromium.

One `nba serve` on the bundled rules with a SQLite store in a temporary directory: the pages
talk to it over HTTP through /nba.js, and the tests check what they did in the store and in
the next decision, not only in the DOM. Debian's chromium (/usr/bin/chromium, installed by
.ci/run) is driven by Playwright's Python package; Playwright's own browsers are never
downloaded. Without chromium the tests skip on a developer's machine and fail under CI=true.

Screenshots of both pages are taken by the same run; with NBA_SCREENSHOTS=DIR they are
written there (`NBA_SCREENSHOTS=docs/screenshots` refreshes the README's).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from playwright.sync_api import Browser, Locator, Page

from nba.pipeline.types import Interaction
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import REPO
from tests.server.nba_process import ServerProcess, serving

pytestmark = pytest.mark.slow

WAIT_MS = 10_000  # any single page step; a real one takes tens of milliseconds
RETENTION = 400 * 86400
OUTCOME = {v.number: v.name for v in pb.Outcome.DESCRIPTOR.values}


@dataclass
class Site:
    url: str
    store_url: str
    server: ServerProcess

    def history(self, customer_id: str) -> list[Interaction]:
        """What the store holds for the customer, read as the server reads it."""
        store = open_store(self.store_url, retention_seconds=RETENTION)
        try:
            return store.history(customer_id, since=0)
        finally:
            store.close()

    def decide(self, request: dict[str, object]) -> pb.DecideResponse:
        answer = httpx.post(
            f"{self.url}/nba.v1.DecisionService/Decide",
            json={**request, "explain": True},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return json_format.Parse(answer.text, pb.DecideResponse())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'interactions.sqlite3'}"
    port = free_port()
    with serving("--http-port", str(port), "--store", store_url) as server:
        yield Site(f"http://127.0.0.1:{port}", store_url, server)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (its own localStorage) with a desk-sized window."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    target = Path(os.environ.get("NBA_SCREENSHOTS") or tmp_path)
    target = target if target.is_absolute() else REPO / target
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)
    assert (target / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def outcomes(site: Site, customer_id: str) -> list[tuple[str, str]]:
    return [(i.action_id, OUTCOME[i.outcome]) for i in site.history(customer_id)]


# ---------------------------------------------------------------------------- demo


def test_demo_shows_an_offer_records_the_impression_and_rests_it_once_dismissed(
    site: Site, page: Page, tmp_path: Path
) -> None:
    visitor = "anon-demo-0001"
    page.goto(f"{site.url}/demo/?visitor={visitor}")
    offer = page.locator("#offer[data-state=shown]")
    offer.wait_for(timeout=WAIT_MS)
    assert offer.get_attribute("data-fallback") == "false"
    assert offer.get_attribute("data-action-id") == "acct_open_online"
    assert "Open an account in 10 minutes" in offer.inner_text()
    assert page.get_by_role("button", name="Start now").is_visible()
    page.locator("#status[data-recorded='IMPRESSION']").wait_for(timeout=WAIT_MS)
    assert outcomes(site, visitor) == [("acct_open_online", "IMPRESSION")]
    page.set_viewport_size({"width": 1280, "height": 420})  # the placement, not blank page
    screenshot(page, "demo.png", tmp_path)

    page.get_by_role("button", name="No thanks").click()
    page.locator("#offer[data-state=dismissed]").wait_for(timeout=WAIT_MS)
    page.locator("#status[data-recorded='IMPRESSION DISMISS']").wait_for(timeout=WAIT_MS)
    assert outcomes(site, visitor)[-1] == ("acct_open_online", "DISMISS")

    page.reload()
    offer.wait_for(timeout=WAIT_MS)
    # the closed banner rests on the web (policy web_banner_dismissed): the placement's fallback
    assert offer.get_attribute("data-action-id") == "svc_mobile_app"
    assert offer.get_attribute("data-reason") == "nothing-qualified"


def test_demo_click_is_recorded(site: Site, page: Page) -> None:
    visitor = "anon-demo-0002"
    page.goto(f"{site.url}/demo/?visitor={visitor}")
    page.locator("#status[data-recorded='IMPRESSION']").wait_for(timeout=WAIT_MS)
    page.get_by_role("button", name="Start now").click()
    page.locator("#status[data-recorded='IMPRESSION CLICK']").wait_for(timeout=WAIT_MS)
    assert outcomes(site, visitor) == [
        ("acct_open_online", "IMPRESSION"),
        ("acct_open_online", "CLICK"),
    ]


# ---------------------------------------------------------------------------- desk


def desk_card(page: Page, action_id: str) -> Locator:
    return page.locator(f"#recommendations article[data-action-id='{action_id}']")


def test_desk_accept_records_it_and_the_one_time_offer_disappears(
    site: Site, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{site.url}/desk/")
    page.get_by_label("Customer id").fill("c-desk-0001")
    page.get_by_label("Lifecycle stage").select_option("prospect")
    page.get_by_label("Profile (JSON)").fill('{"age": 34, "monthly_income": 2600}')
    page.get_by_role("button", name="Look up").click()
    top = page.locator("#recommendations article").first
    top.wait_for(timeout=WAIT_MS)
    assert top.get_attribute("data-action-id") == "acct_current_switch"
    text = top.inner_text()
    assert "we pay £175 when you switch" in text  # the script to read
    assert "SWITCH175" in text and "Terms:" in text  # the offer and its terms
    why = top.locator(".why").inner_text()
    assert "is a prospect" in why and "==" not in why and "profile." not in why

    top.get_by_role("button", name="Accept").click()
    desk_card(page, "acct_current_switch").wait_for(state="detached", timeout=WAIT_MS)
    assert page.locator("#recommendations article").count() > 0
    assert ("acct_current_switch", "ACCEPT") in outcomes(site, "c-desk-0001")
    after = site.decide(
        {
            "customerId": "c-desk-0001",
            "lifecycleStage": "prospect",
            "profile": {"age": 34, "monthly_income": 2600},
            "touchpoint": {"channel": "call_center"},
        }
    )
    gone = next(e for e in after.excluded if e.action_id == "acct_current_switch")
    assert gone.rule == "one_time", gone


def test_desk_example_customer_decline_rests_the_offer_and_why_not_lists_exclusions(
    site: Site, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{site.url}/desk/")
    page.get_by_label("Find a customer").fill("at risk")
    page.get_by_role("button", name="c-60345: call center at risk").click()
    top = page.locator("#recommendations article").first
    top.wait_for(timeout=WAIT_MS)
    assert top.get_attribute("data-action-id") == "ret_fee_waiver"
    assert "asked to close the account" in top.locator(".why").inner_text()
    page.locator("#whynot-box summary").click()
    why_not = page.locator("#whynot li[data-action-id='acct_current_switch']").inner_text()
    assert "acct_current_switch" in why_not and "current account" in why_not
    screenshot(page, "desk.png", tmp_path)

    top.get_by_role("button", name="Decline").click()
    desk_card(page, "ret_fee_waiver").wait_for(state="detached", timeout=WAIT_MS)
    assert ("ret_fee_waiver", "REJECT") in outcomes(site, "c-60345")
    rests = page.locator("#whynot li[data-action-id='ret_fee_waiver']").inner_text()
    assert "not made again for three months" in rests


def test_desk_shows_the_fallback_when_the_decision_misses_its_budget(
    site: Site, page: Page
) -> None:
    """The server is stopped (SIGSTOP) after the page loaded: no decision can arrive in time."""
    page.goto(f"{site.url}/desk/?budgetMs=400")
    customer = page.get_by_role("button", name="c-61873: call center complaint")
    customer.wait_for(timeout=WAIT_MS)
    site.server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        customer.click()
        page.locator("#recommendations[data-fallback='true'] article").wait_for(timeout=WAIT_MS)
        waited = time.monotonic() - started
    finally:
        site.server.process.send_signal(signal.SIGCONT)
    assert waited < 5, "the page waited far past its budget"
    box = page.locator("#recommendations").inner_text()
    assert "can I just check we have the right address" in box
    assert "fallback: budget" in box
    assert "no decision within 400 ms" in page.locator("#status").inner_text()
    assert page.get_by_role("button", name="Accept").count() == 0
