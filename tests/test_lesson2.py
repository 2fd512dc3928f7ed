"""Lesson 2 (`notebooks/lesson2-download.ipynb`) runs headless, top to bottom, at a reduced size,
against a local HTTP server that stands in for the web: "bear" photos (real-photo JPEGs made
from ~/.fastai/samples with crops and colour shifts) with bad URLs mixed in (a 404, a web page,
a truncated image), and the ResNet-34 weights hub (random stand-in weights, same layout).
FASTAI_HOME points at a temporary folder, so ~/.fastai is not touched."""

import csv
import http.server
import io
import os
import random
import re
import shutil
import threading

import pytest
from PIL import Image

import stand_ins
from helpers import ROOT, assert_every_cell_ran, notebook_outputs, run_notebook, stream_text, user_fastai_home

NOTEBOOK = os.path.join(ROOT, "notebooks", "lesson2-download.ipynb")
CLASSES = ["teddys", "grizzly", "black"]
PER_CLASS = 10  # good images per class


def bear_photos(per_class):
    """{class: [jpeg bytes]}: each class has its own source photo and tint, each image its own
    crop, scale, flip and brightness."""
    samples = os.path.join(user_fastai_home(), "samples")
    names = ["coffee.png", "baboon.jpg", "chelsea.png"]
    missing = [n for n in names if not os.path.isfile(os.path.join(samples, n))]
    if missing:
        pytest.fail(f"{samples} lacks {missing}: ./install.sh puts the sample photos there")
    rng = random.Random(2)
    tints = [(150, 110, 60), (120, 80, 40), (20, 20, 20)]
    out = {}
    for class_, name, tint in zip(CLASSES, names, tints):
        src = Image.open(os.path.join(samples, name)).convert("RGB")
        imgs = []
        for _ in range(per_class):
            buf = io.BytesIO()
            stand_ins.pet_photo(src, 160, 120, rng, tint).save(buf, "JPEG", quality=85)
            imgs.append(buf.getvalue())
        out[class_] = imgs
    return out


def truncated_png():
    """A PNG whose header is fine but whose pixel data stops half-way: download_images accepts
    it (it checks headers), verify_images finds and deletes it."""
    rng = random.Random(5)
    img = Image.new("RGB", (64, 64))
    img.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64 * 64)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = buf.getvalue()
    return data[: len(data) // 2]


class Web:
    """A threaded HTTP server on 127.0.0.1: `routes` (path -> (bytes, content type)) and the
    files under `weights_dir` at /weights/..."""

    def __init__(self, routes, weights_dir):
        web = self
        self.routes = routes
        self.weights_dir = weights_dir
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                web.requests.append(self.path)
                if self.path in web.routes:
                    body, ctype = web.routes[self.path]
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path.startswith("/weights/") and ".." not in self.path:
                    f = os.path.join(web.weights_dir, self.path[len("/weights/"):])
                    if os.path.isfile(f):
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.send_header("Content-Length", str(os.path.getsize(f)))
                        self.end_headers()
                        with open(f, "rb") as src:
                            shutil.copyfileobj(src, self.wfile)
                        return
                self.send_error(404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web(tmp_path):
    weights = stand_ins.make_weights(str(tmp_path), archs=("resnet34",))
    routes = {}
    for class_, imgs in bear_photos(PER_CLASS).items():
        for k, data in enumerate(imgs):
            routes[f"/photos/{class_}/{k}.jpg"] = (data, "image/jpeg")
    routes["/page.jpg"] = (b"<!doctype html><html><body>Bear pictures!</body></html>", "text/html")
    routes["/broken.png"] = (truncated_png(), "image/png")
    w = Web(routes, weights)
    yield w
    w.close()


def write_url_files(folder, base):
    """urls_<class>.csv with the class's photos, and one bad URL in each file."""
    bad = {"teddys": base + "broken.png", "grizzly": base + "page.jpg", "black": base + "missing.jpg"}
    os.makedirs(folder, exist_ok=True)
    for class_ in CLASSES:
        urls = [f"{base}photos/{class_}/{k}.jpg" for k in range(PER_CLASS)]
        urls.insert(3, bad[class_])
        with open(os.path.join(folder, f"urls_{class_}.csv"), "w") as f:
            f.write("\n".join(urls) + "\n")


def test_lesson2_runs_end_to_end(tmp_path, web):
    user_bears = os.path.join(user_fastai_home(), "data", "bears")
    user_bears_existed = os.path.exists(user_bears)
    home = tmp_path / "fastai-home"
    bears = home / "data" / "bears"  # the notebook's default folder under FASTAI_HOME
    write_url_files(str(bears), web.base)
    env = dict(
        os.environ,
        FASTAI_HOME=str(home),
        FASTAI_WEIGHTS_BASE=web.base + "weights/",
        LESSON_MAX_PICS="50",
        LESSON_SIZE="64",
        LESSON_BS="8",
        LESSON_EPOCHS="1",
        LESSON_MANY_EPOCHS="3",
    )
    env.pop("LESSON_BEARS_PATH", None)
    r, nb = run_notebook(NOTEBOOK, tmp_path / "l2.ipynb", env=env)
    assert_every_cell_ran(nb)

    # downloads: every good photo, every bad URL reported and skipped, the broken one verified away
    src = {i: "".join(c.source) for i, c in enumerate(nb.cells)}
    dl = next(c for i, c in enumerate(nb.cells) if c.cell_type == "code" and "download_images(" in src[i])
    text = stream_text(dl)
    assert text.count("images downloaded to") == 3, text
    assert f"skipped {web.base}missing.jpg: HTTP 404 Not Found" in text, text
    assert f"skipped {web.base}page.jpg: not an image (text/html" in text, text
    assert "1 HTTP 404 Not Found" in text and "1 not an image" in text, text
    for class_, n in [("teddys", PER_CLASS + 1), ("grizzly", PER_CLASS), ("black", PER_CLASS)]:
        assert f"{n} of {PER_CLASS + 1} images downloaded to {bears / class_}" in text, text
    vf = next(c for i, c in enumerate(nb.cells) if c.cell_type == "code" and "verify_images(" in src[i])
    text = stream_text(vf)
    assert f"teddys: {PER_CLASS + 1} images checked, 1 unreadable (1 deleted)" in text, text
    assert f"black: {PER_CLASS} images checked, 0 unreadable" in text, text
    for class_ in CLASSES:
        files = sorted(os.listdir(bears / class_))
        assert len(files) == PER_CLASS and all(f.endswith(".jpg") for f in files), files
    assert "/broken.png" in web.requests and any(p.startswith("/weights/") for p in web.requests)

    # figures: show_batch, lr_find, confusion matrix, two cleaner grids (the second show finds
    # nothing left when the validation set has 8 images or fewer)
    alts = [o["data"]["text/plain"] for _, o in notebook_outputs(nb, "display_data") if "image/png" in o["data"]]
    assert any("training images" in a for a in alts), alts
    assert any(a.startswith("lr_find") for a in alts), alts
    assert any("confusion matrix" in a for a in alts), alts
    assert any(a.startswith("image cleaner: images #0 to") for a in alts), alts
    assert any("validation loss" in a for a in alts), alts  # plot_losses of the last experiment
    # progress tables: stage 1, stage 2, the cleaned data, and the four experiments
    tables = [o["data"]["text/html"] for _, o in notebook_outputs(nb, "display_data")
              if "<table" in o.get("data", {}).get("text/html", "") and "train_loss" in o["data"]["text/html"]]
    assert len(tables) >= 7, len(tables)
    assert tables[-1].count("<tr>") == 3, "the last experiment's table has its 3 epochs"

    # the cleaner: #0 deleted, cleaned.csv lists every other image (training ones too)
    cleaned = bears / "cleaned.csv"
    assert cleaned.is_file()
    with open(cleaned) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "label"]
    assert len(rows) - 1 == 3 * PER_CLASS - 1, len(rows)
    assert all((bears / name).is_file() and label in CLASSES for name, label in rows[1:])
    assert sum(len(os.listdir(bears / c)) for c in CLASSES) == 3 * PER_CLASS, "no image file deleted"
    assert (bears / "export.safetensors").is_file()

    # predict printed a class
    lines = [l for l in r.stdout.splitlines() if l.startswith("result:")]
    assert len(lines) == 1, r.stdout
    m = re.fullmatch(r"result: (\S+) is a (\w+) bear \(p = ([01]\.\d{3})\)", lines[0])
    assert m and m.group(2) in CLASSES and m.group(1).startswith(str(bears / "black")), lines[0]
    assert user_bears_existed or not os.path.exists(user_bears), "nothing written to the user's ~/.fastai"
