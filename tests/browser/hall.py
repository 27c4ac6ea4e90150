"""The hall in a real browser (Debian's Chromium driven by Playwright), against the real
services and the web face the Rust test started. Arguments: the web face's base URL, the hall
id, the window id, the path of axe-core's axe.min.js, a second window's id, the number of the
third ticket issued (called by number). The script asks the Rust test to restart
a process by printing `restart <name>` and waits for `ok` on stdin. It exits non-zero with the
reason on the first claim that does not hold."""

import json
import os
import sys
import time

from playwright.sync_api import expect, sync_playwright

import kit
from kit import SHOTS, shot

BASE, HALL, WINDOW, AXE, WINDOW2, THIRD = sys.argv[1:7]

SPEECH_STUB = """
window.__spoken = [];
window.speechSynthesis.speak = function (u) {
  window.__spoken.push({ text: u.text, lang: u.lang });
  if (u.onend) { setTimeout(u.onend, 10); }
};
"""


def ask(what):
    print(f"restart {what}", flush=True)
    line = sys.stdin.readline().strip()
    assert line == "ok", f"the test did not restart {what}: {line!r}"


def axe_clean(page, what):
    kit.axe_clean(page, what, AXE)


def decode_qr(locator):
    """The text of the QR code `locator` shows, read from a screenshot of it (zxing-cpp)."""
    import io

    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(locator.screenshot())))
    assert len(found) == 1, f"one QR code, got {len(found)}"
    return found[0].text


def hears(screen, before, text):
    """The screen's next announcement after `before` of them is `text`; their new count."""
    said = wait_spoken(screen, before + 1, 3000)
    assert said[before]["text"] == text, (before, said)
    return before + 1


def act(page, key):
    """Presses a desk's shortcut key and waits for the desk it leads to."""
    with page.expect_navigation():
        page.keyboard.press(key)


def spoken(page):
    return page.evaluate("() => window.__spoken")


def wait_spoken(page, n, timeout_ms):
    page.wait_for_function(f"() => window.__spoken.length >= {n}", timeout=timeout_ms)
    return spoken(page)


# Staff accounts of the starter catalog (410702), by badge number: their roles come from the
# catalog, not from the sign-in.
CLERK, CLERK2, HALL_MANAGER, SUPERVISOR = "HQ-SCJ-002", "HQ-MZ-001", "HQ-ZW-001", "HQ-ZW-002"


def sign_in(context, badge, window=None):
    page = context.new_page()
    page.goto(f"{BASE}/signin?next=/desk")
    page.get_by_label("工作人员").select_option(badge)
    page.get_by_role("button", name="登录").click()
    page.goto(f"{BASE}/desk?hall={HALL}&window={window or WINDOW}")
    return page


def main():
    with sync_playwright() as p:
        browser = kit.launch(p)
        tv = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN",
                                 timezone_id="Asia/Shanghai")
        tv.add_init_script(SPEECH_STUB)
        screen = tv.new_page()
        screen.goto(f"{BASE}/halls/{HALL}/screen")
        expect(screen.locator("#status")).to_have_text("", timeout=10000)
        axe_clean(screen, "the calling screen")

        staff = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        desk = sign_in(staff, CLERK)
        expect(desk.get_by_role("button", name="叫号 (N)")).to_be_visible()
        axe_clean(desk, "the window desk")

        # Keyboard only: N calls the next ticket; the screen shows it and says it within 1 s.
        act(desk, "n")
        expect(desk.locator(".msg")).to_contain_text("号到 ZH01 窗口办理")
        number = desk.locator(".msg").inner_text().split(" ")[1]
        expect(screen.locator("#now")).to_contain_text(number, timeout=1000)
        said = wait_spoken(screen, 1, 1000)
        shot(screen, "screen")
        if SHOTS:
            screen.set_viewport_size({"width": 1366, "height": 768})
            screen.screenshot(path=os.path.join(SHOTS, "screen-1366x768.png"))
            screen.set_viewport_size({"width": 1920, "height": 1080})
        shot(desk, "desk")
        assert said[0] == {"text": f"请 {number} 号到 ZH01 窗口办理", "lang": "zh-CN"}, said
        # A second browser on the same window cannot call a second ticket while one is called.
        twin = sign_in(browser.new_context(locale="zh-CN"), CLERK)
        act(twin, "n")
        expect(twin.locator(".msg")).to_contain_text("当前状态下不能这样操作")
        # (Nothing was announced for it: the next thing the screen says is the recall below.)
        # A recall is announced again.
        act(desk, "r")
        said = wait_spoken(screen, 2, 1000)
        assert said[1]["text"] == f"请 {number} 号到 ZH01 窗口办理", said

        # The queue service restarts, then the web face: each time the screen says it is
        # reconnecting, carries on without a reload, and the next recall is heard again.
        screen.evaluate("() => { window.__marker = 'same page'; return 1; }")
        board = screen.locator("main.board")
        heard = 2
        for what, attr in [("queue", "data-offline"), ("web", "data-connections")]:
            before = int(board.get_attribute(attr) or "0") if attr == "data-offline" else 1
            ask(what)
            screen.wait_for_function(
                f"() => Number(document.querySelector('main.board').getAttribute('{attr}') || 0) > {before}",
                timeout=30000,
            )
            expect(screen.locator("#status")).to_have_text("", timeout=30000)
            desk.goto(f"{BASE}/desk?hall={HALL}&window={WINDOW}")
            act(desk, "r")
            heard += 1
            print(f"after the {what} restart: recalled", flush=True)
            said = wait_spoken(screen, heard, 2000)
            assert said[-1]["text"] == f"请 {number} 号到 ZH01 窗口办理", (what, said)
        assert screen.evaluate("() => window.__marker") == "same page", "the screen reloaded"

        # A forged form post (no CSRF token) is refused and calls nothing.
        r = desk.request.post(f"{BASE}/desk/act", form={"hall": HALL, "window": WINDOW, "action": "call_next"})
        assert r.status == 403, r.status
        # A role without the right does not see the buttons.
        office = sign_in(browser.new_context(locale="zh-CN"), SUPERVISOR)
        assert office.get_by_role("button", name="叫号 (N)").count() == 0

        # Start and finish: the pad shows the rating and a QR code of the rating link.
        desk.goto(f"{BASE}/desk?hall={HALL}&window={WINDOW}")
        act(desk, "s")
        act(desk, "f")
        expect(desk.locator(".msg")).to_contain_text("已办结")
        # The tablet is registered as ZH01's pad by a hall manager; unregistered, it shows
        # nothing to rate.
        stranger = browser.new_context(locale="zh-CN").new_page()
        stranger.goto(f"{BASE}/pads/{HALL}/ZH01")
        expect(stranger.get_by_role("heading", level=1)).to_have_text("评价器未登记")
        tablet = sign_in(browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN"),
                         HALL_MANAGER)
        tablet.goto(f"{BASE}/pads/{HALL}/ZH01")
        tablet.get_by_role("button", name="登记为本窗口评价器").click()
        deadline = time.time() + 60
        while tablet.get_by_text("请对本次服务评价").count() == 0:
            assert time.time() < deadline, "the pad never showed the rating"
            tablet.wait_for_load_state()
            tablet.wait_for_timeout(500)
        assert tablet.locator(".qr svg").count() == 1, "a QR code"
        link = tablet.locator(".qr .link a").get_attribute("href")
        assert "/rate/" in link, link
        assert decode_qr(tablet.locator(".qr svg")) == link, "the QR code is the rating link"
        axe_clean(tablet, "the window pad")
        shot(tablet, "pad")

        # The citizen's phone: 不满意 without a reason is refused beside the field; with one
        # it is taken; a second visit cannot rate again.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                    is_mobile=True).new_page()
        phone.goto(link)
        axe_clean(phone, "the QR rating page")
        shot(phone, "rate")
        phone.get_by_role("radio", name="不满意", exact=True).check()
        phone.get_by_role("button", name="提交评价").click()
        expect(phone.locator("#comment-error")).to_have_text("差评请填写理由或意见")
        shot(phone, "rate-refused")
        assert phone.get_by_label("意见或理由 (差评必填)").get_attribute("aria-describedby") == "comment-error"
        expect(phone.get_by_role("radio", name="不满意", exact=True)).to_be_checked()
        phone.get_by_label("意见或理由 (差评必填)").fill("<script>alert(1)</script>等候太久")
        phone.get_by_role("button", name="提交评价").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("感谢您的评价!")
        # Rated from the phone: the pad goes back to idle by itself.
        expect(tablet.get_by_role("heading", level=1)).to_have_text("ZH01 窗口", timeout=40000)
        phone.goto(link)
        expect(phone.get_by_role("heading", level=1)).to_have_text("您已评价, 感谢您的反馈")
        phone.get_by_label("追加评价 (可追评一次)").fill("后来又打电话解释了")
        phone.get_by_role("button", name="提交追评").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("追评已提交, 感谢您的反馈")
        phone.goto(link)
        phone.get_by_label("追加评价 (可追评一次)").fill("再追一次")
        phone.get_by_role("button", name="提交追评").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("您已追评过")
        forged = phone.request.get(link[:-3] + "abc")
        assert forged.status == 404, forged.status
        # Transfer to a named window: ZH01 calls the next ticket and sends it to ZH02, whose
        # clerk calls exactly that ticket next.
        desk.goto(f"{BASE}/desk?hall={HALL}&window={WINDOW}")
        said = len(spoken(screen))
        act(desk, "n")
        second = desk.locator(".msg").inner_text().split(" ")[1]
        said = hears(screen, said, f"请 {second} 号到 ZH01 窗口办理")
        old_matter = desk.locator(".ticket dd").nth(1).inner_text()
        desk.get_by_label("转至窗口").select_option(label="ZH02 窗口")
        # ... and to another matter: ZH02's desk shows the ticket under the new one.
        matter = desk.get_by_label("转至事项")
        matter.select_option(index=2)
        new_matter = matter.locator("option:checked").inner_text()
        if new_matter == old_matter:
            matter.select_option(index=1)
            new_matter = matter.locator("option:checked").inner_text()
        assert new_matter != old_matter, new_matter
        desk.get_by_role("button", name="转办 (T)").click()
        expect(desk.locator(".msg")).to_have_text(f"{second} 号已转办")
        other = sign_in(browser.new_context(locale="zh-CN"), CLERK2, WINDOW2)
        act(other, "n")
        expect(other.locator(".msg")).to_have_text(f"请 {second} 号到 ZH02 窗口办理")
        expect(other.locator(".ticket dd").nth(1)).to_have_text(new_matter)
        said = hears(screen, said, f"请 {second} 号到 ZH02 窗口办理")

        # A ticket called by the number the citizen holds (typed as they say it).
        desk.goto(f"{BASE}/desk?hall={HALL}&window={WINDOW}")
        desk.keyboard.press("c")
        desk.keyboard.type(THIRD.lower())
        act(desk, "Enter")
        expect(desk.locator(".msg")).to_have_text(f"请 {THIRD} 号到 ZH01 窗口办理")
        said = hears(screen, said, f"请 {THIRD} 号到 ZH01 窗口办理")
        act(desk, "s")
        act(desk, "f")
        expect(desk.locator(".msg")).to_have_text(f"{THIRD} 号已办结")
        # Nobody rates it on the pad: after its timeout the pad is idle again.
        expect(tablet.get_by_text("请对本次服务评价")).to_be_visible(timeout=30000)
        expect(tablet.get_by_role("heading", level=1)).to_have_text("ZH01 窗口", timeout=60000)

        # A double click on 叫号 calls one ticket: the next thing heard after the call is its
        # recall (and the Rust test finds the fifth ticket still waiting).
        desk.goto(f"{BASE}/desk?hall={HALL}&window={WINDOW}")
        with desk.expect_navigation():
            desk.get_by_role("button", name="叫号 (N)").dblclick()
        expect(desk.locator(".msg")).to_contain_text("号到 ZH01 窗口办理")
        fourth = desk.locator(".msg").inner_text().split(" ")[1]
        act(desk, "r")
        said = hears(screen, said, f"请 {fourth} 号到 ZH01 窗口办理")
        said = hears(screen, said, f"请 {fourth} 号到 ZH01 窗口办理")
        print(json.dumps({"rated": link.rsplit("/", 1)[1], "number": number}), flush=True)
        browser.close()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", flush=True)
        sys.exit(1)
