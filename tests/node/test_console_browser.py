"""The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium): log in, look at every page, browse a bucket with hostile keys, upload a
file, download it back byte for byte, delete it after the confirmation. A screenshot of every
page goes to $ANODE_TEST_ARTIFACTS/console (default /var/tmp/anode-ci/artifacts/console).

Skips when Chromium or its driver is not installed:
    apt-get install -y --no-install-recommends chromium chromium-driver
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from anode_procs import ACCESS_KEY, SECRET_KEY, NodeProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Debian's chromium and chromium-driver "
    "(apt-get install -y --no-install-recommends chromium chromium-driver)",
)
webdriver = pytest.importorskip("selenium.webdriver") if CHROMIUM and DRIVER else None

ARTIFACTS = Path(os.environ.get("ANODE_TEST_ARTIFACTS", "/var/tmp/anode-ci/artifacts")) / "console"
SCRIPT_KEY = "<script>alert('xss')</script>.txt"  # listed as the folder "<script>alert('xss')</"
SVG_KEY = "<svg onload=alert('xss')>.txt"
IMG_KEY = 'docs/"quoted" & <img src=x onerror=alert(1)> ünïcødé 日本.txt'
WAIT = 60  # seconds: generous, the test machine may be busy


@pytest.fixture(scope="module")
def console_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    proc = NodeProcess(
        tmp_path_factory.mktemp("console-browser") / "data",
        extra_config="\n[console]\nwrites = true\n",
    )
    yield proc.start()
    proc.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver, downloads
    finally:
        driver.quit()


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / f"{name}.png")), name


def wait_for(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def downloaded(folder: Path, count: int) -> list[Path] | None:
    """The finished downloads, once there are `count` of them."""
    names = [p.name for p in folder.iterdir()]
    if any(n.startswith(".") or n.endswith(".crdownload") for n in names):  # still writing
        return None
    return [folder / n for n in names] if len(names) == count else None


def no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - the property raises when no script ran


def test_log_in_browse_upload_download_delete_in_chromium(
    console_node: NodeProcess, browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver, downloads = browser
    s3 = console_node.client()
    s3.create_bucket(Bucket="gallery")
    s3.put_bucket_versioning(Bucket="gallery", VersioningConfiguration={"Status": "Enabled"})
    for key in [
        SCRIPT_KEY,
        SVG_KEY,
        IMG_KEY,
        "docs/readme.md",
        "photos/2026/cat.jpg",
        "index.html",
    ]:
        s3.put_object(Bucket="gallery", Key=key, Body=f"contents of {key}".encode())
    base = console_node.admin_url + "/console"
    css = By.CSS_SELECTOR

    driver.get(base + "/buckets")  # no session: the login page
    wait_for(lambda: driver.current_url.endswith("/console/login"), "the login page")
    shot(driver, "01-login")
    driver.find_element(css, "#access_key").send_keys(ACCESS_KEY)
    driver.find_element(css, "#secret_key").send_keys("not the secret")
    driver.find_element(css, "#login").click()
    error = wait_for(lambda: driver.find_elements(css, "#login-error"), "the refusal")[0]
    assert "Wrong access key" in error.text, driver.page_source
    shot(driver, "02-login-refused")
    driver.find_element(css, "#access_key").clear()
    driver.find_element(css, "#access_key").send_keys(ACCESS_KEY)
    driver.find_element(css, "#secret_key").send_keys(SECRET_KEY)
    driver.find_element(css, "#login").click()

    wait_for(lambda: driver.current_url.endswith("/console/cluster"), "the cluster page")
    assert driver.find_element(css, "#health").text == "ready"
    assert console_node.node_id in driver.find_element(css, "#members").text
    shot(driver, "03-cluster")
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["anode_console"]["httpOnly"] and cookies["anode_console"]["sameSite"] == "Strict"
    assert SECRET_KEY not in str(driver.get_cookies())
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly: scripts see none

    driver.find_element(By.LINK_TEXT, "Buckets").click()
    assert "gallery" in driver.find_element(css, "#buckets").text
    shot(driver, "04-buckets")
    driver.find_element(By.LINK_TEXT, "settings").click()
    assert "Enabled" in driver.find_element(css, "#settings").text
    shot(driver, "05-bucket-settings")

    driver.find_element(css, "#browse").click()
    keys = [e.text for e in driver.find_elements(css, "#objects td.key")]
    assert SVG_KEY in keys and "index.html" in keys
    folders = [e.text for e in driver.find_elements(css, "#objects tr.folder a")]
    assert "<script>alert('xss')</" in folders
    no_alert(driver)
    shot(driver, "06-browse")
    driver.find_element(By.LINK_TEXT, "docs/").click()
    keys = [e.text for e in driver.find_elements(css, "#objects td.key")]
    assert IMG_KEY.removeprefix("docs/") in keys and "readme.md" in keys
    no_alert(driver)
    shot(driver, "07-browse-folder")

    upload = tmp_path / "report <2026> ünï.bin"
    upload.write_bytes(os.urandom(50_000))
    driver.find_element(css, "#file").send_keys(str(upload))
    driver.find_element(css, "#upload").click()
    notice = wait_for(lambda: driver.find_elements(css, "#notice"), "the upload notice")[0]
    assert notice.text == f"Uploaded docs/{upload.name}."
    shot(driver, "08-uploaded")
    assert (
        s3.get_object(Bucket="gallery", Key=f"docs/{upload.name}")["Body"].read()
        == upload.read_bytes()
    )

    row = next(
        r
        for r in driver.find_elements(css, "#objects tr.object")
        if r.find_element(css, "td.key").text == upload.name
    )
    row.find_element(css, "a.download").click()
    # Chromium replaces '<' and '>' in file names: find the download by its bytes
    saved = wait_for(lambda: downloaded(downloads, 1), "the download")[0]
    assert saved.read_bytes() == upload.read_bytes() and "ünï" in saved.name
    row = next(
        r
        for r in driver.find_elements(css, "#objects tr.object")
        if r.find_element(css, "td.key").text == IMG_KEY.removeprefix("docs/")
    )
    row.find_element(css, "a.download").click()
    hostile = wait_for(lambda: downloaded(downloads, 2), "the hostile download")
    assert {p.read_bytes() for p in hostile} == {
        upload.read_bytes(),
        f"contents of {IMG_KEY}".encode(),
    }

    row = next(
        r
        for r in driver.find_elements(css, "#objects tr.object")
        if r.find_element(css, "td.key").text == upload.name
    )
    row.find_element(css, "a.delete").click()
    assert driver.find_element(css, "#delete-key").text == f"docs/{upload.name}"
    shot(driver, "09-delete-confirm")
    driver.find_element(css, "#confirm-delete").click()
    notice = wait_for(lambda: driver.find_elements(css, "#notice"), "the delete notice")[0]
    assert notice.text == f"Deleted docs/{upload.name}."
    assert upload.name not in [e.text for e in driver.find_elements(css, "#objects td.key")]
    shot(driver, "10-deleted")

    driver.find_element(By.LINK_TEXT, "Users").click()
    assert ACCESS_KEY in driver.find_element(css, "#users").text
    shot(driver, "11-users")
    driver.find_element(css, "#logout").click()
    wait_for(lambda: driver.current_url.endswith("/console/login"), "the login page again")
    driver.get(base + "/buckets")
    assert driver.current_url.endswith("/console/login")  # the session is gone
