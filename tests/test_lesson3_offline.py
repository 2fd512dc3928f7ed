"""notebooks/lesson3-offline.ipynb - lesson 3's multi-label classification, U-Net segmentation and
point regression on the installed lesson-3 data - runs headless through the real runner and the
fastai kernel at a reduced size (its `parameters` cell overridden), and shows what a student
expects at each step. Full-size numbers, next to Python fastai's: BENCHMARKS.md ("Lesson 3
offline")."""

import os
import re

from helpers import ROOT, assert_every_cell_ran, notebook_outputs, run_notebook


def printed(nb):
    return "".join(o.get("text", "") for _, o in notebook_outputs(nb, "stream"))

NOTEBOOK = os.path.join(ROOT, "notebooks", "lesson3-offline.ipynb")
PARAMS = {"n_multi": "120", "n_seg": "80", "n_points": "80", "size": "32", "bs": "16", "epochs": "1",
          "compare_scratch": "false"}


def pngs(nb):
    return [o["data"].get("text/plain", "") for _, o in notebook_outputs(nb, "display_data")
            if "image/png" in o.get("data", {})]


def tables(nb):
    return [o["data"]["text/html"] for _, o in notebook_outputs(nb, "display_data")
            if "train_loss" in o.get("data", {}).get("text/html", "")]


def number(text, pattern):
    m = re.search(pattern, text)
    assert m, (pattern, text[-3000:])
    return float(m.group(1))


def test_lesson3_offline_runs_the_three_tasks(tmp_path):
    r, nb = run_notebook(NOTEBOOK, tmp_path / "lesson3-offline.ipynb", params=PARAMS)
    assert_every_cell_ran(nb)
    out = printed(nb) + r.stdout
    # the data: multi-label mosaics with several tags, masks with 11 codes, one point per image
    assert "segmentation, 11 codes" in out, out[-3000:]
    assert "multi-label" in out and "1 point(s) per image" in out, out[-3000:]
    figures = pngs(nb)
    assert sum("3x3 training images" in a for a in figures) == 3, figures
    assert sum("target | prediction" in a for a in figures) >= 4, figures
    assert any("with its mask" in a for a in figures) and any("with its points" in a for a in figures), figures
    assert sum("lr_find" in a for a in figures) == 3, figures
    t = tables(nb)
    assert any("accuracy_thresh" in x and "fbeta" in x for x in t), t
    assert any("foreground_acc" in x for x in t), t
    # even at this size each task learns something
    assert number(out, r"result: multi-label, pretrained: F-beta ([0-9.]+)") > 0.3
    assert number(out, r"result: segmentation, pretrained: pixel accuracy ([0-9.]+)") > 0.5
    assert number(out, r"result: points, pretrained: mean error ([0-9.]+)") < 1.0
    assert "MSELossFlat" in out
    assert re.search(r"predicted \(y [0-9.]+, x [0-9.]+\); true centre \([0-9.]+, [0-9.]+\)", out), out[-2000:]
