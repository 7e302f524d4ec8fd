#!/usr/bin/python3
"""Screenshots of a running board (docs/board.md), as a supervisor sees it: headless Chromium driven by Selenium
(Debian's chromium, chromium-driver, python3-selenium), on loopback. Logs in, waits for the live stream (and for
--min-rows dossiers, up to --wait seconds), then saves board-desktop.png (1920 wide, 1400 high: the cards and the first dossiers) and board-phone.png (360x800)
in --out. scripts/demo.sh takes them mid-run; they are the pictures in docs/board.md and the README.
"""
import argparse
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--person", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--min-rows", type=int, default=1)
    parser.add_argument("--wait", type=float, default=20)
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1920,1080", "--lang=vi", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_page_load_timeout(20)
        driver.get(args.url.rstrip("/") + "/login")
        driver.find_element(By.ID, "person").send_keys(args.person)
        driver.find_element(By.ID, "password").send_keys(args.password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        started = time.monotonic()
        rows = 0
        while time.monotonic() - started < args.wait:
            try:
                live = driver.find_element(By.ID, "status").get_attribute("data-state") == "live"
                rows = len(driver.find_elements(By.CSS_SELECTOR, "#alerts tbody tr"))
            except (StaleElementReferenceException, NoSuchElementException):
                live = False  # the page after the login is still loading
            if live and rows >= args.min_rows:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        driver.set_window_size(1920, 1400)
        time.sleep(0.5)
        driver.save_screenshot(f"{args.out}/board-desktop.png")
        driver.set_window_size(360, 800)
        time.sleep(0.5)
        driver.save_screenshot(f"{args.out}/board-phone.png")
        print(f"board screenshots: {args.out}/board-desktop.png, {args.out}/board-phone.png ({rows} dossiers at risk)")
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
