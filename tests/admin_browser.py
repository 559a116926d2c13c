#!/usr/bin/env python3
"""A hostile web page in a real browser against the admin endpoint.

Run by tests/admin_browser.rs against a running sidecar:

    python3 tests/admin_browser.py ADMIN_PORT

1. A page on another origin (a local HTTP server on another port) makes
   headless Chromium send what any web page may: `fetch(admin + "/reload",
   {mode: "no-cors", method: "POST", body: "x"})` (text/plain), the same
   without a body, and a form POST. The browser gets opaque answers; the
   Rust side checks that no reload happened.
2. DNS rebinding: Chromium resolves evil.example to 127.0.0.1 (as a
   rebinding DNS server would make it) and loads
   http://evil.example:ADMIN_PORT/status.json: it must get 421, not the
   status.

Prints one line per check; exit status 0 when every check holds.
"""

import http.server
import sys
import threading

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

PAGE = """<!doctype html><html><head><title>evil</title></head><body>
<form id="f" method="POST" action="http://127.0.0.1:{port}/reload" target="sink">
<input name="a" value="b"></form><iframe name="sink"></iframe>
<script>
async function attack() {{
  const url = "http://127.0.0.1:{port}/reload";
  try {{ await fetch(url, {{mode: "no-cors", method: "POST", body: "x"}}); }} catch (e) {{}}
  try {{ await fetch(url, {{mode: "no-cors", method: "POST"}}); }} catch (e) {{}}
  document.getElementById("f").submit();
  document.title = "sent";
}}
attack();
</script></body></html>"""


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok  ", what)


def serve_page(admin_port):
    body = PAGE.format(port=admin_port).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def main(admin_port):
    page_port = serve_page(admin_port)
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--host-resolver-rules=MAP evil.example 127.0.0.1"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(f"http://127.0.0.1:{page_port}/")
        WebDriverWait(driver, 30).until(lambda d: d.title == "sent")
        check(driver.title == "sent", "the other origin's page sent its POSTs to /reload")

        driver.get(f"http://evil.example:{admin_port}/status.json")
        text = driver.find_element("tag name", "body").text
        check("misdirected request" in text, f"a rebound name gets the refusal ({text[:80]!r})")
        check("routes" not in text, "and not the status")
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]))
    except AssertionError as e:
        print("FAIL", e)
        sys.exit(1)
