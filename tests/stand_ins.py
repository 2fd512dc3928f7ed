#!/usr/bin/env python3
"""Stand-ins for what the lesson notebooks download, served from 127.0.0.1, so the notebooks run
unchanged without internet:

- `fast-ai-imageclas/oxford-iiit-pet.tgz`: `oxford-iiit-pet/images/<Breed>_<n>.jpg` for the 37
  breeds (a few real-photo JPEGs each) and `oxford-iiit-pet/annotations/` laid out like the real
  archive (`list.txt`, `trainval.txt`, `test.txt`, `trimaps/<name>.png`, `xmls/<name>.xml`);
- `fast-ai-sample/mnist_sample.tgz`: `mnist_sample/{train,valid}/{3,7}/<id>.png` (28x28 grayscale
  digits, drawn here) and `labels.csv` (`name,label` rows such as `train/3/7463.png,0`: 0 for a
  3, 1 for a 7, as in the real file);
- `weights/<arch>.tv_in1k/resolve/main/model.safetensors`: ResNet weights in the model hub's
  layout, random values (`target/release/examples/stand_in_weights`).

The notebook finds them through the library's own switches: `FASTAI_URL_BASE` (the dataset
mirror), `FASTAI_WEIGHTS_BASE` (the weights hub) and `FASTAI_HOME` (a fresh data folder, so
`~/.fastai` is not touched). Downloads from a mirror skip the real archive's known md5 (see
`lib/src/data/external.rs`), so the small pets stand-in is accepted.

The photos are crops, flips and colour shifts of the real photographs in scikit-image's wheel
(which ./install.sh keeps in ~/.fastai/downloads), or of ~/.fastai/samples/ when the wheel is
missing. Each breed has its own source photo and tint, so the classes are learnable.

By hand (then run the notebook in JupyterLab from a shell with the printed variables):

    .venv/bin/python tests/stand_ins.py DIR [--per-breed 4] [--archs resnet34,resnet50,resnet18]
"""

import argparse
import glob
import gzip
import http.server
import io
import os
import random
import subprocess
import sys
import tarfile
import threading
import zipfile

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from helpers import ROOT, WEIGHTS_TOOL, user_fastai_home

# The 37 breeds as the file names spell them (cats capitalised; lib/tests/common/pets.rs has the
# same list) and scikit-image's photos the stand-ins are cut from: bench/make_photos.py's lists.
sys.path.insert(0, os.path.join(ROOT, "bench"))
from make_photos import BREEDS, PHOTOS as SKIMAGE_PHOTOS  # noqa: E402

PETS_PATH = "fast-ai-imageclas/oxford-iiit-pet.tgz"
MNIST_SAMPLE_PATH = "fast-ai-sample/mnist_sample.tgz"


# ---------------------------------------------------------------- source photos

def source_photos(home=None):
    """RGB photos to make pets from: scikit-image's sample photos, else ~/.fastai/samples."""
    home = home or user_fastai_home()
    wheels = sorted(glob.glob(os.path.join(home, "downloads", "scikit_image-*.whl")))
    if wheels:
        with zipfile.ZipFile(wheels[-1]) as z:
            names = set(z.namelist())
            photos = [Image.open(io.BytesIO(z.read("skimage/data/" + p))).convert("RGB")
                      for p in SKIMAGE_PHOTOS if "skimage/data/" + p in names]
        if photos:
            return photos
    samples = sorted(glob.glob(os.path.join(home, "samples", "*.png")) + glob.glob(os.path.join(home, "samples", "*.jpg")))
    if not samples:
        raise FileNotFoundError(
            f"no source photos: neither {home}/downloads/scikit_image-*.whl nor {home}/samples/*.png|jpg "
            "exist; run ./install.sh (it puts both there)")
    return [Image.open(p).convert("RGB") for p in samples]


def pet_photo(src, w, h, rng, tint, mirror_p=0.5):
    """A random crop of `src` at a random scale, maybe mirrored, brightness jitter, tinted."""
    base = max(w / src.width, h / src.height)
    scale = rng.uniform(base, base * 1.8)
    img = src.resize((max(w, round(src.width * scale)), max(h, round(src.height * scale))), Image.BILINEAR)
    x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
    img = img.crop((x, y, x + w, y + h))
    if rng.random() < mirror_p:
        img = ImageOps.mirror(img)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    return Image.blend(img, Image.new("RGB", img.size, tint), 0.3)


# ---------------------------------------------------------------- archives

def _write_tgz(out, folder, arcname):
    """tar.gz of `folder` as `arcname/...`, written to a temporary name and renamed into place."""
    tmp = out + ".partial"
    with open(tmp, "wb") as raw:
        # mtime 0 and sorted entries: the same inputs give the same bytes
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w") as tar:
                def add(path, name):
                    info = tar.gettarinfo(path, name)
                    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                    if info.isfile():
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
                add(folder, arcname)
                for dirpath, dirnames, filenames in os.walk(folder):
                    dirnames.sort()
                    rel = os.path.relpath(dirpath, folder)
                    for d in dirnames:
                        add(os.path.join(dirpath, d), os.path.normpath(os.path.join(arcname, rel, d)))
                    for f in sorted(filenames):
                        add(os.path.join(dirpath, f), os.path.normpath(os.path.join(arcname, rel, f)))
    os.replace(tmp, out)
    return out


def _class_ids():
    """list.txt's ids: CLASS-ID 1..37 alphabetically (case-insensitive), SPECIES 1 cat / 2 dog,
    BREED ID 1..12 for cats and 1..25 for dogs."""
    ids = {}
    cats = sorted((b for b in BREEDS if b[0].isupper()), key=str.lower)
    dogs = sorted((b for b in BREEDS if b[0].islower()), key=str.lower)
    for class_id, b in enumerate(sorted(BREEDS, key=str.lower), start=1):
        species = 1 if b[0].isupper() else 2
        breed_id = (cats if species == 1 else dogs).index(b) + 1
        ids[b] = (class_id, species, breed_id)
    return ids


def make_pets(out_dir, per_breed=4, seed=0, photos=None):
    """Writes `out_dir/fast-ai-imageclas/oxford-iiit-pet.tgz` (37 x per_breed JPEGs of 150-260 px
    on a side, quality 90, plus annotations/) and returns its path."""
    rng = random.Random(seed)
    photos = photos or source_photos()
    work = os.path.join(out_dir, ".build", "oxford-iiit-pet")
    images, anno = os.path.join(work, "images"), os.path.join(work, "annotations")
    for d in (images, os.path.join(anno, "trimaps"), os.path.join(anno, "xmls")):
        os.makedirs(d, exist_ok=True)
    ids = _class_ids()
    rows = []
    for b, breed in enumerate(BREEDS):
        tint = ((b * 67) % 256, (b * 131) % 256, (b * 29) % 256)
        numbers = sorted(rng.sample(range(1, 200), per_breed))  # real ids have gaps, too
        for n in numbers:
            name = f"{breed}_{n}"
            w, h = rng.randint(180, 260), rng.randint(150, 220)
            pet_photo(photos[b % len(photos)], w, h, rng, tint).save(os.path.join(images, name + ".jpg"), quality=90)
            # trimap: 1 pet, 2 background, 3 border (the real ones are PNGs of the image's size)
            tri = Image.new("L", (w, h), 2)
            box = (w // 5, h // 6, w - w // 5, h - h // 8)
            ImageDraw.Draw(tri).ellipse(box, fill=1, outline=3, width=3)
            tri.save(os.path.join(anno, "trimaps", name + ".png"))
            rows.append((name, *ids[breed], box))
    # half of each breed in trainval (with a head box in xmls/), half in test, as the real split
    trainval, test = [], []
    for i, r in enumerate(rows):
        (trainval if i % 2 == 0 else test).append(r)
    header = ("#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
              "#BREED ID: 1-25:Cat 1:12:Dog\n#All images with 1st letter as captial are cat images\n"
              "#images with small first letter are dog images\n")
    line = lambda r: f"{r[0]} {r[1]} {r[2]} {r[3]}\n"
    with open(os.path.join(anno, "list.txt"), "w") as f:
        f.write(header + "".join(line(r) for r in sorted(rows, key=lambda r: r[0].lower())))
    for fname, part in (("trainval.txt", trainval), ("test.txt", test)):
        with open(os.path.join(anno, fname), "w") as f:
            f.write("".join(line(r) for r in sorted(part, key=lambda r: r[0].lower())))
    for name, _, species, _, (x0, y0, x1, y1) in trainval:
        xml = (f"<annotation><folder>OXIIIT</folder><filename>{name}.jpg</filename><object>"
               f"<name>{'cat' if species == 1 else 'dog'}</name><pose>Frontal</pose><truncated>0</truncated>"
               f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
               f"<ymax>{(y0 + y1) // 2}</ymax></bndbox></object></annotation>\n")
        with open(os.path.join(anno, "xmls", name + ".xml"), "w") as f:
            f.write(xml)
    with open(os.path.join(anno, "README"), "w") as f:
        f.write("Stand-in for the Oxford-IIIT Pet annotations (tests/stand_ins.py): list.txt, "
                "trainval.txt, test.txt, trimaps/ and xmls/ in the real archive's formats.\n")
    out = os.path.join(out_dir, PETS_PATH)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    return _write_tgz(out, work, "oxford-iiit-pet")


def draw_digit(digit, rng):
    """A 28x28 grayscale MNIST-like 3 or 7: a white pen stroke on black, jittered and rotated."""
    big = Image.new("L", (112, 112), 0)
    d = ImageDraw.Draw(big)
    pen = rng.randint(9, 14)
    j = lambda v: v + rng.randint(-6, 6)
    if digit == 7:
        top = (j(28), j(24)), (j(84), j(24))
        d.line([top[0], top[1], (j(48), j(92))], fill=255, width=pen, joint="curve")
        if rng.random() < 0.3:  # a crossed 7
            d.line([(j(46), j(58)), (j(74), j(58))], fill=255, width=pen - 3)
    elif digit == 3:
        x0, x1 = j(30), j(80)
        d.arc((x0, j(16), x1, j(58)), start=-160, end=90, fill=255, width=pen)
        d.arc((x0 - 4, j(54), x1 + 4, j(98)), start=-90, end=160, fill=255, width=pen)
    else:
        raise ValueError(f"only 3s and 7s are drawn, not {digit}")
    big = big.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR)
    big = big.filter(ImageFilter.GaussianBlur(1.2))
    # MNIST centres the digit's bounding box in a 20x20 area of the 28x28 image
    box = big.getbbox() or (0, 0, 112, 112)
    crop = big.crop(box)
    s = 20 / max(crop.width, crop.height)
    crop = crop.resize((max(1, round(crop.width * s)), max(1, round(crop.height * s))), Image.LANCZOS)
    out = Image.new("L", (28, 28), 0)
    out.paste(crop, ((28 - crop.width) // 2, (28 - crop.height) // 2))
    return out


def make_mnist_sample(out_dir, n_train=40, n_valid=10, seed=0):
    """Writes `out_dir/fast-ai-sample/mnist_sample.tgz`: `n_train` + `n_valid` PNGs per digit and
    labels.csv (train rows, then valid rows, as the real file lists every image) and returns
    its path."""
    rng = random.Random(seed)
    work = os.path.join(out_dir, ".build", "mnist_sample")
    rows = []
    ids = rng.sample(range(1, 60000), 2 * (n_train + n_valid))
    for split, n in (("train", n_train), ("valid", n_valid)):
        for digit in (3, 7):
            folder = os.path.join(work, split, str(digit))
            os.makedirs(folder, exist_ok=True)
            group = []
            for _ in range(n):
                name = f"{ids.pop()}.png"
                draw_digit(digit, rng).save(os.path.join(folder, name))
                group.append(f"{split}/{digit}/{name},{0 if digit == 3 else 1}\n")
            rng.shuffle(group)
            rows += group
    with open(os.path.join(work, "labels.csv"), "w") as f:
        f.write("name,label\n" + "".join(rows))
    out = os.path.join(out_dir, MNIST_SAMPLE_PATH)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    return _write_tgz(out, work, "mnist_sample")


def make_weights(out_dir, archs=("resnet34", "resnet50")):
    """Random-valued ResNet weights in the hub's layout under `out_dir/weights/`; returns the
    base URL path (`weights/`)."""
    if not os.access(WEIGHTS_TOOL, os.X_OK):
        raise FileNotFoundError(
            f"{WEIGHTS_TOOL} is missing: build it with "
            "`cargo build --release --locked -p fastai --example stand_in_weights`")
    dest = os.path.join(out_dir, "weights")
    todo = [a for a in archs if not os.path.isfile(os.path.join(dest, f"{a}.tv_in1k/resolve/main/model.safetensors"))]
    if todo:
        subprocess.run([WEIGHTS_TOOL, dest, *todo], check=True, capture_output=True, timeout=600)
    return dest


# ---------------------------------------------------------------- the server

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """`http.server` on 127.0.0.1 (a free port) serving `root` from a thread; a context manager.
    It answers whole files (200, Content-Length) and ignores Range, which the downloader
    handles by starting over."""

    def __init__(self, root):
        handler = lambda *a, **k: _Quiet(*a, directory=root, **k)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    def env(self, home):
        """What the notebook's process needs: the mirror, the weights hub, a fresh FASTAI_HOME."""
        return {
            "FASTAI_URL_BASE": self.base,
            "FASTAI_WEIGHTS_BASE": self.base + "weights/",
            "FASTAI_HOME": str(home),
        }


def build(out_dir, per_breed=4, mnist=(40, 10), archs=("resnet34", "resnet50", "resnet18")):
    """Everything the pets notebook downloads, under `out_dir` (ready to serve)."""
    os.makedirs(out_dir, exist_ok=True)
    make_pets(out_dir, per_breed=per_breed)
    make_mnist_sample(out_dir, *mnist)
    make_weights(out_dir, archs)
    return out_dir


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="where to build the stand-ins (and FASTAI_HOME=DIR/home)")
    ap.add_argument("--per-breed", type=int, default=4)
    ap.add_argument("--archs", default="resnet34,resnet50,resnet18")
    a = ap.parse_args()
    build(a.dir, a.per_breed, archs=a.archs.split(","))
    with Server(a.dir) as s:
        for k, v in s.env(os.path.join(os.path.abspath(a.dir), "home")).items():
            print(f"export {k}={v}")
        print("serving; Ctrl-C stops", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
