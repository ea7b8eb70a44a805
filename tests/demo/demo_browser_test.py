"""The page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A user's path: upload a photo and a video through the page's file inputs, press Animate,
and the result plays: a ``<video>`` whose duration is positive and whose frames are the
model's size. Every request the page makes must go to the local server (no web fonts,
scripts or analytics from elsewhere). A screenshot is saved in the test's tmp_path.

Chromium is required, never skipped: CI installs it (``apt-get install chromium``);
Playwright's own browser download (``playwright install``) is not used.
"""

import shutil
import urllib.parse

import pytest

SIZE = 64  # configs/tiny.py
# Seconds for the page to animate the 8 frames (the compiled programs may be cold).
ANIMATION_TIMEOUT_S = 180


@pytest.fixture(scope="session", name="chromium")
def _chromium() -> str:
  """Chromium's path, found before the page is launched (a missing browser fails fast)."""
  path = shutil.which("chromium") or shutil.which("chromium-browser")
  if path is None:
    pytest.fail("Chromium is not on PATH; the demo's browser test needs it: "
                "sudo apt-get install chromium (Debian/Ubuntu). Playwright's own browser "
                "download is not used.")
  return path


def _is_local(url: str, origin: str) -> bool:
  """Whether a request's URL stays on the page's server (data: URLs never leave)."""
  if url.startswith("data:"):
    return True
  if url.startswith("blob:"):
    url = url[len("blob:"):]
  parsed = urllib.parse.urlsplit(url)
  return parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc == origin


def test_upload_animate_and_play_in_chromium(chromium, demo_server, demo_inputs, tmp_path):
  try:
    from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  except ImportError:
    pytest.fail("the demo's browser test needs the playwright package "
                "(pip install 'mcc-jax[test]'), not its browser download")
  origin = urllib.parse.urlsplit(demo_server.url).netloc
  assert origin.startswith("127.0.0.1:")
  requests = []
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--autoplay-policy=no-user-gesture-required"])
    try:
      page = browser.new_page(viewport={"width": 1280, "height": 1000})
      page.on("request", lambda request: requests.append(request.url))
      page.on("websocket", lambda socket: requests.append(socket.url))
      page.goto(demo_server.url)
      page.locator("#source-photo input[type=file]").set_input_files(str(demo_inputs.photo))
      page.locator("#driving-video input[type=file]").set_input_files(
          str(demo_inputs.driving))
      # Both uploads have arrived (the inputs show them) before the button is pressed.
      page.wait_for_selector("#source-photo img")
      page.wait_for_selector("#driving-video video")
      page.locator("#animate-button").click()
      page.wait_for_selector("#result-video video", timeout=ANIMATION_TIMEOUT_S * 1000)
      played = page.evaluate("""async () => {
        const video = document.querySelector('#result-video video');
        if (video.readyState < 1) {
          await new Promise((loaded, failed) => {
            video.addEventListener('loadedmetadata', loaded, {once: true});
            video.addEventListener('error', () => failed(new Error(
                'the result does not play: media error ' + (video.error && video.error.code))),
                {once: true});
          });
        }
        return {duration: video.duration, width: video.videoWidth,
                height: video.videoHeight, source: video.currentSrc};
      }""")
      page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    finally:
      browser.close()
  assert played["duration"] > 0, played
  assert (played["width"], played["height"]) == (SIZE, SIZE), played
  assert played["source"].endswith("/head_by_talking.mp4"), played
  assert (tmp_path / "demo.png").stat().st_size > 0
  outside = [url for url in requests if not _is_local(url, origin)]
  assert requests and not outside, outside
