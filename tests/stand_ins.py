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

Lesson 3's (`build_lesson3`, drawn here, seeded; the content of each depends on its labels, so a
model can learn them):

- `fast-ai-sample/planet_tiny.tgz`: `planet_tiny/train/train_<k>.jpg` (128x128 satellite-like
  scenes) and `planet_tiny/labels.csv` (`image_name,tags`: `train_<k>` and space-separated sorted
  tags of planet's 17, one weather tag each);
- `fast-ai-imagelocal/camvid.tgz` and `fast-ai-sample/camvid_tiny.tgz`: `camvid[_tiny]/images/
  <name>.png` (96x72 street scenes), `labels/<name>_P.png` (exact 8-bit masks of CamVid code
  ids), `codes.txt` (CamVid's 32 codes), `valid.txt`;
- `fast-ai-imagelocal/biwi_head_pose.tgz`: `biwi_head_pose/<NN>/frame_<k>_rgb.jpg` (160x120),
  `frame_<k>_pose.txt` (rotation rows, then the head's translation) and `rgb.cal` (the intrinsics
  of a 160x120 camera, first 3 rows); the head is drawn where the lesson's convert_biwi puts it.

The notebook finds them through the library's own switches: `FASTAI_URL_BASE` (the dataset
mirror), `FASTAI_WEIGHTS_BASE` (the weights hub) and `FASTAI_HOME` (a fresh data folder, so
`~/.fastai` is not touched). Downloads from a mirror skip the real archive's known md5 (see
`lib/src/data/external.rs`), so the small pets stand-in is accepted.

The photos are crops, flips and colour shifts of the real photographs in scikit-image's wheel
(which ./install.sh keeps in ~/.fastai/downloads), or of ~/.fastai/samples/ when the wheel is
missing. Each breed has its own source photo and tint, so the classes are learnable.

By hand (then run the notebook in JupyterLab from a shell with the printed variables):

    .venv/bin/python tests/stand_ins.py DIR [--per-breed 4] [--archs resnet34,resnet50,resnet18] [--lesson3]
"""

import argparse
import glob
import gzip
import http.server
import io
import math
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


# ---------------------------------------------------------------- lesson 3: planet, camvid, biwi

PLANET_TINY_PATH = "fast-ai-sample/planet_tiny.tgz"
CAMVID_PATH = "fast-ai-imagelocal/camvid.tgz"
CAMVID_TINY_PATH = "fast-ai-sample/camvid_tiny.tgz"
BIWI_PATH = "fast-ai-imagelocal/biwi_head_pose.tgz"

# Planet's 17 tags; exactly one weather tag per image, as in the competition's labels.
PLANET_WEATHER = ["clear", "partly_cloudy", "haze", "cloudy"]
PLANET_TAGS = ["agriculture", "artisinal_mine", "bare_ground", "blooming", "blow_down", "clear", "cloudy",
               "conventional_mine", "cultivation", "habitation", "haze", "partly_cloudy", "primary", "road",
               "selective_logging", "slash_burn", "water"]
# P(tag) for a non-cloudy image (rare tags raised above their real frequency so that a tiny set has some)
PLANET_LAND_P = {"primary": 0.9, "agriculture": 0.35, "road": 0.25, "water": 0.2, "cultivation": 0.15,
                 "habitation": 0.12, "bare_ground": 0.08, "artisinal_mine": 0.05, "blooming": 0.05,
                 "selective_logging": 0.05, "slash_burn": 0.05, "blow_down": 0.04, "conventional_mine": 0.04}

# CamVid's 32 classes, in the order of its codes.txt (Void = 30).
CAMVID_CODES = ["Animal", "Archway", "Bicyclist", "Bridge", "Building", "Car", "CartLuggagePram", "Child",
                "Column_Pole", "Fence", "LaneMkgsDriv", "LaneMkgsNonDriv", "Misc_Text", "MotorcycleScooter",
                "OtherMoving", "ParkingBlock", "Pedestrian", "Road", "RoadShoulder", "Sidewalk", "SignSymbol",
                "Sky", "SUVPickupTruck", "TrafficCone", "TrafficLight", "Train", "Tree", "Truck_Bus", "Tunnel",
                "VegetationMisc", "Void", "Wall"]

# BIWI: the real images are 640x480 with rgb.cal's intrinsics fx = fy = 517.679, cx = 320, cy = 240.5;
# the stand-in's are a quarter of that on each axis.
BIWI_SIZE = (160, 120)


def biwi_cal(size):
    """(fx, fy, cx, cy) of BIWI's RGB camera scaled to images of `size` (width, height)."""
    sx, sy = size[0] / 640, size[1] / 480
    return 517.679 * sx, 517.679 * sy, 320 * sx, 240.5 * sy


BIWI_CAL = biwi_cal(BIWI_SIZE)


def _noisy(img, rng, amount):
    """`img` (PIL RGB) plus seeded gaussian pixel noise."""
    import numpy as np

    a = np.asarray(img, np.float32)
    a = a + np.random.default_rng(rng.randrange(1 << 30)).normal(0, amount, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def _jitter(rgb, rng, d=18):
    return tuple(max(0, min(255, c + rng.randint(-d, d))) for c in rgb)


def planet_tags(rng):
    """A sorted list of planet tags: one weather tag; cloudy images have nothing else."""
    weather = rng.choices(PLANET_WEATHER, weights=[0.65, 0.17, 0.08, 0.10])[0]
    tags = {weather}
    if weather != "cloudy":
        tags |= {t for t, p in PLANET_LAND_P.items() if rng.random() < p}
    return sorted(tags)


def planet_image(tags, rng, size=128):
    """A satellite-like RGB scene in which every tag has its own look: primary a dark green forest,
    agriculture pale fields, water a blue river, road thin pale lines, habitation small bright
    roofs, ..., haze a pale veil, partly_cloudy white blobs, cloudy an almost white image."""
    s = size
    forest = "primary" in tags
    img = Image.new("RGB", (s, s), _jitter((34, 78, 38) if forest else (150, 128, 92), rng))
    d = ImageDraw.Draw(img)
    shade = (20, 60, 28) if forest else (128, 108, 78)
    for _ in range(40):  # texture: canopy or soil
        x, y, r = rng.randrange(s), rng.randrange(s), rng.randint(3, 10)
        d.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(shade, rng, 10))
    pt = lambda: (rng.randrange(s), rng.randrange(s))

    def patch(cx, cy, w, h, fill):
        a = rng.uniform(0, math.pi)
        ca, sa = math.cos(a), math.sin(a)
        corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
        d.polygon([(cx + x * ca - y * sa, cy + x * sa + y * ca) for x, y in corners], fill=fill)

    if "agriculture" in tags:
        for _ in range(rng.randint(1, 3)):
            patch(*pt(), rng.randint(30, 60), rng.randint(25, 50), _jitter((196, 186, 110), rng))
    if "cultivation" in tags:
        for _ in range(rng.randint(1, 2)):
            x0, y0, w = rng.randint(0, s - 40), rng.randint(0, s - 40), rng.randint(24, 40)
            for k in range(0, w, 4):
                d.rectangle((x0, y0 + k, x0 + w, y0 + k + 1), fill=_jitter((170, 150, 90), rng, 8))
    if "bare_ground" in tags:
        for _ in range(rng.randint(1, 3)):
            x, y, r = *pt(), rng.randint(8, 18)
            d.ellipse((x - r, y - r // 2, x + r, y + r // 2), fill=_jitter((166, 112, 70), rng))
    if "water" in tags:
        y = rng.randint(10, s - 10)
        path = [(x, y + 12 * math.sin(x / rng.uniform(12, 25) + rng.uniform(0, 6))) for x in range(-10, s + 11, 6)]
        d.line(path, fill=_jitter((40, 72, 140), rng), width=rng.randint(6, 12), joint="curve")
    if "conventional_mine" in tags:
        x, y = pt()
        d.polygon([(x, y), (x + 30, y + 5), (x + 25, y + 30), (x - 5, y + 22)], fill=_jitter((200, 200, 196), rng))
        d.ellipse((x + 6, y + 8, x + 18, y + 20), fill=_jitter((196, 120, 60), rng))
    if "artisinal_mine" in tags:
        x, y = pt()
        for _ in range(6):
            px, py = x + rng.randint(-12, 12), y + rng.randint(-12, 12)
            d.ellipse((px - 3, py - 3, px + 3, py + 3), fill=_jitter((214, 140, 60), rng))
            d.point((px, py), fill=(90, 110, 120))
    if "road" in tags:
        for _ in range(rng.randint(1, 2)):
            d.line([pt(), pt(), pt()], fill=_jitter((205, 190, 160), rng, 10), width=rng.randint(2, 3))
    if "habitation" in tags:
        x, y = pt()
        for _ in range(rng.randint(8, 16)):
            px, py, w = x + rng.randint(-18, 18), y + rng.randint(-18, 18), rng.randint(2, 4)
            d.rectangle((px, py, px + w, py + w), fill=_jitter((232, 228, 222), rng, 12))
    if "selective_logging" in tags:
        x, y = pt()
        for _ in range(5):
            nx, ny = x + rng.randint(-20, 20), y + rng.randint(-20, 20)
            d.line([(x, y), (nx, ny)], fill=_jitter((180, 150, 100), rng), width=1)
            x, y = nx, ny
    if "slash_burn" in tags:
        for _ in range(rng.randint(2, 4)):
            x, y, r = *pt(), rng.randint(3, 7)
            d.ellipse((x - r, y - r, x + r, y + r), fill=_jitter((28, 24, 22), rng, 6))
    if "blooming" in tags:
        for _ in range(30):
            x, y = pt()
            d.ellipse((x - 1, y - 1, x + 1, y + 1), fill=_jitter((236, 170, 210), rng, 12))
    if "blow_down" in tags:
        x, y = pt()
        for k in range(8):
            d.line([(x + 3 * k, y), (x + 3 * k + 14, y + 14)], fill=_jitter((150, 170, 120), rng), width=1)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    if "haze" in tags:
        img = Image.blend(img, Image.new("RGB", (s, s), (200, 200, 210)), rng.uniform(0.45, 0.6))
    if "partly_cloudy" in tags or "cloudy" in tags:
        cloud = Image.new("L", (s, s), 0)
        cd = ImageDraw.Draw(cloud)
        n, r = (rng.randint(2, 4), (12, 30)) if "partly_cloudy" in tags else (25, (25, 45))
        for _ in range(n):
            x, y, rr = *pt(), rng.randint(*r)
            cd.ellipse((x - rr, y - rr, x + rr, y + rr), fill=rng.randint(200, 255))
        cloud = cloud.filter(ImageFilter.GaussianBlur(6))
        img = Image.composite(Image.new("RGB", (s, s), (236, 236, 240)), img, cloud)
    return _noisy(img, rng, 4)


def make_planet_tiny(out_dir, n=200, seed=0, size=128):
    """Writes `out_dir/fast-ai-sample/planet_tiny.tgz`: `planet_tiny/train/train_<k>.jpg`
    (size x size JPEGs) and `planet_tiny/labels.csv` (`image_name,tags`: the name without suffix,
    space-separated sorted tags), the layout of fastai's planet_tiny; returns its path."""
    rng = random.Random(seed)
    work = os.path.join(out_dir, ".build", "planet_tiny")
    os.makedirs(os.path.join(work, "train"), exist_ok=True)
    rows = []
    for k in sorted(rng.sample(range(40479), n)):  # the competition's train_0 .. train_40478
        tags = planet_tags(rng)
        planet_image(tags, rng, size).save(os.path.join(work, "train", f"train_{k}.jpg"), quality=90)
        rows.append(f"train_{k},{' '.join(tags)}\n")
    with open(os.path.join(work, "labels.csv"), "w") as f:
        f.write("image_name,tags\n" + "".join(rows))
    out = os.path.join(out_dir, PLANET_TINY_PATH)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    return _write_tgz(out, work, "planet_tiny")


def camvid_scene(rng, w=96, h=72):
    """(RGB image, L mask of CAMVID_CODES ids) of a street: sky, buildings, trees, road with lane
    marks, sidewalks, cars, a truck, pedestrians, poles, signs, a dashboard (Void). Each shape is
    drawn with the same call into both, so the mask is exact."""
    code = {c: i for i, c in enumerate(CAMVID_CODES)}
    img = Image.new("RGB", (w, h))
    mask = Image.new("L", (w, h))
    di, dm = ImageDraw.Draw(img), ImageDraw.Draw(mask)

    def shape(kind, coords, name, colour, **kw):
        getattr(di, kind)(coords, fill=colour, **kw)
        getattr(dm, kind)(coords, fill=code[name], **kw)

    horizon = round(h * rng.uniform(0.38, 0.5))
    shape("rectangle", (0, 0, w, horizon), "Sky", _jitter((150, 185, 225), rng))
    vx = w // 2 + rng.randint(-w // 8, w // 8)  # vanishing point
    x = -rng.randint(0, 10)
    while x < w:  # buildings along the horizon
        bw = rng.randint(w // 8, w // 4)
        top = rng.randint(h // 10, horizon - 4)
        shape("rectangle", (x, top, x + bw, horizon + h // 8), "Building", _jitter((150, 120, 100), rng, 35))
        x += bw
    for _ in range(rng.randint(0, 3)):  # trees in front of the buildings
        tx, ty, r = rng.randrange(w), horizon - rng.randint(0, h // 6), rng.randint(5, 10)
        shape("ellipse", (tx - r, ty - r, tx + r, ty + r), "Tree", _jitter((60, 110, 50), rng))
    if rng.random() < 0.5:
        shape("rectangle", (0, horizon + h // 10, w // 4, horizon + h // 5), "Wall", _jitter((170, 160, 140), rng))
    ground = horizon + h // 8
    shape("rectangle", (0, ground, w, h), "Sidewalk", _jitter((170, 165, 160), rng, 12))
    shape("polygon", [(vx - 3, ground), (vx + 3, ground), (w + w // 3, h), (-w // 3, h)], "Road",
          _jitter((80, 80, 88), rng, 10))
    for k in range(4):  # dashed centre line
        t0, t1 = (k + 0.2) / 4, (k + 0.6) / 4
        y0, y1 = ground + t0 * (h - ground), ground + t1 * (h - ground)
        shape("polygon", [(vx - 1 * t0, y0), (vx + 1 + 2 * t0, y0), (vx + 1 + 2 * t1, y1), (vx - 2 * t1, y1)],
              "LaneMkgsDriv", (235, 235, 225))
    if rng.random() < 0.4:
        shape("ellipse", (w - 14, ground - 3, w + 6, ground + 9), "VegetationMisc", _jitter((90, 130, 60), rng))
    for _ in range(rng.randint(0, 2)):  # poles with signs
        px = rng.choice([rng.randint(2, w // 4), rng.randint(3 * w // 4, w - 3)])
        shape("rectangle", (px, horizon - rng.randint(4, 14), px + 1, ground + 4), "Column_Pole", (110, 110, 110))
        if rng.random() < 0.6:
            sy = horizon - rng.randint(0, 6)
            shape("rectangle", (px - 2, sy, px + 3, sy + 4), "SignSymbol", rng.choice([(200, 30, 30), (30, 60, 190)]))
    depths = sorted(rng.uniform(0.15, 0.8) for _ in range(rng.randint(1, 3)))
    for t in depths:  # cars (sometimes a truck) on the road, far to near, bigger when nearer
        y1 = ground + t * (h - ground)
        cw = 8 + 30 * t
        cx = vx + rng.uniform(-0.8, 0.8) * (w / 2) * t
        big = rng.random() < 0.2
        ch = cw * (0.9 if big else 0.55)
        shape("rectangle", (cx - cw / 2, y1 - ch, cx + cw / 2, y1), "Truck_Bus" if big else "Car",
              _jitter((rng.randint(20, 230), rng.randint(20, 230), rng.randint(20, 230)), rng, 0))
    for _ in range(rng.randint(0, 3)):  # pedestrians on the sidewalks
        px = rng.choice([rng.randint(0, w // 5), rng.randint(4 * w // 5, w - 3)])
        py = ground + rng.randint(2, (h - ground) // 2)
        ph = rng.randint(8, 14)
        shape("rectangle", (px, py - ph, px + 2, py), "Pedestrian", _jitter((60, 50, 70), rng, 25))
    if rng.random() < 0.3:  # the car's dashboard at the bottom
        shape("rectangle", (0, h - rng.randint(3, 6), w, h), "Void", (12, 12, 12))
    return _noisy(img, rng, 5), mask


CAMVID_SEQUENCES = ["0001TP", "0006R0", "Seq05VD", "0016E5"]  # the real archive's four sequences


def make_camvid(out_dir, n=60, seed=0, size=(96, 72), tiny=False, valid_pct=0.2):
    """Writes `out_dir/fast-ai-imagelocal/camvid.tgz` (or with `tiny`, `fast-ai-sample/camvid_tiny.tgz`):
    `camvid[_tiny]/images/<name>.png` (RGB, `size`), `labels/<name>_P.png` (8-bit masks of
    CamVid code ids, the image's size), `codes.txt` (the 32 CamVid codes) and `valid.txt` (the
    file names of the validation images: the last 0016E5 frames, as in the real file). Names as in
    CamVid: `0001TP_006690`, `0006R0_f00930`, `Seq05VD_f00000`, `0016E5_07959`. Returns its path."""
    rng = random.Random(seed + (1000 if tiny else 0))
    name = "camvid_tiny" if tiny else "camvid"
    work = os.path.join(out_dir, ".build", name)
    for d in ("images", "labels"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    n_valid = max(1, round(n * valid_pct))
    names = []
    for i in range(n - n_valid):
        seq = CAMVID_SEQUENCES[i % 3]
        k = 30 * (i // 3) + (6690 if seq == "0001TP" else 930 if seq == "0006R0" else 0)
        names.append(f"{seq}_{k:06d}" if seq == "0001TP" else f"{seq}_f{k:05d}")
    valid = [f"0016E5_{7959 + 2 * i:05d}" for i in range(n_valid)]
    for stem in names + valid:
        img, mask = camvid_scene(rng, *size)
        img.save(os.path.join(work, "images", stem + ".png"))
        mask.save(os.path.join(work, "labels", stem + "_P.png"))
    with open(os.path.join(work, "codes.txt"), "w") as f:
        f.write("\n".join(CAMVID_CODES) + "\n")
    with open(os.path.join(work, "valid.txt"), "w") as f:
        f.write("\n".join(v + ".png" for v in valid) + "\n")
    out = os.path.join(out_dir, CAMVID_TINY_PATH if tiny else CAMVID_PATH)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    return _write_tgz(out, work, name)


def biwi_centre(t, cal=BIWI_CAL):
    """The lesson's convert_biwi: the pixel (c1 across, c2 down) of the translation t = (x, y, z)."""
    fx, fy, cx, cy = cal
    return t[0] * fx / t[2] + cx, t[1] * fy / t[2] + cy


def _rotation(yaw, pitch, roll):
    import numpy as np

    cy_, sy_ = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy_, 0, sy_], [0, 1, 0], [-sy_, 0, cy_]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def biwi_frame(person, t, yaw, pitch, rng, cal=BIWI_CAL, size=BIWI_SIZE):
    """A 160x120 RGB frame: a room, a torso, and an elliptic head whose centre is exactly
    biwi_centre(t) (continuous coordinates: pixel i covers [i, i+1)), its size shrinking with the
    distance t[2], a face (eyes, nose) turned by yaw and pitch."""
    import numpy as np

    w, h = size
    c1, c2 = biwi_centre(t, cal)
    img = Image.new("RGB", size, person["wall"])
    d = ImageDraw.Draw(img)
    for x0, y0, x1, y1, col in person["furniture"]:
        d.rectangle((x0, y0, x1, y1), fill=col)
    f = cal[0] / t[2]
    rx, ry = 80 * f, 100 * f  # a head 16 cm wide, 20 cm tall
    d.polygon([(c1 - 2.6 * rx, h), (c1 - 1.8 * rx, c2 + 1.5 * ry), (c1 + 1.8 * rx, c2 + 1.5 * ry),
               (c1 + 2.6 * rx, h)], fill=person["shirt"])
    a = np.asarray(img, np.float32).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres
    u, v = (xx - c1) / rx, (yy - c2) / ry
    r = np.sqrt(u * u + v * v)
    cover = np.clip((1 - r) * min(rx, ry) + 0.5, 0, 1)[..., None]  # antialiased edge at r = 1
    head = np.where((v < -0.35 + 0.25 * np.abs(u))[..., None], person["hair"], person["skin"]).astype(np.float32)
    a = a * (1 - cover) + head * cover
    # face: eyes and nose shifted by the head's turn
    fx, fy = math.sin(yaw) * 0.55, -math.sin(pitch) * 0.5
    for ex, ey, er, col in ((-0.35, -0.1, 0.11, (40, 30, 30)), (0.35, -0.1, 0.11, (40, 30, 30)),
                            (0.0, 0.2, 0.13, (170, 110, 90))):
        px, py = c1 + (ex * math.cos(yaw) + fx) * rx, c2 + (ey + fy) * ry
        m = ((xx - px) ** 2 + (yy - py) ** 2) < (er * rx) ** 2
        if abs(ex * math.cos(yaw) + fx) < 0.8:
            a[m] = col
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    return _noisy(img, rng, 4)


def _fmt(v):
    return f"{v:.6g}"


def make_biwi(out_dir, folders=14, frames=8, seed=0, size=BIWI_SIZE):
    """Writes `out_dir/fast-ai-imagelocal/biwi_head_pose.tgz`: `biwi_head_pose/<NN>/` for NN = 01 ..
    `folders` (one person each; the lesson validates on 13), each with `frames` pairs
    `frame_<k>_rgb.jpg` (160x120) and `frame_<k>_pose.txt` (the head's rotation matrix, three
    rows, then a blank line and its translation x y z in mm, as in BIWI), and `rgb.cal` (the
    camera's 3x3 intrinsic matrix first, then distortion, rotation, translation and the image's
    width and height, as in BIWI; np.genfromtxt(..., skip_footer=6) reads the matrix). Folder 09 has frame_00667, which the
    lesson opens. The head is drawn centred where the lesson's convert_biwi puts the pose's
    translation. Returns its path."""
    rng = random.Random(seed)
    work = os.path.join(out_dir, ".build", "biwi_head_pose")
    fx, fy, cx, cy = biwi_cal(size)
    cal_text = (f"{_fmt(fx)} 0 {_fmt(cx)} \n0 {_fmt(fy)} {_fmt(cy)} \n0 0 1 \n\n0 0 0 0 \n\n"
                f"1 0 0 \n0 1 0 \n0 0 1 \n\n0 0 0 \n\n{size[0]} {size[1]} \n")
    cal = (float(_fmt(fx)), float(_fmt(fy)), float(_fmt(cx)), float(_fmt(cy)))  # as the file says
    w, h = size
    for p in range(1, folders + 1):
        folder = os.path.join(work, f"{p:02d}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "rgb.cal"), "w") as f:
            f.write(cal_text)
        skin, hair = _jitter((205, 160, 130), rng, 30), _jitter((60, 45, 35), rng, 30)

        def unlike(base, d):  # a colour that stands out from the head's
            while True:
                c = _jitter(base, rng, d)
                if min(max(abs(a - b) for a, b in zip(c, o)) for o in (skin, hair)) > 40:
                    return c

        person = {
            "wall": unlike((190, 185, 170), 45),
            "skin": skin,
            "hair": hair,
            "shirt": unlike((125, 125, 125), 100),
            "furniture": [(rng.randint(0, w), rng.randint(0, h), rng.randint(0, w), rng.randint(0, h),
                           unlike((120, 100, 80), 60)) for _ in range(3)],
        }
        person["furniture"] = [(min(a, c), min(b, d), max(a, c), max(b, d), col)
                               for a, b, c, d, col in person["furniture"]]
        numbers = set(rng.sample(range(3, 1000), frames))
        if p == 9 and 667 not in numbers:  # the frame the lesson opens
            numbers = set(sorted(numbers)[1:]) | {667}
        for k in sorted(numbers):
            yaw, pitch, roll = rng.uniform(-0.7, 0.7), rng.uniform(-0.35, 0.35), rng.uniform(-0.15, 0.15)
            z = rng.uniform(750, 1100)
            u, v = rng.uniform(0.25 * w, 0.75 * w), rng.uniform(0.3 * h, 0.65 * h)
            t = [float(_fmt((u - cal[2]) * z / cal[0])), float(_fmt((v - cal[3]) * z / cal[1])), float(_fmt(z))]
            rot = _rotation(yaw, pitch, roll)
            stem = os.path.join(folder, f"frame_{k:05d}")
            with open(stem + "_pose.txt", "w") as f:
                f.write("".join(" ".join(_fmt(x) for x in row) + " \n" for row in rot))
                f.write("\n" + " ".join(_fmt(x) for x in t) + " \n\n")
            biwi_frame(person, t, yaw, pitch, rng, cal, size).save(stem + "_rgb.jpg", quality=90)
    out = os.path.join(out_dir, BIWI_PATH)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    return _write_tgz(out, work, "biwi_head_pose")


def build_lesson3(out_dir, planet=200, camvid=60, camvid_tiny=40, biwi=(14, 8)):
    """The archives the lesson-3 notebooks download, under `out_dir` (ready to serve)."""
    os.makedirs(out_dir, exist_ok=True)
    make_planet_tiny(out_dir, n=planet)
    make_camvid(out_dir, n=camvid)
    make_camvid(out_dir, n=camvid_tiny, tiny=True)
    make_biwi(out_dir, *biwi)
    return out_dir


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
    ap.add_argument("--lesson3", action="store_true", help="also planet_tiny, camvid, camvid_tiny, biwi_head_pose")
    a = ap.parse_args()
    build(a.dir, a.per_breed, archs=a.archs.split(","))
    if a.lesson3:
        build_lesson3(a.dir)
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
