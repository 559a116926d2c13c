#!/usr/bin/env python3
"""The status page in a real browser: headless Chromium through Selenium.

Run by tests/status_page.rs against a running sidecar whose routes it set
up (see that file for what each route has seen):

    python3 tests/status_page.py http://127.0.0.1:PORT/status SCREENSHOT.png

Loads the page, checks what an operator sees (routes in config order, the
trust-mode route marked, upstream results, open connections, certificate
warning colours, an attacker-chosen peer subject shown as text and never
run), and saves a full-page screenshot. Exit status 0 when every check
holds; otherwise the first failed check is printed.

Needs Debian's chromium + chromium-driver and the selenium module
(tests/setup.sh installs them).
"""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

WARNING_BG = "rgba(255, 243, 205, 1)"
CRITICAL_BG = "rgba(248, 215, 218, 1)"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok  ", what)


def main(url, shot):
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(url)
        check(driver.title == "tls-sidecar status", f"title is the page's own ({driver.title!r})")
        check(not driver.find_elements(By.TAG_NAME, "script"), "the page holds no script element")
        check(driver.find_element(By.ID, "state").text == "ready", "the sidecar shows as ready")

        sections = driver.find_elements(By.CSS_SELECTOR, "section.route")
        names = [s.get_attribute("data-route") for s in sections]
        check(names == ["statserver", "gms-web", "legacy-trust", "failing"],
              f"every route, in config order ({names})")
        by = dict(zip(names, sections))

        trust = [n for n, s in by.items() if s.find_elements(By.CSS_SELECTOR, ".badge.trust")]
        check(trust == ["legacy-trust"], f"only the trust-mode route is marked ({trust})")
        badge = by["legacy-trust"].find_element(By.CSS_SELECTOR, ".badge.trust")
        check("TRUST MODE" in badge.text, "the mark says trust mode")

        stat = by["statserver"]
        rows = stat.find_elements(By.CSS_SELECTOR, "table.upstreams tr")[1:]
        cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows]
        check(len(cells) == 2 and cells[0][0] == "primary" and cells[1][0] == "backup 1",
              f"both upstreams in order ({cells})")
        check(cells[0][2].startswith("error:") and cells[0][6] == "4",
              f"the primary's last result is its error, 4 failures ({cells[0]})")
        check(cells[1][2] == "ok" and cells[1][5] == "4" and cells[1][3].endswith(" ms"),
              f"the backup connected 4 times, latency shown ({cells[1]})")
        check(stat.find_element(By.CSS_SELECTOR, "td.open").text == "1", "one open connection")
        ok = stat.find_element(By.CSS_SELECTOR, "table.recent td[data-result='ok']").text
        check(ok == "4", f"4 ok connections in the window ({ok})")

        client = stat.find_element(By.CSS_SELECTOR, "table.certs tr[data-role='client']")
        check("warning" in client.get_attribute("class").split(), "a client certificate under 30 days is a warning")
        bg = client.find_element(By.TAG_NAME, "td").value_of_css_property("background-color")
        check(bg == WARNING_BG, f"in the warning colour ({bg})")

        server = by["gms-web"].find_element(By.CSS_SELECTOR, "table.certs tr[data-role='server']")
        check("critical" in server.get_attribute("class").split(), "a server certificate under 7 days is critical")
        bg = server.find_element(By.TAG_NAME, "td").value_of_css_property("background-color")
        check(bg == CRITICAL_BG, f"in the critical colour ({bg})")

        peer = by["legacy-trust"].find_element(By.CSS_SELECTOR, "table.certs tr[data-role='peer']")
        subject = peer.find_elements(By.TAG_NAME, "td")[1].text
        check("<script>document.title='pwned'</script>" in subject,
              f"the peer's hostile subject is shown as text ({subject!r})")
        check(driver.title != "pwned", "and never run")

        fail = by["failing"].find_element(By.CSS_SELECTOR, "table.failures")
        check("unknown_ca" in fail.text, f"failures by reason ({fail.text!r})")

        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(max(height + 40, 600), 4000))
        driver.save_screenshot(shot)
        print("screenshot", shot)
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except AssertionError as e:
        print("FAIL", e)
        sys.exit(1)
