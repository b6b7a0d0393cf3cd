"""The CIFAR-100 PNG zip loader, against small zips the tests write in its format, and once on
the real ``../shared/data/cifar100-png.zip`` when it is there (CI has it)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from winolab.torch import data  # noqa: E402

SHARED_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar100-png.zip"
FINE = ["apple", "bee", "cloud"]
COARSE = ["fruit", "insect", "outdoor"]
FINE_TO_COARSE = [0, 1, 2]


def _png(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _files(rng):
    """(members {zip name: bytes}, label rows, meta) of a 3-class CIFAR-100-like zip."""
    members, rows = {}, []
    for split, n in (("train", 2), ("test", 1)):
        for fine, name in enumerate(FINE):
            for i in range(n):
                raw = _png(rng)
                rel = f"{split}/{name}/{name}_{i}.png"
                members[f"cifar100/{rel}"] = raw
                rows.append({"split": split, "path": rel, "original_filename": f"{name}_{i}.png",
                             "fine_label": fine, "fine_name": name,
                             "coarse_label": FINE_TO_COARSE[fine],
                             "coarse_name": COARSE[FINE_TO_COARSE[fine]],
                             "sha256": hashlib.sha256(raw).hexdigest()})
    meta = {"fine_label_names": FINE, "coarse_label_names": COARSE,
            "fine_to_coarse": FINE_TO_COARSE,
            "counts": {"train": 2 * 3, "test": 3, "train_per_class": 2, "test_per_class": 1}}
    return members, rows, meta


def _write(path, members, rows, meta):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cifar100/labels.csv", out.getvalue())
        zf.writestr("cifar100/meta.json", json.dumps(meta))
        for name, raw in members.items():
            zf.writestr(name, raw)
    return path


@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.setenv("WINOLAB_CACHE", str(tmp_path / "cache"))
    members, rows, meta = _files(np.random.default_rng(0))
    return tmp_path, members, rows, meta


def test_fine_and_coarse_labels_and_pixels(small):
    tmp, members, rows, meta = small
    path = _write(tmp / "c100.zip", members, rows, meta)
    train = data.load_cifar100_png(path, "train")
    assert train.images.shape == (6, 3, 32, 32) and train.classes == tuple(FINE)
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    first = np.asarray(Image.open(io.BytesIO(members["cifar100/train/apple/apple_0.png"])))
    np.testing.assert_array_equal(train.images[0], first.transpose(2, 0, 1))
    coarse = data.load_cifar100_png(path, "test", labels="coarse")
    assert coarse.classes == tuple(COARSE) and coarse.labels.tolist() == [0, 1, 2]
    assert "coarse labels" in coarse.description
    # decoded once: the second load reads the cache, and load_dataset picks this loader
    assert len(list((tmp / "cache").glob("c100-*.npz"))) == 1
    assert data.load_dataset(path, "test").labels.tolist() == [0, 1, 2]


def _broken(small, edit):
    tmp, members, rows, meta = small
    members, rows, meta = dict(members), [dict(r) for r in rows], json.loads(json.dumps(meta))
    edit(members, rows, meta)
    return _write(tmp / "broken.zip", members, rows, meta)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda mem, rows, meta: mem.pop("cifar100/train/bee/bee_1.png"),
     r"labels.csv line \d+ names train/bee/bee_1.png, which is not in the zip"),
    (lambda mem, rows, meta: rows.pop(0), r"1 images have no row in labels.csv"),
    (lambda mem, rows, meta: rows[0].update(fine_label=1),
     r"line 2: fine label 1 does not name the folder 'apple'"),
    (lambda mem, rows, meta: rows[3].update(coarse_label=0),
     r"line 5: coarse label 0 is not the superclass 1"),
    (lambda mem, rows, meta: rows[2].update(sha256="0" * 64),
     r"bee_0.png does not match its sha256"),
    (lambda mem, rows, meta: meta["counts"].update(train=7), r"6 train images, meta.json says 7"),
    (lambda mem, rows, meta: meta["counts"].update(test_per_class=2),
     r"class 'apple' has 1 test images, meta.json says 2 per class"),
    (lambda mem, rows, meta: meta.pop("fine_to_coarse"), r"meta.json is not valid"),
    (lambda mem, rows, meta: mem.update({"cifar100/train/bee/bee_0.png": b"not a png"}),
     r"does not match its sha256"),
])
def test_inconsistent_zips_name_the_file_and_the_problem(small, edit, match):
    path = _broken(small, edit)
    with pytest.raises(ValueError, match=match) as info:
        data.load_cifar100_png(path, "train", cache=False)
    assert str(path) in str(info.value)


def test_corrupt_image_with_a_matching_digest_names_the_member(small):
    def edit(mem, rows, meta):
        mem["cifar100/test/cloud/cloud_0.png"] = b"garbage"
        rows[-1]["sha256"] = hashlib.sha256(b"garbage").hexdigest()
    with pytest.raises(ValueError, match=r"corrupt image .*cloud_0.png"):
        data.load_cifar100_png(_broken(small, edit), "test", cache=False)


def test_missing_truncated_and_wrong_arguments(small):
    tmp, members, rows, meta = small
    with pytest.raises(FileNotFoundError, match="CIFAR-100 PNG zip not found: .*nope.zip"):
        data.load_cifar100_png(tmp / "nope.zip")
    path = _write(tmp / "c100.zip", members, rows, meta)
    raw = path.read_bytes()
    cut = tmp / "cut.zip"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut.zip"):
        data.load_cifar100_png(cut, cache=False)
    with pytest.raises(ValueError, match="labels must be 'fine' or 'coarse'"):
        data.load_cifar100_png(path, labels="superclass")
    with pytest.raises(ValueError, match=r"has no split 'val'; it has \['test', 'train'\]"):
        data.load_cifar100_png(path, "val")
    plain = tmp / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("x/train/a/1.png", members["cifar100/train/apple/apple_0.png"])
    assert not data.is_cifar100_zip(plain) and data.is_cifar100_zip(path)
    with pytest.raises(ValueError, match="not the CIFAR-100 PNG zip"):
        data.load_cifar100_png(plain, cache=False)


def test_damaged_cache_is_rebuilt(small):
    tmp, members, rows, meta = small
    path = _write(tmp / "c100.zip", members, rows, meta)
    want = data.load_cifar100_png(path, "train").images
    (cached,) = (tmp / "cache").glob("c100-*.npz")
    cached.write_bytes(cached.read_bytes()[:100])
    np.testing.assert_array_equal(data.load_cifar100_png(path, "train").images, want)


@pytest.mark.skipif(not SHARED_ZIP.is_file(), reason="../shared/data/cifar100-png.zip absent")
def test_the_real_zip_is_cifar100():
    test = data.load_cifar100_png(SHARED_ZIP, "test")
    assert test.images.shape == (10_000, 3, 32, 32) and len(test.classes) == 100
    assert np.bincount(test.labels).tolist() == [100] * 100
    assert test.classes[:3] == ("apple", "aquarium_fish", "baby")
    coarse = data.load_cifar100_png(SHARED_ZIP, "train", labels="coarse")
    assert coarse.images.shape == (50_000, 3, 32, 32)
    assert np.bincount(coarse.labels).tolist() == [2500] * 20
    # the published CIFAR-100 training-set statistics (lossless PNG: the official pixels)
    mean, std = coarse.channel_stats()
    np.testing.assert_allclose(mean, [0.5071, 0.4865, 0.4409], atol=1e-4)
    np.testing.assert_allclose(std, [0.2673, 0.2564, 0.2762], atol=1e-4)


def test_official_cifar100_pickle_gives_fine_or_coarse_labels(tmp_path):
    import pickle
    import tarfile

    rng = np.random.default_rng(1)
    meta = {b"fine_label_names": [n.encode() for n in FINE],
            b"coarse_label_names": [n.encode() for n in COARSE]}
    files = {"cifar-100-python/meta": pickle.dumps(meta, protocol=2)}
    for split, n in (("train", 4), ("test", 2)):
        fine = rng.integers(0, 3, n).tolist()
        files[f"cifar-100-python/{split}"] = pickle.dumps({
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": fine, b"coarse_labels": [FINE_TO_COARSE[f] for f in fine],
        }, protocol=2)
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    fine = data.load_cifar(path, "train")
    coarse = data.load_cifar(path, "train", labels="coarse")
    assert fine.classes == tuple(FINE) and coarse.classes == tuple(COARSE)
    assert coarse.labels.tolist() == [FINE_TO_COARSE[f] for f in fine.labels]
    with pytest.raises(ValueError, match="labels must be 'fine' or 'coarse'"):
        data.load_cifar(path, labels="all")
