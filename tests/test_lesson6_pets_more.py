"""notebooks/lesson6-pets-more.ipynb runs top to bottom through the real runner (nbclient + the
fastai kernel) against the local pets stand-in (tests/stand_ins.py: a small pets archive and
random-valued ResNet weights), at a reduced size set through its `parameters` cell, and shows
what a student expects: augmentation grids (zeros and reflection padding, each transform alone),
the training tables, TTA next to the plain error, the convolution's edges, the summary, the
heat maps by hand and in one call, and the top losses with their heat maps."""

import os
import re

import pytest

import stand_ins
from helpers import (ROOT, assert_every_cell_ran, cell, code_cells, displays, result, run_notebook,
                     stdout)

NOTEBOOK = os.path.join(ROOT, "notebooks", "lesson6-pets-more.ipynb")
PARAMS = {"bs": "8", "size": "64", "size_big": "96", "epochs_scale": "0.01"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("stand_ins")
    stand_ins.build(str(root), per_breed=2, mnist=(4, 2), archs=("resnet34",))
    with stand_ins.Server(str(root)) as server:
        yield root, server


def alts(c):
    return [o["data"]["text/plain"] for o in displays(c, "image/png")]


def test_lesson6_pets_more_runs_end_to_end(served, tmp_path):
    _, server = served
    home = tmp_path / "fastai-home"
    r, nb = run_notebook(NOTEBOOK, tmp_path / "l6.ipynb", env=dict(os.environ, **server.env(home)), params=PARAMS)
    assert_every_cell_ran(nb)

    # augmentation: 9 versions with zeros padding, 9 with reflection, 4 per transform alone
    grids = [a for c in code_cells(nb) for a in alts(c) if "augmented versions" in a]
    assert sum(a.startswith("9 augmented") for a in grids) == 2, grids
    assert sum(a.startswith("4 augmented") for a in grids) == 5, grids
    # training: one table per fit, the lesson's metric
    fits = [c for c in code_cells(nb) if "fit_one_cycle" in c.source]
    assert len(fits) == 3
    for c in fits:
        tables = [o["data"]["text/html"] for o in displays(c, "text/html") if "train_loss" in o["data"]["text/html"]]
        assert tables and "<th>error_rate</th>" in tables[-1], c.source
    m = re.search(r"result: error rate ([0-9.]+) plain, ([0-9.]+) with TTA", r.stdout)
    assert m, r.stdout[-2000:]
    # the convolution, the summary, the heat maps
    assert any("edges" in a for a in alts(cell(nb, "conv2d")))
    assert result(cell(nb, "k.size()")) == "[1, 3, 3, 3]"
    assert "Total params" in result(cell(nb, "learn.summary()"))
    assert result(cell(nb, "acts.size()")).startswith("[512, 3, 3]"), result(cell(nb, "acts.size()"))
    assert any("mean activation" in a for a in alts(cell(nb, "avg_acts")))
    assert any(a.startswith("Grad-CAM") for a in alts(cell(nb, "grad_chan")))
    one_call = alts(cell(nb, "learn.show_heatmap(&x, None"))
    assert len(one_call) == 2 and all(a.startswith("Grad-CAM: ") for a in one_call), one_call
    assert any("with where the model looked" in a for a in alts(cell(nb, "plot_top_losses_heatmap")))
