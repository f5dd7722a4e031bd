"""The first ten minutes (issue 20): log in as each demo user and visit every page of the
navigation plus the main pages of the two demo models, on the real demo (`load_demo --sync`).

On PostgreSQL the tour's demo is also the one whose story is checked first
(``tests/demo_story.py``, on SQLite by ``tests/monitoring/test_demo.py``): one load of it per
database.

Every page answers 200 (or 403 where that user's navigation does not offer it), the
browser reports no console error, and every Plotly chart on the page either draws data
or says why it is empty (the ``empty_figure`` annotation, or a note in the chart's card);
the dashboard of an unmonitored demo model shows that the empty case is recognised.
The tour also takes the README's screenshots of the demo (docs/screenshots/demo_*.png).

After the tour, on the same load of the demo, the auditor opens its pages with the widest content
at a phone's width (390 px): none may scroll sideways (a long hash wraps, a wide table scrolls inside its own box,
the request page's columns stack).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from monitoring.oversight.models import Incident
from registry.demo import DEMO_PASSWORD
from registry.models import ModelVersion, PromotionRequest
from tests import demo_story
from tests.browser.conftest import DEFAULT_TIMEOUT_MS, login, open_page, screenshot

# serialized_rollback: the story needs the migrations' rows an earlier test's flush emptied
pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

USERS = ["owner", "reviewer", "reviewer2", "auditor", "privacy", "admin"]
MODELS = ["customer-churn", "diabetes-progression", "support-assistant"]
# A demo model without monitoring: its dashboard's charts are empty and must say why.
UNMONITORED = "wine-cultivar"

# Pages a user may be refused: the navigation shows their link only to some users.
# (url name, nav link text) -> an unlinked page must answer 403 for that user.
GATED_BY_NAV = {"registry:audit_log": "Audit log", "monitoring:privacy": "Privacy"}

# (user, url) pairs the tour found broken and that are not fixed yet, each with its reason.
EXPECTED_FAILURES: dict[tuple[str, str], str] = {}

# For each ``.chart`` container: drawn? has a trace with a finite number? the reason it is
# empty (its own annotation text, or a visible note elsewhere in its card)?
CHARTS_JS = """() => Array.from(document.querySelectorAll('.chart')).map((el) => {
    const finite = (v) => typeof v === 'number' && Number.isFinite(v);
    const hasNumber = (a) => {
        if (!a || typeof a.length !== 'number') return false;
        for (let i = 0; i < a.length; i++) {
            const v = a[i];
            if (finite(v) || (v && typeof v.length === 'number' && typeof v !== 'string' && hasNumber(v))) return true;
        }
        return false;
    };
    const traces = el._fullData || [];
    // the value axis: x only for horizontal bars and histograms (elsewhere x is the time axis)
    const valueKeys = (t) => (t.orientation === 'h' || t.type === 'histogram' ? ['x'] : ['y', 'z', 'values']);
    const withData = traces.filter((t) => t.visible !== false && valueKeys(t).some((k) => hasNumber(t[k]))).length;
    const notes = Array.from(el.querySelectorAll('.annotation-text')).map((n) => n.textContent.trim());
    const card = el.closest('.card') || el.parentElement;
    let cardText = '';
    card.querySelectorAll('p, .muted, .msg').forEach((n) => {
        if (!el.contains(n) && n.offsetParent !== null) cardText += n.textContent.trim();
    });
    return {id: el.id, drawn: Boolean(el.dataset.drawn), traces: traces.length, withData,
            explanation: (notes.join(' ') + ' ' + cardText).trim()};
})"""


@pytest.fixture
def demo(midday_clock):
    """The demo exactly as `make run` loads it (registry and monitoring, metrics inline), at noon
    so that the story's second run falls on the same day: (when it started, what it printed)."""
    return demo_story.load()


def model_pages(name: str) -> dict[str, str]:
    """The main pages of one demo model, by a short label."""
    pages = {
        "model": reverse("registry:model_detail", args=[name]),
        "dashboard": reverse("monitoring:model_dashboard", args=[name]),
        "report": reverse("registry:compliance_report", args=[name]),
        "history": reverse("registry:model_history", args=[name]),
    }
    request = PromotionRequest.objects.filter(version__model__name=name).order_by("-created_at", "-pk").first()
    if request is not None:
        pages["promotion"] = reverse("registry:promotion_detail", args=[request.pk])
    if name == "support-assistant":  # four weeks of requests: the latency step at v2's model change
        pages["dashboard"] += "?range=30d"
    newest = ModelVersion.objects.filter(model__name=name).order_by("-version").first()
    if newest is not None:  # an LLM application's newest version shows its diff against production
        pages["version"] = reverse("registry:version_detail", args=[name, newest.version])
    incident = Incident.objects.filter(model__name=name).order_by("-pk").first()
    if incident is not None:
        pages["incident"] = reverse("monitoring:incident_detail", args=[incident.pk])
    return pages


PHONE = {"width": 390, "height": 844}


def phone_pages() -> list[str]:
    """The demo's pages with the widest content: long hashes and URIs, wide tables, two columns."""
    churn, credit = "customer-churn", "credit-approval"
    pages = [
        reverse("registry:version_detail", args=[churn, 2]),  # its training data hash
        reverse("registry:compliance_report", args=[churn]),
        reverse("registry:compliance_report", args=[credit]),  # its fairness tables
        reverse("monitoring:plan", args=[churn]),
        reverse("monitoring:post_market", args=[churn]),
        reverse("monitoring:fleet"),  # the risk tier and cost rollups
    ]
    # every request page: the evidence column and the side column beside it
    pages += [
        reverse("registry:promotion_detail", args=[pk]) for pk in PromotionRequest.objects.values_list("pk", flat=True)
    ]
    return pages


def phone_width_failures(browser, live_server, user) -> list[str]:
    """Pages wider than a 390 px phone for ``user`` (the auditor sees every model)."""
    context, page = open_page(browser)
    failures = []
    try:
        login(page, live_server, user, password=DEMO_PASSWORD)
        page.set_viewport_size(PHONE)
        for url in phone_pages():
            response = page.goto(live_server.url + url)
            settled(page)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            if response.status != 200 or width > PHONE["width"]:
                failures.append(f"{url}: HTTP {response.status}, {width} px wide")
    finally:
        context.close()
    return failures


def settled(page) -> None:
    """Wait until no htmx request of the page is in flight (the navigation's badges and the
    oversight slot load after the page): what they answer is checked with the page. (Waiting
    for the network to be idle cost half a second of silence per page, a minute of the tour.)"""
    page.wait_for_function("() => !document.querySelector('.htmx-request')", timeout=DEFAULT_TIMEOUT_MS)


def wait_for_charts(page) -> None:
    """Let every chart container finish drawing (charts.js sets data-drawn)."""
    if page.locator(".chart").count() == 0:
        return
    try:
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.chart')).every((el) => el.dataset.drawn)",
            timeout=DEFAULT_TIMEOUT_MS,
        )
    except Exception:  # noqa: BLE001 - an undrawn chart is reported by check_charts
        pass


def check_charts(page) -> list[str]:
    problems = []
    charts = page.evaluate(CHARTS_JS)
    page.charts_with_data += sum(1 for chart in charts if chart["withData"])
    page.explained += [f"#{c['id']}: {c['explanation'][:80]}" for c in charts if c["drawn"] and not c["withData"]]
    for chart in charts:
        if not chart["drawn"]:
            problems.append(f"chart #{chart['id']} was never drawn")
        elif chart["withData"] == 0 and not chart["explanation"]:
            problems.append(f"chart #{chart['id']} is empty and says nothing about why")
    return problems


def visit(page, base: str, url: str, expected_status: int) -> list[str]:
    """Open ``url``; return what is wrong with it (empty list: all good)."""
    page.console_errors.clear()
    response = page.goto(base + url)
    problems = []
    status = response.status if response else None
    if status != expected_status:
        problems.append(f"HTTP {status}, expected {expected_status}")
    settled(page)
    wait_for_charts(page)
    if status == 200:
        problems += check_charts(page)
    for error in page.console_errors:
        refused = expected_status != 200 and f"status of {expected_status}" in error
        if not refused:
            problems.append(error)
    return problems


# The README's screenshots: (user, page label or nav url name, file name).
SHOTS = {
    ("owner", "fleet"): "demo_fleet",
    ("owner", "customer-churn:model"): "demo_model",
    ("owner", "customer-churn:dashboard"): "demo_dashboard",
    ("owner", "customer-churn:promotion"): "demo_promotion_request",
    ("owner", "customer-churn:incident"): "demo_incident",
    ("owner", "as_of"): "demo_as_of",
    ("auditor", "customer-churn:report"): "demo_compliance_report",
    ("auditor", "audit_log"): "demo_audit_log",
    ("privacy", "privacy"): "demo_privacy",
    ("owner", "support-assistant:dashboard"): "demo_llm_dashboard",
    ("reviewer", "support-assistant:promotion"): "demo_llm_blocked_request",
    ("owner", "support-assistant:version"): "demo_llm_version_diff",
}


def test_every_demo_user_tours_every_page_without_errors_or_unexplained_empty_charts_and_on_a_phone(
    browser, live_server, demo
):
    """One load of the demo (two minutes on PostgreSQL) for the tour and the phone-width check."""
    demo_story.assert_story(*demo)
    demo_story.assert_second_run_changes_nothing()  # before the tour's logins write
    users = {u.username: u for u in get_user_model().objects.filter(username__in=USERS)}
    base = live_server.url
    pages_by_model = {name: model_pages(name) for name in MODELS}
    assert "promotion" in pages_by_model["customer-churn"] and "incident" in pages_by_model["customer-churn"]
    # The README's promotion screenshot is v4's request, still pending on the live evidence, also
    # after an earlier transactional test in this process flushed the migrations' tier policies.
    churn_request = PromotionRequest.objects.filter(version__model__name="customer-churn").latest("created_at", "pk")
    assert (churn_request.version.version, churn_request.status) == (4, "pending")
    gated = {reverse(name): text for name, text in GATED_BY_NAV.items()}
    failures, visited, charts_with_data = [], 0, 0
    for username in USERS:
        context, page = open_page(browser)
        page.charts_with_data, page.explained = 0, []
        try:
            login(page, live_server, users[username], password=DEMO_PASSWORD)
            page.goto(base + reverse("monitoring:fleet"))
            nav = page.evaluate(
                "() => Array.from(document.querySelectorAll('nav.mainnav a, .userbox a'))"
                ".map((a) => [a.textContent.trim(), new URL(a.href).pathname])"
            )
            nav_urls = [url for _, url in nav]
            assert len(nav_urls) >= 8, f"{username} sees too short a navigation: {nav}"
            tour = [(f"nav {text.split()[0] if text else url}", url) for text, url in nav]
            for url in gated:
                if url not in nav_urls:
                    tour.append((f"unlinked {gated[url]}", url))
            for name, pages in pages_by_model.items():
                tour += [(f"{name}:{label}", url) for label, url in pages.items()]
            tour.append((f"{UNMONITORED}:dashboard", reverse("monitoring:model_dashboard", args=[UNMONITORED])))
            for label, url in tour:
                expected = 403 if url in gated and url not in nav_urls else 200
                problems = visit(page, base, url, expected)
                visited += 1
                key = (username, url)
                if problems and key not in EXPECTED_FAILURES:
                    failures.append(f"{username} {label} {url}: " + "; ".join(problems))
                elif not problems and key in EXPECTED_FAILURES:
                    failures.append(f"{username} {url} now passes: remove it from EXPECTED_FAILURES")
                shot = SHOTS.get((username, label)) or SHOTS.get((username, _nav_name(url)))
                if shot and not problems:
                    take_shot(page, shot)
            charts_with_data += page.charts_with_data
            assert page.explained, f"{username}: {UNMONITORED}'s empty charts were not recognised as explained"
            for note in sorted(set(page.explained)):
                print(f"{username}: empty chart, explained: {note}")  # shown with -s or on failure
        finally:
            context.close()
    assert visited >= len(USERS) * 15
    assert charts_with_data >= len(USERS) * 10, "the chart check found too few charts with data to be trusted"
    assert not failures, f"{len(failures)} of {visited} page visits failed:\n  " + "\n  ".join(failures)
    # At 390 px the reviewer found a version page 732 px wide (its data hash), request pages of
    # 543-617 px (their two columns), reports and plans of 526-614 px (the signal and fairness
    # tables) and the fleet page at 409-435 px (its cost rollups).
    too_wide = phone_width_failures(browser, live_server, users["auditor"])
    assert not too_wide, "pages scroll sideways at 390 px:\n  " + "\n  ".join(too_wide)


# Shots that start further down the page than its top (the dashboard's charts).
SCROLL_TO = {
    "demo_dashboard": "#range-picker",
    "demo_llm_dashboard": "#llm-panels",
    "demo_llm_version_diff": "#llm-diff",
}


def take_shot(page, name: str) -> None:
    if name in SCROLL_TO:
        page.evaluate("(sel) => document.querySelector(sel).scrollIntoView()", SCROLL_TO[name])
    screenshot(page, name)


def _nav_name(url: str) -> str:
    names = {
        reverse("monitoring:fleet"): "fleet",
        reverse("registry:as_of"): "as_of",
        reverse("registry:audit_log"): "audit_log",
        reverse("monitoring:privacy"): "privacy",
    }
    return names.get(url, "")
