"""What the browser tests share: Chromium launched as the machine has it, screenshots for a
closing note, and axe-core's WCAG 2.1 A/AA check of a page."""

import functools
import os

SHOTS = os.environ.get("XIAONENG_SCREENSHOTS", "")


def launch(playwright):
    return playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"],
    )


def shot(page, name):
    """Evidence for a closing note (never committed): a screenshot when XIAONENG_SCREENSHOTS
    names a folder."""
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        size = page.viewport_size
        for w, h in [(1920, 1080), (390, 844)]:
            page.set_viewport_size({"width": w, "height": h})
            page.screenshot(path=os.path.join(SHOTS, f"{name}-{w}x{h}.png"), full_page=True)
        page.set_viewport_size(size)


@functools.cache
def _axe_source(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def axe_clean(page, what, axe_path):
    # Evaluated through the browser's debugging protocol: the page's CSP (no inline script)
    # stays in force for the page itself.
    page.evaluate("() => { " + _axe_source(axe_path) + "\n; window.axe = axe; return true; }")
    result = page.evaluate(
        "async () => await axe.run(document, { runOnly: { type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })"
    )
    bad = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert not bad, f"axe on {what}: {bad}"
