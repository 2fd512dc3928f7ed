"""The lesson notebooks run headless, top to bottom, through the real runner (nbclient + the
fastai kernel) - the offline lesson at a reduced size - and produce the outputs a student expects."""

import os
import subprocess
import sys

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(notebook, out, **env):
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "run_notebook.py"), notebook, "-o", str(out)],
        env=dict(os.environ, **env), capture_output=True, text=True, timeout=1800,
    )
    return r, nbformat.read(str(out), as_version=4)


def outputs(nb, kind):
    return [(i, o) for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o["output_type"] == kind]


def test_lesson1_offline_runs_end_to_end(tmp_path):
    r, nb = run(os.path.join(ROOT, "notebooks", "lesson1-offline.ipynb"), tmp_path / "l1.ipynb", LESSON_PER_CLASS="20")
    assert r.returncode == 0, r.stdout + r.stderr
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "every cell ran"
    assert not outputs(nb, "error")
    pngs = [o for _, o in outputs(nb, "display_data") if "image/png" in o["data"]]
    alts = [o["data"]["text/plain"] for o in pngs]
    assert any("training images" in a for a in alts), alts  # show_batch
    assert any("lr_find" in a for a in alts), alts
    assert any("validation loss" in a for a in alts), alts
    assert any("largest losses" in a for a in alts), alts  # plot_top_losses
    assert any("confusion matrix" in a for a in alts), alts
    tables = [o["data"]["text/html"] for _, o in outputs(nb, "display_data") if "text/html" in o.get("data", {})]
    assert len(tables) >= 5 and all("<table" in t and "train_loss" in t for t in tables)
    # each training cell keeps its own table (4 epochs, then 1, ..., then 6 from scratch)
    assert tables[0].count("<tr>") == 4 and tables[-1].count("<tr>") == 6  # body rows (the header row has a style)
    assert "result: transfer learning" in r.stdout and "result: from scratch" in r.stdout
