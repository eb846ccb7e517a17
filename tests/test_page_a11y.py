"""An axe-core audit of the page in a real Chromium (axe-core vendored in tests/vendor/axe-core, no CDN): loaded, with
a block opened, in compare mode and during the walk, no serious or critical violation.

The page's CSP forbids inline scripts, so the audit runs in a context that bypasses CSP for the injected axe only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
RUN = """async () => {
  const r = await axe.run(document, { resultTypes: ['violations'] });
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, n: v.nodes.length,
      first: v.nodes.slice(0, 3).map((x) => x.target.join(' ')) }));
}"""


@pytest.fixture
def audited(browser, live_server):
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def audit() -> list[dict]:
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.add_script_tag(content=AXE.read_text())
        return page.evaluate(RUN)

    yield page, audit, errors
    context.close()


def _ready(page) -> None:
    page.wait_for_function("() => document.body.dataset.ready === 'true'")


def test_no_serious_accessibility_violations(audited, live_server) -> None:
    page, audit, errors = audited
    page.goto(f"{live_server}/#sd1")
    page.wait_for_function("() => document.body.dataset.ready === 'true' && document.body.dataset.preset === 'sd1'")
    assert audit() == [], "loaded"

    page.locator('#diagram [data-path="input_blocks.1"] > .card').click()
    _ready(page)
    page.locator('#diagram [data-path="input_blocks.1.0"] > .card').click()
    _ready(page)
    assert audit() == [], "a block opened, the details shown"

    page.get_by_role("button", name="Tools").click()
    page.get_by_label("Colour by").select_option("flops")
    _ready(page)
    page.get_by_label("Compare with").select_option("sdxl-base")
    page.wait_for_function("() => document.body.dataset.compare === 'true'")
    assert audit() == [], "compare"
    page.get_by_label("Compare with").select_option("")

    page.get_by_role("button", name="Walk the tensor").click()  # the Walk lesson, in the lesson player
    page.wait_for_function("() => document.body.dataset.lessonShown === '0'")
    page.get_by_role("button", name="Next step").click()
    page.wait_for_function("() => document.body.dataset.lessonShown === '1'")
    assert audit() == [], "the walk"
    assert errors == []
