#!/usr/bin/python3
"""The board in a real browser (docs/board.md, "Tests"): headless Chromium, driven by Selenium through chromedriver
(Debian's chromium, chromium-driver, python3-selenium), with alerts published to the real broker by pika
(python3-pika). Everything on loopback.

It logs in as a supervisor, publishes another unit's alert and then one of hers, and checks that hers appears
within --max-seconds without a reload while the other never does; that the other unit's dossier is a 404 even by
direct URL; that her dossier's timeline opens; that her alert leaves when its `cleared` is published. With
--screenshots it saves the page at desktop (1920x1080) and phone (360x800) widths.

--alerts names a JSON file: {"amqp": URL, "exchange": NAME, "open": MSG, "other": MSG, "cleared": MSG,
"extras": [MSG...]}, each MSG {"routingKey", "body", "dossier"}. Prints one JSON line with what it measured; exits 1
on the first check that fails, saying which.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import pika
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By


def fail(message):
    print(json.dumps({"ok": False, "failed": message}, ensure_ascii=False))
    sys.exit(1)


def publish(spec, messages):
    connection = pika.BlockingConnection(pika.URLParameters(spec["amqp"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for m in messages:
            body = m["body"].encode()
            channel.basic_publish(
                exchange=spec["exchange"], routing_key=m["routingKey"], body=body, mandatory=False,
                properties=pika.BasicProperties(
                    delivery_mode=2, content_type="application/json", message_id=json.loads(body)["alertId"]))
    finally:
        connection.close()


def wait_for(what, condition, seconds):
    """Polls `condition` every 20 ms; returns the seconds it took, or fails. While a page is being replaced its
    elements go stale or are not there yet: the condition is then false, not an error."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if condition():
                return time.monotonic() - started
        except (StaleElementReferenceException, NoSuchElementException):
            pass
        time.sleep(0.02)
    fail(f"{what}: not within {seconds} s")


def rows(driver, dossier):
    return driver.find_elements(By.CSS_SELECTOR, f'#alerts tbody tr[data-dossier="{dossier}"]')


def status_of(url, cookie):
    request = urllib.request.Request(url, headers={"Cookie": f"sameday_board={cookie}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--person", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--alerts", required=True)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    parser.add_argument("--screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    spec = json.load(open(args.alerts, encoding="utf-8"))
    base = args.url.rstrip("/")

    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1920,1080", "--lang=vi", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    result = {"ok": True}
    try:
        driver.set_page_load_timeout(20)
        driver.get(base + "/")
        if "/login" not in driver.current_url:
            fail(f"the board without a session should lead to /login, not {driver.current_url}")
        driver.find_element(By.ID, "person").send_keys(args.person)
        driver.find_element(By.ID, "password").send_keys("wrong password")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for("a wrong password refused with a message",
                 lambda: "không đúng" in driver.find_element(By.TAG_NAME, "body").text, 10)
        driver.find_element(By.ID, "person").clear()
        driver.find_element(By.ID, "person").send_keys(args.person)
        driver.find_element(By.ID, "password").send_keys(args.password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for("the page after login", lambda: driver.current_url.rstrip("/") == base, 10)
        wait_for("the live stream", lambda: driver.find_element(By.ID, "status").get_attribute("data-state") == "live", 10)
        cookie = (driver.get_cookie("sameday_board") or {}).get("value")
        if not cookie:
            fail("no session cookie after login")
        if not (driver.get_cookie("sameday_board") or {}).get("httpOnly"):
            fail("the session cookie is not HttpOnly")

        # Another unit's alert first, then hers: when hers shows, the other one had its chance to show too.
        publish(spec, [spec["other"]])
        started = time.monotonic()
        publish(spec, [spec["open"]])
        published_in = time.monotonic() - started
        appeared = wait_for("her alert on the page", lambda: len(rows(driver, spec["open"]["dossier"])) == 1,
                            args.max_seconds)
        result["appeared_s"] = round(published_in + appeared, 3)
        time.sleep(0.5)
        if rows(driver, spec["other"]["dossier"]):
            fail("another unit's dossier is on her page")
        result["other_unit_shown"] = False
        result["other_unit_status"] = status_of(f"{base}/api/dossiers/{spec['other']['dossier']}", cookie)
        if result["other_unit_status"] != 404:
            fail(f"another unit's dossier by direct URL answered {result['other_unit_status']}, not 404")
        result["own_dossier_status"] = status_of(f"{base}/api/dossiers/{spec['open']['dossier']}", cookie)
        if result["own_dossier_status"] != 200:
            fail(f"her own dossier answered {result['own_dossier_status']}")
        if status_of(f"{base}/api/board", "not-a-session") != 401:
            fail("the snapshot without a session should be a 401")

        # The list is redrawn as changes come: a row found may be replaced before the click lands.
        wait_for("a click on her dossier", lambda: rows(driver, spec["open"]["dossier"])[0].click() or True, 5)
        wait_for("the dossier's timeline", lambda: driver.find_element(By.ID, "timeline-note").text not in ("", "Đang tải…"), 5)
        result["timeline_note"] = driver.find_element(By.ID, "timeline-note").text
        driver.find_element(By.CSS_SELECTOR, "#timeline form button").click()

        if spec.get("extras"):
            publish(spec, spec["extras"])
            wanted = 1 + len({m["dossier"] for m in spec["extras"]})
            wait_for("the extra alerts", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")) >= wanted, 5)
        if args.screenshots:
            time.sleep(0.3)
            driver.save_screenshot(f"{args.screenshots}/board-desktop.png")
            driver.set_window_size(360, 800)
            time.sleep(0.5)
            width = driver.execute_script("return document.documentElement.scrollWidth")
            result["phone_scroll_width"] = width
            if width > 360:
                fail(f"the page is {width} px wide on a 360-px phone (it should not scroll sideways)")
            driver.save_screenshot(f"{args.screenshots}/board-phone.png")
            driver.set_window_size(1920, 1080)

        started = time.monotonic()
        publish(spec, [spec["cleared"]])
        left = wait_for("her alert leaving on cleared", lambda: len(rows(driver, spec["open"]["dossier"])) == 0,
                        args.max_seconds + 3)
        result["left_s"] = round(time.monotonic() - started, 3)
        result["left_after_s"] = round(left, 3)
    finally:
        driver.quit()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
