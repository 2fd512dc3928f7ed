"""Widgets in real JupyterLab, in headless Chromium (tools/lab/widgets.js): JupyterLab's own
widget renderer (`jupyterlab_widgets`) draws our models; a click on a Button runs the Rust
closure, whose change comes back to the page; in the image cleaner a Delete and a drop-down
change reach the saved cleaned.csv; the Stop button beside training ends the fit. Screenshots
are kept in target/ui/. Same set-up and skip rules as test_jupyterlab.py."""

import csv
import json
import os
import random
import subprocess
import time

import nbformat
import pytest
from PIL import Image

from test_jupyterlab import CELL_TIMEOUT, LAB_TOOLS, SCREENSHOTS, lab, pytestmark  # noqa: F401

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}

BUTTON = r"""use fastai::widgets::*;
let b = Button::new("Click me");
let status = Label::new("not clicked");
let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
{
    let (n, status) = (n.clone(), status.clone());
    b.on_click(move || {
        let k = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        status.set_value(&format!("clicked {k}"));
    });
}
HBox::new(&[&b, &status]).display();
"""

CLEANER = r"""let data = ImageDataBunch::from_folder("DIR", DataOptions::default().size(32).bs(8).device(Device::Cpu))?.normalize(imagenet_stats());
tch::manual_seed(0);
let mut learn = cnn_learner_with(data, models::mobilenet_v2, &[error_rate], LearnerOptions { pretrained: false, ..Default::default() })?;
let cleaner = ImageCleaner::from_toplosses(&mut learn)?;
let w = cleaner.widget(4)?;
"""

TRAIN = r"""tch::manual_seed(0);
let x = Tensor::randn([4096, 2], (Kind::Float, Device::Cpu));
let y = x.sum_dim_intlist(1, false, Kind::Float).gt(0.0).to_kind(Kind::Int64);
let data2 = DataBunch::from_tensors((x.narrow(0, 0, 3840), y.narrow(0, 0, 3840)), (x.narrow(0, 3840, 256), y.narrow(0, 3840, 256)), 4)?.to_device(Device::Cpu);
let model2 = Net::new(Device::Cpu, |p| nn::seq().add(nn::linear(p / "fc", 2, 2, Default::default())));
let mut learn2 = Learner::new(data2, model2, cross_entropy_flat(), &[accuracy])?;
learn2.fit(50, 1e-2)?;
"""


def test_widgets_work_in_jupyterlab(lab, tmp_path):
    url, token = lab
    root = tmp_path / "root"
    bears = root / "bears"
    rng = random.Random(0)
    for c, base in COLOURS.items():
        (bears / c).mkdir(parents=True)
        for k in range(8):
            img = Image.new("RGB", (32, 32))
            img.putdata([tuple(max(0, min(255, v + rng.randint(-60, 60))) for v in base) for _ in range(1024)])
            img.save(bears / c / f"{c}_{k}.png")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "fastai-rust", "display_name": "Rust (fastai)", "language": "rust"}
    nb.metadata["language_info"] = {"name": "rust"}
    for src in (BUTTON, CLEANER.replace("DIR", str(bears)), TRAIN):
        nb.cells.append(nbformat.v4.new_code_cell(src))
    nbformat.write(nb, str(root / "widgets.ipynb"))

    t0 = time.time()
    r = subprocess.run(
        ["node", os.path.join(LAB_TOOLS, "widgets.js"), "--url", url, "--token", token,
         "--notebook", "widgets.ipynb", "--out", SCREENSHOTS, "--timeout", str(CELL_TIMEOUT)],
        capture_output=True, text=True, timeout=CELL_TIMEOUT + 120,
    )
    assert r.returncode == 0, r.stderr[-6000:] + "\n--- lab log ---\n" + (tmp_path / "lab.log").read_text()[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"browser run {time.time() - t0:.1f} s: {r.stderr[-1500:]}")
    assert summary["clicked"]
    assert summary["tiles"] == 4 and summary["images"] == 4
    assert "1 deleted, 1 relabelled" in summary["saveStatus"], summary["saveStatus"]
    with open(bears / "cleaned.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "label"]
    assert len(rows) - 1 == 3 * 8 - 1, "one image left out"
    relabelled = [(n, l) for n, l in rows[1:] if not n.startswith(l + "/")]
    assert len(relabelled) == 1 and relabelled[0][1] == summary["relabelledTo"], relabelled
    assert all((bears / n).exists() for n, _ in rows[1:])
    assert sum(1 for c in COLOURS for _ in (bears / c).iterdir()) == 24, "nothing deleted from disk"
    assert summary["stopSeconds"] < 10, summary
    assert "training interrupted at epoch" in summary["trainingOutput"], summary["trainingOutput"][-2000:]
    for shot in summary["screenshots"]:
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", shot
