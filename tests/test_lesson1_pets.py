"""notebooks/lesson1-pets.ipynb runs top to bottom through the real runner (nbclient + the fastai
kernel), against local stand-ins of what it downloads (tests/stand_ins.py: a small pets archive,
the MNIST sample, random-valued ResNet weights), at a reduced size set through the notebook's
settings cell (64 px, batches of 8, one epoch per training step), and shows what a student
expects at each step. FASTAI_HOME is a temporary folder: ~/.fastai is left alone."""

import os
import re
import tarfile
import time

import pytest

import stand_ins
from helpers import (ROOT, assert_every_cell_ran, cell, code_cells, displays, result, run_notebook,
                     stdout, user_fastai_home)

NOTEBOOK = os.path.join(ROOT, "notebooks", "lesson1-pets.ipynb")
PER_BREED = 2
# 64 px, batches of 8 (4 for resnet50), every fit one epoch: lr_find's 100 iterations dominate
SETTINGS = {"LESSON_SIZE": "64", "LESSON_SIZE_BIG": "64", "LESSON_BS": "8", "LESSON_EPOCHS_SCALE": "0.01"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("stand_ins")
    t0 = time.time()
    stand_ins.build(str(root), per_breed=PER_BREED, mnist=(30, 8))
    print(f"stand-ins built in {time.time() - t0:.1f} s")
    with stand_ins.Server(str(root)) as server:
        yield root, server


def snapshot(home):
    """(path, size, mtime) of what the notebook would write in `home` (None where absent), to
    see that a run with another FASTAI_HOME left it alone."""
    paths = [os.path.join(home, "data", d) for d in ("oxford-iiit-pet", "mnist_sample")]
    paths += [os.path.join(home, "archive", a) for a in ("oxford-iiit-pet.tgz", "mnist_sample.tgz")]
    paths += [os.path.join(home, "models", f"{a}-imagenet.safetensors") for a in ("resnet18", "resnet34", "resnet50")]
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((p, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((p, None))
    return out


def progress_table(c):
    """The training table a fit cell ends with (the final state of its in-place display)."""
    tables = [o["data"]["text/html"] for o in displays(c, "text/html") if "train_loss" in o["data"]["text/html"]]
    assert len(tables) == 1, (c.source, tables)
    return tables[0]


def test_stand_in_archives_are_laid_out_like_the_real_ones(served):
    root, _ = served
    with tarfile.open(os.path.join(root, stand_ins.PETS_PATH)) as t:
        names = t.getnames()
    images = [n for n in names if n.startswith("oxford-iiit-pet/images/") and n.endswith(".jpg")]
    assert len(images) == 37 * PER_BREED
    labels = {re.search(r"/([^/]+)_\d+.jpg$", n).group(1) for n in images}
    assert labels == set(stand_ins.BREEDS)
    for f in ("list.txt", "trainval.txt", "test.txt"):
        assert f"oxford-iiit-pet/annotations/{f}" in names
    assert sum(n.startswith("oxford-iiit-pet/annotations/trimaps/") for n in names) == len(images)
    with tarfile.open(os.path.join(root, stand_ins.MNIST_SAMPLE_PATH)) as t:
        csv = t.extractfile("mnist_sample/labels.csv").read().decode().splitlines()
        names = set(t.getnames())
    assert csv[0] == "name,label"
    rows = [r.split(",") for r in csv[1:]]
    assert len(rows) == 2 * (30 + 8)
    for name, label in rows:
        assert f"mnist_sample/{name}" in names
        assert label == {"3": "0", "7": "1"}[name.split("/")[1]]


def test_lesson1_pets_runs_end_to_end(served, tmp_path):
    root, server = served
    home = tmp_path / "fastai-home"
    user_home = user_fastai_home()
    before = snapshot(user_home)
    _, nb = run_notebook(NOTEBOOK, tmp_path / "pets.ipynb", env=dict(os.environ, **server.env(home), **SETTINGS))
    assert_every_cell_ran(nb)

    # the settings cell read the environment
    assert "images of 64 px (resnet50: 64 px), batches of 8; fit_one_cycle(4) trains 1 epoch(s)" in stdout(code_cells(nb)[0])

    # the data came from the mirror into the temporary FASTAI_HOME, and ~/.fastai was not touched
    ls = result(cell(nb, "untar_data(URLs::PETS)"))
    assert "annotations" in ls and "images" in ls and str(home) in ls, ls
    stderr = "".join(o.text for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")
    assert "a mirror may repackage" in stderr, stderr[-2000:]
    assert f"{37 * PER_BREED} images" in stdout(cell(nb, "get_image_files(&path_img)"))
    assert snapshot(user_home) == before
    assert (home / "models" / "resnet34-imagenet.safetensors").is_file()
    assert (home / "models" / "resnet50-imagenet.safetensors").is_file()
    for saved in ("stage-1", "stage-1-50"):
        assert (home / "data" / "oxford-iiit-pet" / "images" / "models" / f"{saved}.safetensors").is_file()
    assert result(cell(nb, 'learn.save("stage-1")')).endswith('models/stage-1.safetensors"')

    # looking at the data
    assert result(cell(nb, "data.c()")) == "(37, 37)"
    assert "ImageDataBunch; 37 classes, 64x64 images, bs 8" in stdout(cell(nb, "println!(\"{data}\")"))
    alts = lambda c: [o["data"]["text/plain"] for o in displays(c, "image/png")]
    assert any("training images" in a for a in alts(cell(nb, "data.show_batch(3, (7.0, 6.0))")))

    # every training step shows its table: one row per epoch, the lesson's metric
    fits = [c for c in code_cells(nb)[1:] if "fit_one_cycle(" in c.source or "learn.fit(" in c.source]
    assert len(fits) == 6, [c.source for c in fits]
    for c in fits:
        table = progress_table(c)
        assert table.count("<tr>") == 1, table  # body rows (the header row has a style)
        metric = "accuracy" if "learn.fit(" in c.source else "error_rate"
        assert f"<th>{metric}</th>" in table, table

    # interpretation
    assert result(cell(nb, "interp.top_losses(None)")) == "true"
    assert any("largest losses" in a for a in alts(cell(nb, "plot_top_losses")))
    assert any("confusion matrix" in a for a in alts(cell(nb, "plot_confusion_matrix")))
    confused = re.compile(r'^\[((\("[^"]+", "[^"]+", \d+\))(, )?)*\]$')
    for nth in (0, 1):
        text = result(cell(nb, "interp.most_confused(2)", nth))
        assert confused.match(text), text
    # the learning rate finder, for resnet34 and resnet50
    finders = [c for c in code_cells(nb) if "lr_find()" in c.source]
    assert len(finders) == 2
    for c in finders:
        assert any(a.startswith("lr_find") for a in alts(c)), alts(c)
        assert "Valley:" in stdout(c)

    # other data formats on the MNIST sample
    assert "mnist_sample" in result(cell(nb, "untar_data(URLs::MNIST_SAMPLE)"))
    assert any("training images" in a for a in alts(cell(nb, "from_folder")))
    assert stdout(cell(nb, "labels.csv")).startswith("name,label\ntrain/3/")
    csv_cell = cell(nb, "from_csv")
    assert any("training images" in a for a in alts(csv_cell))
    assert result(csv_cell) == '["0", "1"]'
    assert re.match(r'^\[".*/mnist_sample/train/3/\d+\.png", ".*/mnist_sample/train/3/\d+\.png"\]$', result(cell(nb, "fn_paths[..2]")))
    for fragment in ("from_name_re(&path, &fn_paths", "from_name_func", "from_lists"):
        assert result(cell(nb, fragment)) == '["3", "7"]', fragment
    assert result(cell(nb, "&labels[..5]")) == '["3", "3", "3", "3", "3"]'
