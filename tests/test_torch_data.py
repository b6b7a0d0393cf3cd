"""Loaders against small archives that the tests write in the official formats themselves."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from winolab.torch import data  # noqa: E402

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer"]


def _pickle(obj) -> bytes:
    # the official batches are python-2 pickles whose keys are bytes
    return pickle.dumps(obj, protocol=2)


def _batch(rng, n, label_key, k):
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, k, n).tolist()
    return images, labels, {b"data": images.reshape(n, 3072), label_key: labels}


def _write_tree(root, files: dict[str, bytes]):
    for name, raw in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(raw)


def _tar(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


@pytest.fixture
def cifar10(tmp_path):
    rng = np.random.default_rng(0)
    files, expected = {}, {"train": ([], []), "test": ([], [])}
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    files["cifar-10-batches-py/batches.meta"] = _pickle(meta)
    for name, split in [(f"data_batch_{i}", "train") for i in range(1, 6)] + [
        ("test_batch", "test")
    ]:
        images, labels, obj = _batch(rng, 3, b"labels", len(CIFAR10_CLASSES))
        files[f"cifar-10-batches-py/{name}"] = _pickle(obj)
        expected[split][0].append(images)
        expected[split][1].extend(labels)
    _tar(tmp_path / "cifar-10-python.tar.gz", files)
    _write_tree(tmp_path / "extracted", files)
    return tmp_path, files, {k: (np.concatenate(v[0]), v[1]) for k, v in expected.items()}


@pytest.mark.parametrize(
    "where", ["cifar-10-python.tar.gz", "extracted", "extracted/cifar-10-batches-py"]
)
@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_archive_packed_and_extracted(cifar10, where, split):
    root, _, expected = cifar10
    ds = data.load_cifar(root / where, split)
    np.testing.assert_array_equal(ds.images, expected[split][0])
    assert ds.labels.tolist() == expected[split][1]
    assert ds.classes == tuple(CIFAR10_CLASSES)
    assert "official CIFAR-10" in ds.description
    assert ds.images.dtype == np.uint8 and ds.images.shape[1:] == (3, 32, 32)
    np.testing.assert_array_equal(data.load_dataset(root / where, split).images, ds.images)


def test_cifar100_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    fine = [f"class{i:02d}".encode() for i in range(100)]
    files = {
        "cifar-100-python/meta": _pickle({b"fine_label_names": fine, b"coarse_label_names": []})
    }
    expected = {}
    for split, n in [("train", 7), ("test", 4)]:
        images, labels, obj = _batch(rng, n, b"fine_labels", 100)
        obj[b"coarse_labels"] = [0] * n
        files[f"cifar-100-python/{split}"] = _pickle(obj)
        expected[split] = images, labels
    _tar(tmp_path / "cifar-100-python.tar.gz", files)
    for split in ("train", "test"):
        ds = data.load_dataset(tmp_path / "cifar-100-python.tar.gz", split)
        np.testing.assert_array_equal(ds.images, expected[split][0])
        assert ds.labels.tolist() == expected[split][1]
        assert len(ds.classes) == 100 and ds.classes[7] == "class07"


def test_cifar_missing_and_corrupt_files_name_the_path(cifar10, tmp_path):
    root, files, _ = cifar10
    with pytest.raises(FileNotFoundError, match="nowhere.tar.gz"):
        data.load_cifar(root / "nowhere.tar.gz")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_dataset(root / "nowhere")
    raw = (root / "cifar-10-python.tar.gz").read_bytes()
    (tmp_path / "truncated.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupt CIFAR archive .*truncated.tar.gz"):
        data.load_cifar(tmp_path / "truncated.tar.gz")
    (root / "extracted/cifar-10-batches-py/data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        data.load_cifar(root / "extracted")
    data.load_cifar(root / "extracted", "test")  # the test split does not need it
    (root / "extracted/cifar-10-batches-py/test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="corrupt CIFAR batch .*test_batch"):
        data.load_cifar(root / "extracted", "test")
    with pytest.raises(ValueError, match="corrupt CIFAR archive .*test_batch"):
        data.load_cifar(root / "extracted/cifar-10-batches-py/test_batch")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a CIFAR python archive"):
        data.load_cifar(tmp_path / "empty")
    with pytest.raises(ValueError, match="split must be"):
        data.load_cifar(root / "extracted", "val")


def _png(image_chw: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image_chw.transpose(1, 2, 0)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def image_zip(tmp_path, monkeypatch):
    """A tiny ``{split}/{class}/NNNN.png`` zip (lossless, so pixels compare exactly)."""
    monkeypatch.setenv("WINOLAB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(2)
    expected = {}
    path = tmp_path / "tiny-images.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for split, per_class in [("train", 3), ("test", 2)]:
            images, labels = [], []
            for label, cls in enumerate(["cat", "dog"]):  # written in label order
                for i in range(per_class):
                    img = rng.integers(0, 256, (3, 6, 5), dtype=np.uint8)
                    zf.writestr(f"tiny/{split}/{cls}/{i:04d}.png", _png(img))
                    images.append(img)
                    labels.append(label)
            expected[split] = np.stack(images), labels
    return path, expected


def test_zip_loader_decodes_exactly_and_caches(image_zip, tmp_path):
    path, expected = image_zip
    for split in ("train", "test"):
        ds = data.load_dataset(path, split)
        np.testing.assert_array_equal(ds.images, expected[split][0])
        assert ds.labels.tolist() == expected[split][1]
        assert ds.classes == ("cat", "dog")
    cached = list((tmp_path / "cache").glob("tiny-images-*.npz"))
    assert len(cached) == 1 and not list((tmp_path / "cache").glob("*.tmp"))
    # Damage a member in place (same size, same mtime): the cached arrays still serve it,
    # and reading the zip itself now fails, naming the member.
    stat = path.stat()
    raw = bytearray(path.read_bytes())
    start = raw.find(b"\x89PNG")
    raw[start : start + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    np.testing.assert_array_equal(data.load_jpeg_zip(path).images, expected["train"][0])
    with pytest.raises(ValueError, match=r"corrupt zip file .*tiny-images.zip.*cat/0000.png"):
        data.load_jpeg_zip(path, cache=False)
    # a damaged cache file is rebuilt from the (now damaged) zip
    cached[0].write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt zip file"):
        data.load_jpeg_zip(path)


def test_zip_loader_jpeg_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("WINOLAB_CACHE", str(tmp_path / "cache"))
    img = np.full((8, 8, 3), 200, np.uint8)
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="JPEG", quality=95)
    path = tmp_path / "cifar10-jpeg-tiny.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cifar10-jpeg/train/bird/0001.jpg", out.getvalue())
        zf.writestr("cifar10-jpeg/train/ant/0001.jpg", out.getvalue())
    ds = data.load_jpeg_zip(path)
    assert ds.classes == ("ant", "bird") and ds.labels.tolist() == [0, 1]
    assert np.abs(ds.images.astype(int) - 200).max() <= 2  # JPEG is lossy, a flat image nearly not
    assert data.JPEG_DESCRIPTION in ds.description
    with pytest.raises(ValueError, match="has no split 'test'"):
        data.load_jpeg_zip(path, "test")
    with zipfile.ZipFile(tmp_path / "bad-member.zip", "w") as zf:
        zf.writestr("cifar10-jpeg/train/bird/0001.jpg", out.getvalue())
        zf.writestr("cifar10-jpeg/train/bird/0002.jpg", b"not a jpeg")
    with pytest.raises(
        ValueError, match="corrupt image .*bad-member.zip:cifar10-jpeg/train/bird/0002"
    ):
        data.load_jpeg_zip(tmp_path / "bad-member.zip")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(ValueError, match="corrupt zip file .*bad.zip"):
        data.load_jpeg_zip(tmp_path / "bad.zip")
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        data.load_jpeg_zip(tmp_path / "missing.zip")


def test_image_folder(tmp_path):
    rng = np.random.default_rng(3)
    images = {}
    for cls in ("n01", "n02"):
        for i in range(2):
            img = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
            (tmp_path / "train" / cls).mkdir(parents=True, exist_ok=True)
            (tmp_path / "train" / cls / f"{i}.png").write_bytes(_png(img))
            images[cls, i] = img
    (tmp_path / "train" / "n02" / "notes.txt").write_text("not an image")
    ds = data.load_dataset(tmp_path, "train")
    assert ds.classes == ("n01", "n02") and ds.labels.tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(ds.images[3], images["n02", 1])
    big = rng.integers(0, 256, (10, 6, 3), dtype=np.uint8)  # H=10, W=6
    Image.fromarray(big).save(tmp_path / "train" / "n01" / "big.png")
    with pytest.raises(ValueError, match="differ in size"):
        data.load_image_folder(tmp_path, "train")
    resized = data.load_image_folder(tmp_path, "train", size=4)
    assert resized.images.shape == (5, 3, 4, 4)
    with pytest.raises(FileNotFoundError, match="val"):
        data.load_image_folder(tmp_path, "val")
    with pytest.raises(FileNotFoundError, match="'test' split folder"):
        data.load_dataset(tmp_path, "test")
    (tmp_path / "train" / "n01" / "big.png").unlink()
    (tmp_path / "train").rename(tmp_path / "val")  # ImageNet's held-out split is val/
    np.testing.assert_array_equal(data.load_dataset(tmp_path, "test").images, ds.images)
    flat = data.load_dataset(tmp_path / "val", "train")  # class folders in the root
    assert flat.classes == ("n01", "n02") and flat.labels.tolist() == [0, 0, 1, 1]


def _toy(n=40, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 5, 6), dtype=np.uint8)
    return data.ImageDataset(images, np.arange(n) % classes, tuple("abcd"[:classes]), "toy")


def test_subset_is_fixed_and_class_balanced():
    ds = _toy()
    sub = ds.subset(10, seed=5)
    assert len(sub) == 10 and np.bincount(sub.labels).tolist() == [3, 3, 2, 2]
    np.testing.assert_array_equal(sub.images, ds.subset(10, seed=5).images)
    assert not np.array_equal(sub.images, ds.subset(10, seed=6).images)
    assert ds.subset(None) is ds and ds.subset(100) is ds
    with pytest.raises(ValueError, match="positive"):
        ds.subset(0)


def test_batches_normalise_in_order_and_shuffle_as_a_permutation():
    ds = _toy()
    mean, std = ds.channel_stats()
    plain = data.BatchLoader(ds, 16, mean, std)
    x = torch.cat([b for b, _ in plain.epoch(0)]).numpy()
    expected = (ds.images / 255.0 - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)  # float32 rounding of O(1) values
    assert len(plain) == 3
    shuffled = data.BatchLoader(ds, 16, mean, std, shuffle=True, seed=1)
    y = torch.cat([b for _, b in shuffled.epoch(0)])
    assert sorted(y.tolist()) == sorted(ds.labels.tolist()) and y.tolist() != ds.labels.tolist()


def test_augmentation_is_a_padded_crop_or_its_mirror_and_resumable():
    ds = _toy(n=12)
    loader = data.BatchLoader(ds, 5, [0, 0, 0], [1 / 255] * 3, shuffle=True, augment=True, seed=3)
    batches = list(loader.epoch(7))
    images, labels = torch.cat([b for b, _ in batches]).numpy(), torch.cat([b for _, b in batches])
    padded = np.pad(ds.images, ((0, 0), (0, 0), (4, 4), (4, 4))).astype(np.float32)
    H, W = ds.images.shape[2:]
    flips = 0
    for img, label in zip(images, labels.tolist(), strict=True):
        candidates = [
            (flip, src)
            for src in np.flatnonzero(ds.labels == label)
            for i in range(9)
            for j in range(9)
            for flip in (False, True)
            if np.allclose(
                img, padded[src, :, i : i + H, j : j + W][..., :: -1 if flip else 1], atol=0.01
            )
        ]
        assert candidates, "augmented image is no crop of a padded training image"
        flips += candidates[0][0]
    assert 0 < flips < len(images)
    # the same epoch again, from batch 1 on, gives the same batches
    again = list(loader.epoch(7, start=1))
    for (a, ya), (b, yb) in zip(batches[1:], again, strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    other = torch.cat([b for b, _ in loader.epoch(8)])
    assert not torch.equal(other, torch.from_numpy(images))


def test_zip_loader_damaged_deflated_member_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("WINOLAB_CACHE", str(tmp_path / "cache"))
    out = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(out, format="PNG")
    path = tmp_path / "deflated.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cifar10/train/cat/0001.png", out.getvalue() * 4)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"0001.png") + len(b"0001.png") + 20  # inside the compressed data
    raw[start:start + 40] = bytes(40)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt zip file .*deflated.zip"):
        data.load_jpeg_zip(path)
