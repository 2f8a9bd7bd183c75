"""An HTML mail's inline images (cid:) show in the thread frame, in Chromium."""

from __future__ import annotations

from email.message import EmailMessage

from admin_harness import add_operator, log_in_browser, tiny_png
from daemon_harness import SUPPORT, Daemon
from playwright.async_api import Page, expect

OPERATOR = "anna@firm.test"


async def test_inline_cid_images_render_in_the_mail_frame(daemon: Daemon, page: Page) -> None:
    """The image a mail references as cid: is drawn inside the sandboxed frame (from
    the stored attachment, as a data: URL), with nothing fetched from elsewhere."""
    await add_operator(daemon, OPERATOR)
    msg = EmailMessage()
    msg["From"] = "Rossi Srl <cliente@example.it>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Foto della caldaia"
    msg.set_content("La foto è nell'HTML.")
    msg.add_alternative('<p>Ecco la caldaia:</p><img src="cid:caldaia@example.it" '
                        'alt="caldaia">', subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(tiny_png(), maintype="image", subtype="png",
                          cid="<caldaia@example.it>", filename="caldaia.png")
    assert (await daemon.send(msg.as_bytes()))[0] == 250

    requests: list[str] = []
    page.context.on("request", lambda request: requests.append(request.url))
    await log_in_browser(page, OPERATOR)
    await page.goto("/interventions/1")
    await page.click("summary:has-text('Formatted mail')")
    frame = page.frame_locator("iframe[sandbox]").first
    image = frame.locator("img[alt=caldaia]")
    await expect(image).to_be_visible()
    await expect(image).to_have_js_property("naturalWidth", 160)
    assert not [url for url in requests if "cid:" in url or "example.it" in url]
