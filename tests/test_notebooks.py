"""The lesson notebooks run headless, top to bottom, through the real runner (nbclient + the
fastai kernel) - the offline lesson at a reduced size - and produce the outputs a student expects."""

import os

from helpers import ROOT, assert_every_cell_ran, notebook_outputs, run_notebook


def test_lesson1_offline_runs_end_to_end(tmp_path):
    r, nb = run_notebook(os.path.join(ROOT, "notebooks", "lesson1-offline.ipynb"), tmp_path / "l1.ipynb",
                         params={"per_class": "20"})
    assert_every_cell_ran(nb)
    pngs = [o for _, o in notebook_outputs(nb, "display_data") if "image/png" in o["data"]]
    alts = [o["data"]["text/plain"] for o in pngs]
    assert any("training images" in a for a in alts), alts  # show_batch
    assert any("lr_find" in a for a in alts), alts
    assert any("validation loss" in a for a in alts), alts
    assert any("largest losses" in a for a in alts), alts  # plot_top_losses
    assert any("confusion matrix" in a for a in alts), alts
    htmls = [o["data"]["text/html"] for _, o in notebook_outputs(nb, "display_data") if "text/html" in o.get("data", {})]
    tables = [t for t in htmls if "<table" in t and "train_loss" in t]
    assert len(tables) >= 4, htmls
    # lr_find shows one bar, not an epoch table
    bars = [t for t in htmls if "lr_find" in t]
    assert bars and all("<table" not in t for t in bars), bars
    # each training cell keeps its own table (4 epochs, then 1, ..., then 6 from scratch)
    assert tables[0].count("<tr>") == 4 and tables[-1].count("<tr>") == 6  # body rows (the header row has a style)
    assert "result: transfer learning" in r.stdout and "result: from scratch" in r.stdout
    # lesson 6's additions: heat maps on the top losses (at 64 px, then at 128 px after progressive
    # resizing), TTA, four items on a black canvas read at 384 px
    assert sum("with where the model looked" in a for a in alts) == 2, alts
    assert "result: with TTA, error rate" in r.stdout, r.stdout[-2000:]
    assert "result: one more epoch at 128 px, error rate" in r.stdout, r.stdout[-2000:]
    canvas = [o for o, a in zip(pngs, alts) if a.startswith("Grad-CAM: ") and "(" not in a]
    assert len(canvas) == 4, alts
    # the ImageNet classifier on the sample photos, with its heat maps
    printed = "".join(o.get("text", "") for _, o in notebook_outputs(nb, "stream"))
    assert "coffee.png: espresso" in printed, printed[-2000:]
    assert any(a.startswith("Grad-CAM: espresso") for a in alts), alts
