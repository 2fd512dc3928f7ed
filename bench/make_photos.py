#!/usr/bin/env python3
"""Makes a folder of real-size JPEG photos for benchmarks and stand-in datasets.

    python bench/make_photos.py OUT_DIR [--n 512] [--size 500x375] [--pets]

The photos are random crops, scales, flips and colour shifts of the real photographs that ship in
scikit-image's wheel (astronaut, cat, coffee, rocket, motorcycles, ...), saved as JPEG quality 90,
so decoding costs what it costs on real photos. With --pets the files are named like the Oxford
pets (`Abyssinian_12.jpg`, `american_bulldog_3.jpg`: 37 breeds) and each breed gets its own source
photo and tint, so a model can learn them. Needs Pillow; fetches the scikit-image wheel with pip
(no install) into OUT_DIR/../.skimage-wheel once.
"""

import argparse
import io
import os
import random
import subprocess
import sys
import zipfile

from PIL import Image, ImageEnhance, ImageOps

PHOTOS = [
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "grass.png", "gravel.png",
    "brick.png", "ihc.png", "color.png",
]
BREEDS = [
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau", "Maine_Coon",
    "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx", "american_bulldog",
    "american_pit_bull_terrier", "basset_hound", "beagle", "boxer", "chihuahua",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
    "japanese_chin", "keeshond", "leonberger", "miniature_pinscher", "newfoundland", "pomeranian",
    "pug", "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu",
    "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier",
]


def source_photos(cache):
    os.makedirs(cache, exist_ok=True)
    wheels = [f for f in os.listdir(cache) if f.startswith("scikit_image") and f.endswith(".whl")]
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", cache,
                        "scikit-image==0.26.0"], check=True)
        wheels = [f for f in os.listdir(cache) if f.startswith("scikit_image") and f.endswith(".whl")]
    with zipfile.ZipFile(os.path.join(cache, wheels[0])) as z:
        return [Image.open(io.BytesIO(z.read("skimage/data/" + p))).convert("RGB") for p in PHOTOS]


def variant(src, w, h, rng, tint=None):
    scale = rng.uniform(max(w / src.width, h / src.height), max(w / src.width, h / src.height) * 1.6)
    img = src.resize((max(w, int(src.width * scale)), max(h, int(src.height * scale))), Image.BILINEAR)
    x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
    img = img.crop((x, y, x + w, y + h))
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    if tint is not None:
        img = Image.blend(img, Image.new("RGB", img.size, tint), 0.25)
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--size", default="500x375")
    ap.add_argument("--pets", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    rng = random.Random(a.seed)
    photos = source_photos(os.path.join(os.path.dirname(os.path.abspath(a.out)), ".skimage-wheel"))
    os.makedirs(a.out, exist_ok=True)
    for i in range(a.n):
        if a.pets:
            b = i % len(BREEDS)
            tint = ((b * 67) % 256, (b * 131) % 256, (b * 29) % 256)
            img = variant(photos[b % len(photos)], w, h, rng, tint)
            name = f"{BREEDS[b]}_{i // len(BREEDS) + 1}.jpg"
        else:
            img = variant(photos[i % len(photos)], w, h, rng)
            name = f"photo_{i:05d}.jpg"
        img.save(os.path.join(a.out, name), quality=90)
    print(f"wrote {a.n} {w}x{h} JPEGs to {a.out}")


if __name__ == "__main__":
    main()
