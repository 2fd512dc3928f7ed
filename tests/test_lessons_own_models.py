"""The lessons where students write their own models and losses - lesson2-sgd, lesson5-sgd-mnist,
lesson7-resnet-mnist - run headless through the real runner and the fastai kernel, at a reduced
size (the notebooks' `parameters` cells overridden with `-p`), and show what a student expects.
Full-size numbers: README ("Your own models: lessons 2-sgd, 5 and 7")."""

import os
import re

from helpers import ROOT, assert_every_cell_ran, notebook_outputs, run_notebook


def lesson(name):
    return os.path.join(ROOT, "notebooks", name)


def alts(nb):
    return [o["data"].get("text/plain", "") for _, o in notebook_outputs(nb, "display_data")
            if "image/png" in o.get("data", {})]


def result(stdout, what):
    m = re.search(rf"result: {what}, error rate ([0-9.]+)", stdout)
    assert m, stdout
    return float(m.group(1))


def test_lesson2_sgd_fits_the_line_and_animates(tmp_path):
    r, nb = run_notebook(lesson("lesson2-sgd.ipynb"), tmp_path / "sgd.ipynb")
    assert_every_cell_ran(nb)
    m = re.search(r"result: fitted a = \[([-0-9.e]+), ([-0-9.e]+)\]", r.stdout)
    assert m, r.stdout
    # made with slope 3, intercept 2 plus uniform noise in [0, 1): mean 0.5
    assert abs(float(m.group(1)) - 3.0) < 0.3 and abs(float(m.group(2)) - 2.5) < 0.3, m.group(0)
    assert len(alts(nb)) >= 3, alts(nb)  # the scatter plots
    gifs = [o for _, o in notebook_outputs(nb, "display_data") if "image/gif" in o.get("data", {}).get("text/html", "")]
    assert gifs, "the animation ends as a GIF"


def test_lesson5_logistic_regression_and_mlp(tmp_path):
    r, nb = run_notebook(lesson("lesson5-sgd-mnist.ipynb"), tmp_path / "l5.ipynb",
                         params={"n_train": "2000", "epochs": "2"})
    assert_every_cell_ran(nb)
    assert result(r.stdout, "logistic regression") < 0.2
    assert result(r.stdout, "neural network") < 0.2
    assert any("lr_find" in a for a in alts(nb)), alts(nb)
    assert any("learning rate and momentum" in a for a in alts(nb)), alts(nb)
    tables = [o["data"]["text/html"] for _, o in notebook_outputs(nb, "display_data") if "train_loss" in o.get("data", {}).get("text/html", "")]
    assert len(tables) == 2 and "accuracy" in tables[0] and "error_rate" in tables[0]
    summary = [o["data"]["text/plain"] for _, o in notebook_outputs(nb, "execute_result") if "Total params" in o["data"].get("text/plain", "")]
    assert summary and "39,760" in summary[0], summary  # 784*50+50 + 50*10+10


def test_lesson7_cnn_and_resnet(tmp_path):
    r, nb = run_notebook(lesson("lesson7-resnet-mnist.ipynb"), tmp_path / "l7.ipynb",
                         params={"epochs_cnn": "1", "epochs_resnet": "1"})
    assert_every_cell_ran(nb)
    assert result(r.stdout, "ResNet") < 0.15
    assert any("training images" in a for a in alts(nb)), alts(nb)
    summaries = [o["data"]["text/plain"] for _, o in notebook_outputs(nb, "execute_result") if "Total params" in o["data"].get("text/plain", "")]
    assert len(summaries) == 2, summaries
    assert "[8, 14, 14]" in summaries[0] and "0.1.1" in summaries[1], summaries
