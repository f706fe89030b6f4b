"""The demo model's HTML energy report in headless Chromium: no console errors, every figure loads, and the
first screen is the headline (energy, one-pass ANN and ratio, firing rate, ACs vs MACs, hardware), not a table
of machine column names.

With ``SPIKEPORT_UPDATE_DOCS=1`` (``make docs-screenshot``) the model is trained exactly as the demo does (20
epochs) and the first screen's screenshot is written to ``docs/report-first-screen.png``; otherwise a 2-epoch
model keeps the test fast and the screenshot stays in the test's temporary folder.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from tests.energy._chromium import Chromium, chromium_path

pytestmark = pytest.mark.skipif(chromium_path() is None,
                                reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)")

DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "report-first-screen.png"
UPDATE_DOCS = os.environ.get("SPIKEPORT_UPDATE_DOCS") == "1"

# text of the leaf elements whose top edge lies on the first screen, plus every image's load state
PAGE_PROBE = """(() => {
  const first = Array.from(document.body.querySelectorAll('*'))
    .filter(e => e.children.length === 0 && e.getBoundingClientRect().top < window.innerHeight)
    .map(e => e.textContent).join(' | ');
  const imgs = Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,
                                                     h: i.naturalHeight}));
  return {first, imgs, firstHeading: document.querySelector('h2') && document.querySelector('h2').textContent};
})()"""


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The report `spikeport demo` writes: the demo SNN trained with the demo's settings, its energy step."""
    from spikeport.demo import DEMO_MODEL, DemoContext
    from spikeport.energy import demo_step
    from spikeport.training import TrainConfig
    from spikeport.training.session import fit_zoo_model

    out = tmp_path_factory.mktemp("demo")
    # the demo's 20 epochs for the docs screenshot; 2 keep the suite fast (same model, same report layout)
    epochs = 20 if UPDATE_DOCS else 2
    ctx = DemoContext(out=out, timesteps=4, epochs=epochs, device="cpu", progress=False, echo=lambda s: None)
    cfg = TrainConfig(epochs=ctx.epochs, timesteps=ctx.timesteps, device="cpu", progress=False, seed=0)
    ctx.snn = fit_zoo_model(DEMO_MODEL, dataset="digits", cfg=cfg, out=out / "snn.pt")
    demo_step.run(ctx)
    return out / demo_step.REPORT_DIR, ctx.summary["energy"]["hardware"]["horowitz45"]


def test_report_first_screen_in_chromium(demo_report, tmp_path):
    from PIL import Image, ImageStat

    report_dir, totals = demo_report
    with Chromium(width=1280, height=800) as browser:
        page = browser.load(report_dir / "report.html", PAGE_PROBE)
    assert page.errors == []
    imgs = page.value["imgs"]
    assert len(imgs) == 4 and all(i["complete"] and i["w"] > 100 and i["h"] > 100 for i in imgs), imgs
    first = page.value["first"]
    # the headline, with the figures the demo summary reports
    for text in ("energy per inference", "one forward pass", "ANN / SNN energy", "mean firing rate", "ACs",
                 "MACs", "horowitz45", f"{totals['ann_over_snn']:.3g}x", f"{totals['firing_rate']:.4f}"):
        assert text in first, text
    for key in ("syn_acs", "e_ac_pj", "dense_macs", "ann_over_snn"):  # machine names stay in CSV/JSON
        assert key not in first, key
    assert page.value["firstHeading"] == "Figures"
    shot = tmp_path / "first-screen.png"
    shot.write_bytes(page.screenshot)
    img = Image.open(io.BytesIO(page.screenshot)).convert("L")
    assert img.size == (1280, 800)
    stat = ImageStat.Stat(img)
    assert stat.var[0] > 500 and img.getextrema()[0] < 60  # not blank: dark text and figures on white
    if UPDATE_DOCS:
        shutil.copyfile(shot, DOCS_PNG)


def test_chromium_driver_reports_console_errors_and_broken_images(tmp_path):
    """The checks above can fail: a page with a console error and an image that does not load."""
    page_file = tmp_path / "bad.html"
    page_file.write_text('<!DOCTYPE html><html><body><img src="missing.png"><script>console.error("boom")'
                         "</script></body></html>")
    with Chromium(width=400, height=300) as browser:
        page = browser.load(page_file, "Array.from(document.images).map(i => i.naturalWidth)")
    assert any("boom" in e for e in page.errors) and any("missing.png" in e for e in page.errors)
    assert page.value == [0]
