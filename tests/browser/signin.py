"""Staff sign in by OpenID Connect in a real browser, at a real OpenID Provider (npm's
oidc-provider, started by the Rust test). Arguments: the base URL of a web face configured for
the provider, the base URL of a web face whose provider issues ID tokens for another audience,
the path of axe.min.js. Exits non-zero with the reason on the first claim that does not hold."""

import sys

from playwright.sync_api import expect, sync_playwright

import kit

WEB, MISISSUED, AXE = sys.argv[1:4]


def at_provider(page, base, badge):
    """Signs in at the provider as `badge` (its development login takes any password) and
    grants the web face what it asks; the browser comes back to the web face."""
    page.goto(f"{base}/signin?next=/desk")
    kit.axe_clean(page, "the sign-in page", AXE)
    kit.shot(page, "signin")
    page.get_by_role("link", name="统一身份认证登录").click()
    page.locator("input[name=login]").fill(badge)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    if page.locator("input[name=prompt][value=consent]").count():
        page.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/**")


def main():
    with sync_playwright() as p:
        browser = kit.launch(p)
        # The hall manager signs in: the desk greets them with the roles the catalog gives.
        manager = browser.new_context(locale="zh-CN")
        page = manager.new_page()
        callbacks = []
        page.on("request", lambda r: callbacks.append(r.url) if "/signin/callback" in r.url else None)
        at_provider(page, WEB, "HQ-ZW-001")
        assert page.url.startswith(f"{WEB}/desk"), page.url
        expect(page.locator("header p")).to_have_text("郭红 (中心管理、窗口工作人员)")
        cookie = next(c for c in manager.cookies() if c["name"] == "xn_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax", cookie
        assert callbacks, "the provider sent the browser back to the callback"

        # The same callback again (a replayed code, from the same browser or another) signs
        # no one in: the sign-in it belonged to is over.
        for ctx in (manager, browser.new_context(locale="zh-CN")):
            again = ctx.new_page()
            r = again.goto(callbacks[0])
            assert r.status == 403, r.status
            expect(again.locator(".msg")).to_contain_text("登录已过期或不是从本系统发起")

        # The supervisor's roles come from the catalog too: no window buttons for them.
        office = browser.new_context(locale="zh-CN").new_page()
        at_provider(office, WEB, "HQ-ZW-002")
        expect(office.locator("header p")).to_have_text("许杰 (效能办)")

        # Someone the provider knows but the catalog does not is refused.
        stranger = browser.new_context(locale="zh-CN").new_page()
        at_provider(stranger, WEB, "NOT-STAFF-9")
        expect(stranger.locator(".msg")).to_have_text("工号 NOT-STAFF-9 不是本平台登记的工作人员")
        assert not [c for c in stranger.context.cookies() if c["name"] == "xn_session"]

        # An ID token for another audience is refused, whoever it names.
        misled = browser.new_context(locale="zh-CN").new_page()
        at_provider(misled, MISISSUED, "HQ-ZW-001")
        expect(misled.locator(".msg")).to_have_text("身份凭证无效: 不是签发给本系统的 (受众不符)")
        kit.axe_clean(misled, "a refused sign-in", AXE)
        assert not [c for c in misled.context.cookies() if c["name"] == "xn_session"]
        d = misled.context.new_page()
        d.goto(f"{MISISSUED}/desk")
        assert "/signin" in d.url, d.url
        browser.close()
        print("signed in and refused as expected", flush=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", flush=True)
        sys.exit(1)
