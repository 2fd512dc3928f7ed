"""The three lesson-3 notebooks (notebooks/lesson3-planet.ipynb, lesson3-head-pose.ipynb,
lesson3-camvid.ipynb) run top to bottom through the real runner (nbclient + the fastai kernel)
against local stand-ins of what they download (tests/stand_ins.py: planet_tiny, camvid,
biwi_head_pose, random-valued ResNet-34/50 weights), small: their `parameters` cells are
overridden (tiny images, one epoch per training step, small stand-ins; lr_find keeps its 100
iterations, as the lessons call it). Each test checks what a student expects to see at each step.
FASTAI_HOME is a temporary folder."""

import base64
import io
import os
import re
import time

import pytest
from PIL import Image

import stand_ins
from helpers import (ROOT, assert_every_cell_ran, cell, code_cells, displays, result, run_notebook,
                     stdout)

NOTEBOOKS = os.path.join(ROOT, "notebooks")
PLANET_N = 64
CAMVID_N, CAMVID_WH = 20, (48, 32)
BIWI_FOLDERS, BIWI_FRAMES = 14, 3


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("stand_ins3"))
    t0 = time.time()
    stand_ins.make_planet_tiny(root, n=PLANET_N)
    stand_ins.make_camvid(root, n=CAMVID_N, size=CAMVID_WH)
    stand_ins.make_biwi(root, BIWI_FOLDERS, BIWI_FRAMES)
    stand_ins.make_weights(root, ("resnet34", "resnet50"))
    print(f"stand-ins built in {time.time() - t0:.1f} s")
    with stand_ins.Server(root) as server:
        yield server


def run(name, server, tmp_path, params):
    home = tmp_path / "fastai-home"
    env = dict(os.environ, **server.env(home))
    _, nb = run_notebook(os.path.join(NOTEBOOKS, name), tmp_path / name, env=env, params=params)
    assert_every_cell_ran(nb)
    return home, nb


def pngs(c):
    """(alt text, PIL image) of every picture a cell showed."""
    return [(o["data"].get("text/plain", ""), Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"]))))
            for o in displays(c, "image/png")]


def one_png(c, alt_part):
    """The one picture of a cell whose alt text has `alt_part`; where the cell gives a figsize
    `(w.0, h.0)`, the picture is w x h hundred pixels (100 dpi, as matplotlib's default)."""
    found = [(a, im) for a, im in pngs(c) if alt_part in a]
    assert len(found) == 1, (c.source, [a for a, _ in pngs(c)])
    figsizes = re.findall(r"\((\d+)\.0, (\d+)\.0\)\)", c.source)
    if figsizes:
        w, h = figsizes[-1]
        assert found[0][1].size == (100 * int(w), 100 * int(h)), (c.source, found[0][1].size)
    return found[0][1]


def palette():
    """The library's mask colours (lib/src/data/show.rs's PALETTE, matplotlib's tab20)."""
    with open(os.path.join(ROOT, "lib", "src", "data", "show.rs")) as f:
        block = f.read().split("pub const PALETTE")[1].split("= [", 1)[1].split("];")[0]
    return [tuple(int(v) for v in t) for t in re.findall(r"\[(\d+), (\d+), (\d+)\]", block)]


def exact(nb, source):
    """The code cell whose whole source is `source`."""
    found = [c for c in code_cells(nb) if c.source.strip() == source]
    assert len(found) == 1, source
    return found[0]


def progress_table(c):
    tables = [o["data"]["text/html"] for o in displays(c, "text/html") if "train_loss" in o["data"]["text/html"]]
    assert len(tables) == 1, (c.source, tables)
    return tables[0]


def table_rows(html):
    """The body rows of a progress table, as lists of cell texts."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [re.findall(r"<td>(.*?)</td>", r, re.S) for r in rows]


def fit_cells(nb):
    return [c for c in code_cells(nb) if "fit_one_cycle" in c.source and "learn." in c.source]


def check_fits(nb, n, metrics):
    fits = fit_cells(nb)
    assert len(fits) == n, [c.source for c in fits]
    for c in fits:
        table = progress_table(c)
        for m in ["train_loss", "valid_loss", *metrics]:
            assert f"<th>{m}</th>" in table, table
        rows = table_rows(table)
        assert len(rows) == 1, table  # one epoch (epochs_scale 0.01)
        for v in rows[0][1:1 + 2 + len(metrics)]:
            float(v)  # losses and metrics are numbers
        for v in rows[0][3:3 + len(metrics)]:
            assert v == "nan" or 0.0 <= float(v) <= 1.0, rows


def check_lr_finds(nb, n):
    finders = [c for c in code_cells(nb) if "learn.lr_find()" in c.source or "learn.recorder.plot()" in c.source]
    plots = [c for c in finders if "recorder.plot()" in c.source]
    assert len(plots) == n, [c.source for c in finders]
    for c in plots:
        assert one_png(c, "lr_find").size[0] > 300
        assert re.search(r"Valley: \d\.\d\dE-?\d+", stdout(c)), stdout(c)


def test_lesson3_planet(served, tmp_path):
    home, nb = run("lesson3-planet.ipynb", served, tmp_path,
                   {"size": "32", "size_big": "48", "bs": "8", "epochs_scale": "0.01"})
    data_dir = home / "data" / "planet_tiny"
    assert "32 px, then 48 px; batches of 8; fit_one_cycle(5) trains 1 epoch(s)" in stdout(code_cells(nb)[2])
    assert result(cell(nb, "untar_data(URLs::PLANET_TINY)")) == f'["{data_dir}/labels.csv", "{data_dir}/train"]'
    head = stdout(cell(nb, "csv.lines().take(6)")).splitlines()
    assert head[0] == "image_name,tags" and len(head) == 6
    assert all(re.match(r"^train_\d+,[a-z_ ]+$", line) for line in head[1:]), head

    m = re.search(r"(\d+) training images, (\d+) validation images, (\d+) tags", stdout(cell(nb, "let src = ImageList::from_csv")))
    n_train, n_valid = int(m.group(1)), int(m.group(2))
    assert n_train + n_valid == PLANET_N and n_valid == round(0.2 * PLANET_N) and m.group(3) == "17"
    assert "17 classes, multi-label, 32x32 images, bs 8" in stdout(cell(nb, "let data = src.clone().transform(tfms.clone(), size)"))
    one_png(cell(nb, "data.show_batch(3, (12.0, 9.0))"), "training images")

    assert result(cell(nb, "cnn_learner(data, arch, &[acc_02, f_score])")) == '"BCEWithLogitsFlat"'
    check_lr_finds(nb, 3)
    check_fits(nb, 4, ["accuracy_thresh", "fbeta"])
    for saved in ("stage-1-rn50", "stage-2-rn50", "stage-1-256-rn50", "stage-2-256-rn50"):
        assert (data_dir / "models" / f"{saved}.safetensors").is_file(), saved
    # progressive resizing: the learner's data now makes 48-pixel images
    assert result(cell(nb, "learn.data = data;")) == "[1, 3, 48, 48]"
    assert one_png(cell(nb, "plot_losses"), "training and validation loss").size[0] > 300
    assert result(cell(nb, "learn.export(None)")) == f'"{data_dir}/export.safetensors"'
    assert (data_dir / "export.safetensors").stat().st_size > 50_000_000  # resnet50's weights

    # the test set: planet_tiny has none, so the validation images stand in for it
    assert result(cell(nb, "let test: Vec<PathBuf>")) == str(n_valid)
    assert result(cell(nb, "get_preds_test()")) == f"[{n_valid}, 17]"
    preds = eval(result(cell(nb, "&labelled_preds[..")))  # a Rust list of strings reads as Python
    assert len(preds) == 5
    for tags in preds:
        t = tags.split()
        assert set(t) <= set(stand_ins.PLANET_TAGS) and t == sorted(t), tags
    names = eval(result(cell(nb, "let fnames: Vec<String>")))
    assert all(re.match(r"^train_\d+$", n) for n in names), names
    lines = (data_dir / "submission.csv").read_text().splitlines()
    assert lines[0] == "image_name,tags" and len(lines) == 1 + n_valid
    assert [line.split(",")[0] for line in lines[1:6]] == names
    assert [line.split(",")[1] for line in lines[1:6]] == preds
    csv_names = {row.split(",")[0] for row in (data_dir / "labels.csv").read_text().splitlines()[1:]}
    assert {line.split(",")[0] for line in lines[1:]} <= csv_names


def test_lesson3_head_pose(served, tmp_path):
    home, nb = run("lesson3-head-pose.ipynb", served, tmp_path,
                   {"size": "(48, 64)", "bs": "8", "epochs_scale": "0.01"})
    path = home / "data" / "biwi_head_pose"
    assert "48x64 images, batches of 8; fit_one_cycle(5) trains 1 epoch(s)" in stdout(code_cells(nb)[2])

    # the calibration: the first three rows of numbers of rgb.cal
    rows = [[float(v) for v in line.split()] for line in (path / "01" / "rgb.cal").read_text().splitlines() if line.strip()][:3]
    cal = eval(result(cell(nb, "let cal: Vec<Vec<f64>>")))
    assert cal == rows
    assert result(cell(nb, "fn img2txt_name")) == f'"{path}/09/frame_00667_pose.txt"'
    shown = cell(nb, "fn show_rgb")
    assert "160x120 pixels" in stdout(shown)
    one_png(shown, "frame_00667_rgb.jpg")

    # the head's position (mm) and its centre in pixels, [y, x], as the lesson's convert_biwi
    pose = (path / "09" / "frame_00667_pose.txt").read_text().split("\n\n")[1].split()
    t = [float(v) for v in pose]
    assert eval(result(cell(nb, "let ctr = read_ctr(&fname);"))) == pytest.approx(t)
    fx, fy, cx, cy = cal[0][0], cal[1][1], cal[0][2], cal[1][2]
    [[y, x]] = eval(result(exact(nb, "get_ctr(&fname, &cal)")))
    assert (x, y) == pytest.approx(stand_ins.biwi_centre(t, (fx, fy, cx, cy)), abs=1e-3)
    assert 0 < x < 160 and 0 < y < 120
    one_png(cell(nb, "show_with_points"), "with its points")

    # the data: person 13 is the validation set
    text = stdout(cell(nb, ".transform(get_transforms(), size)"))
    assert "1 point(s) per image, 48x64 images, bs 8" in text
    assert f"Train: {(BIWI_FOLDERS - 1) * BIWI_FRAMES} items" in text and f"Valid: {BIWI_FRAMES} items" in text
    shows = [c for c in code_cells(nb) if "show_batch" in c.source]
    assert len(shows) == 3
    for c in shows:
        one_png(c, "training images")

    assert result(cell(nb, "cnn_learner(data, models::resnet34, &[])")) == '"MSELossFlat"'
    check_lr_finds(nb, 1)
    check_fits(nb, 1, [])
    assert (path / "models" / "stage-1.safetensors").is_file()
    one_png(cell(nb, "learn.show_results(5, (6.0, 12.0))"), "5 validation images: target | prediction")
    out = stdout(cell(nb, "predict_target(&fname)"))
    m = re.search(r"predicted: \(y (-?[\d.]+), x (-?[\d.]+)\)\nactual: +\[\[([\d.]+), ([\d.]+)\]\]", out)
    assert m, out
    assert (float(m.group(3)), float(m.group(4))) == pytest.approx((y, x), abs=1e-3)


def test_lesson3_camvid(served, tmp_path):
    home, nb = run("lesson3-camvid.ipynb", served, tmp_path,
                   {"size_div": "2", "bs": "4", "bs_big": "3", "epochs_scale": "0.01"})
    path = home / "data" / "camvid"
    w, h = CAMVID_WH
    n_valid = round(0.2 * CAMVID_N)
    assert "batches of 4 (full size: 3); fit_one_cycle(10) trains 1 epoch(s)" in stdout(code_cells(nb)[2])
    assert result(cell(nb, "untar_data(URLs::CAMVID)")) == (
        f'["{path}/codes.txt", "{path}/images", "{path}/labels", "{path}/valid.txt"]')
    assert f"{CAMVID_N} images" in stdout(cell(nb, "get_image_files(&path_img)"))
    first = eval(result(cell(nb, "get_image_files(&path_img)")))
    assert len(first) == 3 and all(f.startswith(f"{path}/images/") and f.endswith(".png") for f in first)
    labels = eval(result(cell(nb, "get_image_files(&path_lbl)")))
    assert all(f.startswith(f"{path}/labels/") and f.endswith("_P.png") for f in labels)
    one_png(cell(nb, "fn show_rgb"), os.path.basename(first[0]))
    assert result(cell(nb, "fn get_y_fn")) == '"' + first[0].replace("/images/", "/labels/").replace(".png", "_P.png") + '"'

    # the mask: coloured by class id, and blended over its photo
    coloured = one_png(cell(nb, "PALETTE"), "mask")
    mask = Image.open(first[0].replace("/images/", "/labels/").replace(".png", "_P.png"))
    ids = mask.getcolors()  # (count, class id)
    assert len(ids) > 1 and max(i for _, i in ids) < 32
    # the class that covers most of the mask covers most of the picture, in its palette colour
    top_id = max(ids)[1]
    colours = [(n, px) for n, px in coloured.convert("RGB").getcolors(1 << 20) if px != (255, 255, 255)]
    assert len(palette()) == 20
    assert max(colours)[1] == palette()[top_id % 20]
    blended = [c for c in code_cells(nb) if "show_with_mask" in c.source]
    assert len(blended) == 2
    for c in blended:
        one_png(c, "with its mask")
    sizes = cell(nb, "let src_size")
    assert stdout(sizes).strip() == f"({h}, {w})"
    assert f"Tensor[[{h}, {w}], Uint8]" in result(sizes)
    assert eval(result(cell(nb, "let codes: Vec<String>"))) == stand_ins.CAMVID_CODES

    assert f"size ({h // 2}, {w // 2}), batches of 4" in stdout(cell(nb, "let size = (src_size.0 / size_div"))
    assert f"{CAMVID_N - n_valid} training images, {n_valid} validation images" in stdout(cell(nb, "SegmentationItemList::from_folder"))
    assert f"segmentation, 32 codes, {h // 2}x{w // 2} images, bs 4" in stdout(cell(nb, "databunch(bs)?"))
    one_png(cell(nb, "data.show_batch(2, (10.0, 7.0))"), "training images")

    assert result(cell(nb, "let acc_camvid = Metric::from_fn")) == str(stand_ins.CAMVID_CODES.index("Void"))
    check_lr_finds(nb, 2)
    check_fits(nb, 4, ["acc_camvid"])
    for saved in ("stage-1", "stage-2", "stage-1-big", "stage-2-big"):
        assert (path / "images" / "models" / f"{saved}.safetensors").is_file(), saved
    shows = [c for c in code_cells(nb) if "show_results" in c.source]
    assert len(shows) == 2
    for c in shows:
        # 3 validation images, target and prediction side by side
        one_png(c, "3 validation images: target | prediction")
    assert f"size ({h}, {w}), batches of 3" in stdout(cell(nb, "drop(learn);"))
