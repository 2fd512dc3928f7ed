"""The lesson-3 stand-ins (tests/stand_ins.py) have the layout of the real archives: planet_tiny,
camvid, camvid_tiny and biwi_head_pose, each built into a temporary folder and unpacked. Seconds."""

import csv
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

import stand_ins


def unpack(archive, dest):
    # archives this test just built; `filter=` needs Python >= 3.11.4, which not every 3.11 has
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            assert not m.name.startswith("/") and ".." not in m.name.split("/"), m.name
        t.extractall(dest)
    return dest


def test_planet_tiny(tmp_path):
    archive = stand_ins.make_planet_tiny(str(tmp_path), n=40)
    assert archive.endswith(os.path.join("fast-ai-sample", "planet_tiny.tgz"))
    root = unpack(archive, tmp_path / "x") / "planet_tiny"
    with open(root / "labels.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image_name", "tags"]
    assert len(rows) == 41
    assert sorted(os.listdir(root / "train")) == sorted(r[0] + ".jpg" for r in rows[1:])
    for name, tags in rows[1:]:
        t = tags.split(" ")
        assert t == sorted(set(t)) and set(t) <= set(stand_ins.PLANET_TAGS), tags
        assert len(set(t) & set(stand_ins.PLANET_WEATHER)) == 1, tags
        assert t == ["cloudy"] or "cloudy" not in t
    img = Image.open(root / "train" / (rows[1][0] + ".jpg"))
    assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (128, 128))
    assert len(stand_ins.PLANET_TAGS) == 17


def test_planet_images_depend_on_their_tags():
    import random

    cloudy = np.asarray(stand_ins.planet_image(["cloudy"], random.Random(1)), np.float32)
    forest = np.asarray(stand_ins.planet_image(["clear", "primary"], random.Random(1)), np.float32)
    water = np.asarray(stand_ins.planet_image(["clear", "primary", "water"], random.Random(1)), np.float32)
    assert cloudy.mean() > 180 and forest.mean() < 90
    assert forest[..., 1].mean() > forest[..., 2].mean()  # green
    assert (water[..., 2] - water[..., 1] > 40).sum() > 300  # a blue river


@pytest.mark.parametrize("tiny", [False, True])
def test_camvid(tmp_path, tiny):
    n = 20
    archive = stand_ins.make_camvid(str(tmp_path), n=n, tiny=tiny)
    name = "camvid_tiny" if tiny else "camvid"
    folder = "fast-ai-sample" if tiny else "fast-ai-imagelocal"
    assert archive.endswith(os.path.join(folder, name + ".tgz"))
    root = unpack(archive, tmp_path / "x") / name
    codes = np.loadtxt(root / "codes.txt", dtype=str)  # as the lesson reads it
    assert list(codes) == stand_ins.CAMVID_CODES and len(codes) == 32 and codes[30] == "Void"
    images = sorted(os.listdir(root / "images"))
    assert len(images) == n
    assert sorted(os.listdir(root / "labels")) == sorted(i[:-4] + "_P.png" for i in images)
    valid = (root / "valid.txt").read_text().split()
    assert valid and set(valid) < set(images) and len(valid) == round(n * 0.2)
    seen = set()
    for i in images:
        img = Image.open(root / "images" / i)
        mask = Image.open(root / "labels" / (i[:-4] + "_P.png"))
        assert img.mode == "RGB" and mask.mode == "L"
        assert img.size == mask.size == (96, 72)
        m = np.asarray(mask)
        assert m.max() < len(codes)
        seen |= set(np.unique(m).tolist())
    assert {"Sky", "Road", "Building", "Car", "Sidewalk"} <= {codes[c] for c in seen}


def test_camvid_masks_match_the_images():
    import random

    img, mask = stand_ins.camvid_scene(random.Random(5))
    a, m = np.asarray(img, np.float32), np.asarray(mask)
    sky = m == stand_ins.CAMVID_CODES.index("Sky")
    road = m == stand_ins.CAMVID_CODES.index("Road")
    assert sky[0].all() and road[36:].mean() > 0.3
    assert a[sky][:, 2].mean() > a[road][:, 2].mean() + 60  # blue sky, gray road
    # sky, road and sidewalk are each one colour plus noise, exactly where the mask says
    for name in ("Sky", "Road", "Sidewalk"):
        region = m == stand_ins.CAMVID_CODES.index(name)
        assert region.sum() > 100 and a[region].std(axis=0).max() < 12, name


def test_biwi_head_pose(tmp_path):
    archive = stand_ins.make_biwi(str(tmp_path), folders=13, frames=3)
    assert archive.endswith(os.path.join("fast-ai-imagelocal", "biwi_head_pose.tgz"))
    root = unpack(archive, tmp_path / "x") / "biwi_head_pose"
    assert sorted(os.listdir(root)) == [f"{i:02d}" for i in range(1, 14)]
    assert (root / "09" / "frame_00667_rgb.jpg").is_file()  # the lesson's example frame
    cal = np.genfromtxt(root / "01" / "rgb.cal", skip_footer=6)  # as the lesson reads it
    assert cal.shape == (3, 3) and cal[2].tolist() == [0, 0, 1]
    assert cal[0][2] == 80 and abs(cal[1][2] - 60.125) < 1e-9

    def get_ctr(f):  # the lesson's code
        ctr = np.genfromtxt(str(f)[:-7] + "pose.txt", skip_header=3)
        c1 = ctr[0] * cal[0][0] / ctr[2] + cal[0][2]
        c2 = ctr[1] * cal[1][1] / ctr[2] + cal[1][2]
        return c2, c1

    frames = sorted(root.glob("*/frame_*_rgb.jpg"))
    assert len(frames) == 13 * 3
    for f in frames:
        assert f.with_name(f.name[:-7] + "pose.txt").is_file()
        rot = np.genfromtxt(str(f)[:-7] + "pose.txt", max_rows=3)
        assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-4)
        img = Image.open(f)
        assert (img.format, img.size) == ("JPEG", (160, 120))
        y, x = get_ctr(f)
        assert 0 <= y < 120 and 0 <= x < 160
        # the head (skin or hair) is drawn there: it differs from the person's wall far from it
        a = np.asarray(img, np.float32)
        centre = a[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3).mean(0)
        corner = a[:3, :3].reshape(-1, 3).mean(0)
        assert np.abs(centre - corner).max() > 8 or np.abs(centre - a[int(y), -3:].mean(0)).max() > 8


def test_biwi_head_is_centred_on_the_pose():
    import random

    person = {"wall": (200, 200, 200), "skin": (200, 150, 120), "hair": (200, 150, 120), "shirt": (200, 200, 200),
              "furniture": []}
    t = [100.0, -40.0, 900.0]
    img = stand_ins.biwi_frame(person, t, 0.0, 0.0, random.Random(0))
    a = np.asarray(img, np.float32)
    head = (a[..., 2] < 160)  # skin is less blue than the wall
    ys, xs = np.nonzero(head)
    c1, c2 = stand_ins.biwi_centre(t)
    # without hair or a turn, the head is an ellipse about (c1, c2): its extremes are symmetric
    assert abs((xs.min() + xs.max() + 1) / 2 - c1) <= 1 and abs((ys.min() + ys.max() + 1) / 2 - c2) <= 1.5


def test_build_lesson3(tmp_path):
    stand_ins.build_lesson3(str(tmp_path), planet=10, camvid=10, camvid_tiny=5, biwi=(13, 1))
    for p in (stand_ins.PLANET_TINY_PATH, stand_ins.CAMVID_PATH, stand_ins.CAMVID_TINY_PATH, stand_ins.BIWI_PATH):
        assert os.path.getsize(tmp_path / p) > 10_000, p
