"""Image data for the training runs: CIFAR archives, the JPEG zip, image folders, augmentation.

Every loader returns an :class:`ImageDataset` of uint8 images ``(N, C, H, W)`` held in memory.
There is no torchvision here, so decoding (Pillow), augmentation and normalisation are written
out in numpy and torch. Nothing is ever downloaded: the files come from a path the user gives.

- :func:`load_cifar` reads the official python-pickle archives ``cifar-10-python.tar.gz`` and
  ``cifar-100-python.tar.gz``, packed or extracted.
- :func:`load_jpeg_zip` reads a zip of ``{split}/{class}/*.jpg`` folders (the layout of
  ``../shared/data/cifar10-jpeg.zip``), decodes it once and caches the arrays under
  ``$WINOLAB_CACHE`` (default ``~/.cache/winolab``).
- :func:`load_cifar100_png` reads the CIFAR-100 PNG zip of ``../shared/data/cifar100-png.zip``
  (fine or coarse labels), checks it against its ``labels.csv`` and ``meta.json``, and caches
  the arrays the same way.
- :func:`load_image_folder` reads an ImageNet-style ``root/[split/]class/image`` tree.

>>> ds = ImageDataset(np.zeros((4, 3, 2, 2), np.uint8), np.array([0, 1, 0, 1]), ("a", "b"), "-")
>>> np.bincount(ds.subset(2, seed=0).labels).tolist()  # one image of each class
[1, 1]
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = [
    "JPEG_DESCRIPTION",
    "BatchLoader",
    "ImageDataset",
    "cache_dir",
    "is_cifar100_zip",
    "load_cifar",
    "load_cifar100_png",
    "load_dataset",
    "load_image_folder",
    "load_jpeg_zip",
]

JPEG_DESCRIPTION = "JPEG re-encoding of CIFAR-10, not the official files"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


@dataclass(frozen=True)
class ImageDataset:
    """Images and labels in memory.

    Attributes
    ----------
    images : numpy.ndarray
        uint8, shape ``(N, C, H, W)``.
    labels : numpy.ndarray
        int64, shape ``(N,)``, indices into ``classes``.
    classes : tuple of str
        Class names in label order.
    description : str
        Where the images came from (file, format, split), for result files.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    description: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> ImageDataset:
        """A fixed, seeded, class-balanced subset of ``n`` images (all of them when ``n`` is None).

        Each class gives ``n // n_classes`` images (the first classes one more for the
        remainder), drawn with ``numpy.random.default_rng(seed)``, in their original order.
        """
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"subset size must be a positive number of images, got {n}")
        rng = np.random.default_rng(seed)
        present = np.unique(self.labels)
        quota = np.full(len(present), n // len(present))
        quota[: n % len(present)] += 1
        chosen = []
        for label, q in zip(present, quota, strict=True):
            members = np.flatnonzero(self.labels == label)
            chosen.append(rng.permutation(members)[:q])
        index = np.sort(np.concatenate(chosen))[:n]
        if len(index) < n:  # some class had fewer than its quota: top up from the rest
            rest = np.setdiff1d(np.arange(len(self)), index)
            index = np.sort(np.concatenate([index, rng.permutation(rest)[: n - len(index)]]))
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            description=f"{self.description}, class-balanced subset of {n} (seed {seed})",
        )

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation of the pixels, scaled to [0, 1]."""
        x = self.images.astype(np.float64) / 255.0
        return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


def cache_dir() -> Path:
    """Where decoded arrays are cached: ``$WINOLAB_CACHE`` or ``~/.cache/winolab``."""
    return Path(os.environ.get("WINOLAB_CACHE") or Path.home() / ".cache" / "winolab")


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(f"{what} not found: {path}")


# ----------------------------------------------------------------------------- CIFAR pickles
def _unpickle(raw: bytes, where: str) -> dict:
    # The official archives are pickles; like every CIFAR loader this trusts the given file.
    try:
        obj = pickle.loads(raw, encoding="bytes")
    except Exception as exc:
        raise ValueError(f"corrupt CIFAR batch {where}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"corrupt CIFAR batch {where}: expected a dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


_CIFAR_FILES = {"batches.meta", "meta", "test_batch", "train", "test"} | {
    f"data_batch_{i}" for i in range(1, 6)
}


def _cifar_members(path: Path) -> dict[str, bytes]:
    """The CIFAR files of an archive (``.tar.gz`` or extracted directory), by base name."""
    if path.is_dir():
        subdirs = [path, *(p for p in path.iterdir() if p.is_dir())]
        files = [d / name for d in subdirs for name in _CIFAR_FILES]
        return {f.name: f.read_bytes() for f in files if f.is_file()}
    try:
        with tarfile.open(path, "r:*") as tar:
            return {
                Path(m.name).name: tar.extractfile(m).read()
                for m in tar.getmembers()
                if m.isfile() and Path(m.name).name in _CIFAR_FILES
            }
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"corrupt CIFAR archive {path}: {exc}") from exc


def load_cifar(
    path: str | os.PathLike, split: str = "train", labels: str = "fine"
) -> ImageDataset:
    """CIFAR-10 or CIFAR-100 from the official python-pickle archive.

    Parameters
    ----------
    path : path
        ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``, or the directory it extracts
        to (``cifar-10-batches-py``, ``cifar-100-python``) or its parent.
    split : {"train", "test"}
    labels : {"fine", "coarse"}
        CIFAR-100 only: the 100 fine labels (default) or the 20 superclasses.

    Returns
    -------
    ImageDataset
        32x32 RGB images.
    """
    path = Path(path)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    if not path.exists():
        raise _missing(path, "CIFAR archive")
    files = _cifar_members(path)
    if "batches.meta" in files:  # CIFAR-10
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta_file, label_key, names_key, kind = "batches.meta", "labels", "label_names", "10"
        if labels != "fine":
            raise ValueError(f"{path} is CIFAR-10, which has no {labels} labels")
    elif "meta" in files:  # CIFAR-100
        names = [split]
        meta_file, kind = "meta", "100"
        label_key, names_key = f"{labels}_labels", f"{labels}_label_names"
    else:
        raise ValueError(
            f"{path} is not a CIFAR python archive: found neither batches.meta (CIFAR-10) "
            f"nor meta (CIFAR-100) among {sorted(files)[:8]}"
        )
    meta = _unpickle(files[meta_file], f"{path}:{meta_file}")
    classes = tuple(c.decode() if isinstance(c, bytes) else c for c in meta[names_key])
    images, labels = [], []
    for name in names:
        if name not in files:
            raise _missing(path / name, f"CIFAR-{kind} batch")
        batch = _unpickle(files[name], f"{path}:{name}")
        try:
            # each row is 3072 bytes: the red plane, the green plane, the blue plane (32x32 each)
            images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[label_key], np.int64))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"corrupt CIFAR batch {path}:{name}: {exc!r}") from exc
        if len(images[-1]) != len(labels[-1]):
            raise ValueError(f"corrupt CIFAR batch {path}:{name}: images and labels differ")
    return ImageDataset(
        np.concatenate(images),
        np.concatenate(labels),
        classes,
        f"official CIFAR-{kind} python archive {path.name}, {split} split",
    )


# ----------------------------------------------------------------------------- JPEG zip
def _decode(raw: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            # (H, W, 3) -> (3, H, W)
            return np.asarray(img.convert("RGB"), np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"corrupt image {where}: {exc}") from exc


def _save_atomic(target: Path, **arrays) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cache_file(path: Path, tag: str) -> Path:
    """The cache file of a data file: its name, size and mtime are in the key."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir() / f"{path.stem}-{tag}{key.hexdigest()[:16]}.npz"


def _read_cached(target: Path) -> dict[str, np.ndarray] | None:
    try:
        with open(target, "rb") as fh, np.load(fh) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None  # missing or damaged: rebuilt from the source file


def _decoded(path: Path, decode, cache: bool, split: str, tag: str = "") -> dict:
    """``decode(path)``, read from or written to the cache, checked to hold ``split``."""
    target = _cache_file(path, tag)
    arrays = _read_cached(target) if cache else None
    if arrays is None:
        arrays = decode(path)
        if cache:
            _save_atomic(target, **arrays)
    if f"{split}_images" not in arrays:
        found = sorted(k[: -len("_images")] for k in arrays if k.endswith("_images"))
        raise ValueError(f"{path} has no split {split!r}; it has {found}")
    return arrays


def _decode_zip(path: Path) -> dict[str, np.ndarray]:
    """Every ``.../{split}/{class}/{image}`` member of the zip, decoded."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = sorted(
                n
                for n in zf.namelist()
                if n.lower().endswith(_IMAGE_SUFFIXES) and n.count("/") >= 2
            )
            by_split: dict[str, list[tuple[str, str, bytes]]] = {}
            for name in members:
                split, cls = name.split("/")[-3:-1]
                by_split.setdefault(split, []).append((cls, name, zf.read(name)))
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"corrupt zip file {path}: {exc}") from exc
    if not by_split:
        raise ValueError(f"{path} holds no images in {{split}}/{{class}}/ folders")
    classes = sorted({cls for items in by_split.values() for cls, _, _ in items})
    arrays = {"classes": np.array(classes)}
    for split, items in by_split.items():
        images = [_decode(raw, f"{path}:{name}") for _, name, raw in items]
        if len({im.shape for im in images}) > 1:
            raise ValueError(f"{path}: the {split} images differ in size")
        arrays[f"{split}_images"] = np.stack(images)
        arrays[f"{split}_labels"] = np.array([classes.index(c) for c, _, _ in items], np.int64)
    return arrays


def load_jpeg_zip(
    path: str | os.PathLike, split: str = "train", cache: bool = True
) -> ImageDataset:
    """Images from a zip of ``{split}/{class}/*.jpg`` folders, decoded once and cached.

    Labels follow the sorted class-folder names (for CIFAR-10 this is the official order).
    The cache file name holds the zip's name, size and modification time, so a changed zip is
    decoded again; it is written atomically (temporary file, then ``os.replace``).

    Parameters
    ----------
    path : path
        The zip, e.g. ``../shared/data/cifar10-jpeg.zip``.
    split : str
        A split folder in the zip (``"train"``, ``"test"``).
    cache : bool
        Read and write the decoded arrays under :func:`cache_dir`.
    """
    path = Path(path)
    if not path.is_file():
        raise _missing(path, "image zip")
    arrays = _decoded(path, _decode_zip, cache, split)
    classes = tuple(str(c) for c in arrays["classes"])
    description = f"{path.name}, {split} split"
    if path.name.startswith("cifar10-jpeg"):
        description = f"{JPEG_DESCRIPTION} ({description})"
    return ImageDataset(arrays[f"{split}_images"], arrays[f"{split}_labels"], classes, description)


# ----------------------------------------------------------------------------- CIFAR-100 PNG zip
def _decode_cifar100_zip(path: Path) -> dict[str, np.ndarray]:
    """Every image listed in ``labels.csv``, checked against the zip and ``meta.json``."""
    import csv
    import json

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            csv_name = next((n for n in sorted(names) if n.endswith("/labels.csv")), None)
            if csv_name is None or csv_name.replace("labels.csv", "meta.json") not in names:
                raise ValueError(f"{path} is not the CIFAR-100 PNG zip: it needs "
                                 f"<root>/labels.csv and <root>/meta.json")
            root = csv_name[: -len("labels.csv")]
            try:
                meta = json.loads(zf.read(root + "meta.json"))
                fine_names = [str(c) for c in meta["fine_label_names"]]
                coarse_names = [str(c) for c in meta["coarse_label_names"]]
                fine_to_coarse = [int(c) for c in meta["fine_to_coarse"]]
                counts = {k: int(v) for k, v in meta["counts"].items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{root}meta.json is not valid: {exc!r}") from exc
            rows = list(csv.DictReader(io.StringIO(zf.read(csv_name).decode("utf-8"))))
            listed = set()
            by_split: dict[str, list] = {}
            for i, row in enumerate(rows, start=2):  # line 1 is the header
                where = f"{path}:{csv_name} line {i}"
                try:
                    split, member = row["split"], root + row["path"]
                    fine, coarse = int(row["fine_label"]), int(row["coarse_label"])
                    digest = row["sha256"]
                    folder = row["path"].split("/")[-2]
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                    raise ValueError(f"{where} is not a valid label row: {exc!r}") from exc
                if member not in names:
                    raise ValueError(f"{where} names {row['path']}, which is not in the zip")
                if not (0 <= fine < len(fine_names)) or fine_names[fine] != folder:
                    raise ValueError(f"{where}: fine label {fine} does not name the folder "
                                     f"{folder!r} of its image")
                if coarse != fine_to_coarse[fine]:
                    raise ValueError(f"{where}: coarse label {coarse} is not the superclass "
                                     f"{fine_to_coarse[fine]} of {folder!r} in meta.json")
                raw = zf.read(member)
                if hashlib.sha256(raw).hexdigest() != digest:
                    raise ValueError(f"{path}:{member} does not match its sha256 in labels.csv")
                listed.add(member)
                by_split.setdefault(split, []).append(
                    (_decode(raw, f"{path}:{member}"), fine, coarse))
            unlisted = sorted(n for n in names - listed if n.lower().endswith(_IMAGE_SUFFIXES))
            if unlisted:
                raise ValueError(f"{path}: {len(unlisted)} images have no row in labels.csv, "
                                 f"e.g. {unlisted[0]}")
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"corrupt zip file {path}: {exc}") from exc
    arrays = {"fine_names": np.array(fine_names), "coarse_names": np.array(coarse_names)}
    for split, items in by_split.items():
        per_class = np.bincount([f for _, f, _ in items], minlength=len(fine_names))
        want, want_each = counts.get(split), counts.get(f"{split}_per_class")
        if want is not None and len(items) != want:
            raise ValueError(f"{path}: {len(items)} {split} images, meta.json says {want}")
        if want_each is not None and not (per_class == want_each).all():
            bad = int(np.flatnonzero(per_class != want_each)[0])
            raise ValueError(f"{path}: class {fine_names[bad]!r} has {per_class[bad]} {split} "
                             f"images, meta.json says {want_each} per class")
        if len({im.shape for im, _, _ in items}) > 1:
            raise ValueError(f"{path}: the {split} images differ in size")
        arrays[f"{split}_images"] = np.stack([im for im, _, _ in items])
        arrays[f"{split}_fine"] = np.array([f for _, f, _ in items], np.int64)
        arrays[f"{split}_coarse"] = np.array([c for _, _, c in items], np.int64)
    return arrays


def is_cifar100_zip(path: str | os.PathLike) -> bool:
    """True when ``path`` is a zip with ``<root>/labels.csv`` and ``<root>/meta.json``."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/labels.csv") and n[:-10] + "meta.json" in names for n in names)


def load_cifar100_png(
    path: str | os.PathLike,
    split: str = "train",
    labels: str = "fine",
    cache: bool = True,
) -> ImageDataset:
    """CIFAR-100 from the PNG zip of ``../shared/data``, decoded once and cached.

    The zip holds ``<root>/{train,test}/{fine class}/*.png``, ``<root>/labels.csv`` (split,
    path, fine and coarse label, sha256 of each file) and ``<root>/meta.json`` (label names,
    fine-to-coarse table, counts). Every row of ``labels.csv`` must name an image in the zip
    with that digest, every image must have a row, the labels must agree with the folders and
    with ``meta.json``, and the counts must be the ones ``meta.json`` states; otherwise a
    ValueError names the file and the line. Images come in ``labels.csv`` order (grouped by
    class), so shuffle or subset with :meth:`ImageDataset.subset`.

    Parameters
    ----------
    path : path
        ``cifar100-png.zip``.
    split : {"train", "test"}
    labels : {"fine", "coarse"}
        The 100 fine classes (default) or the 20 superclasses.
    cache : bool
        Read and write the decoded arrays under :func:`cache_dir`.
    """
    path = Path(path)
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    if not path.is_file():
        raise _missing(path, "CIFAR-100 PNG zip")
    arrays = _decoded(path, _decode_cifar100_zip, cache, split, tag="v1-")
    classes = tuple(str(c) for c in arrays[f"{labels}_names"])
    return ImageDataset(
        arrays[f"{split}_images"], arrays[f"{split}_{labels}"], classes,
        f"CIFAR-100 as lossless PNG ({path.name}, {split} split, {labels} labels)",
    )


# ----------------------------------------------------------------------------- image folders
def load_image_folder(
    path: str | os.PathLike, split: str | None = None, size: int | None = None
) -> ImageDataset:
    """An ImageNet-style tree ``root/[split/]class/image``, loaded into memory.

    Parameters
    ----------
    path : path
        The root folder.
    split : str, optional
        A sub-folder of the root (``"train"``, ``"val"``); None reads class folders in the root.
    size : int, optional
        Resize the shorter side to ``size`` and crop the centre ``size x size``; None requires
        all images to have one size already.
    """
    from PIL import Image

    root = Path(path) if split is None else Path(path) / split
    if not root.is_dir():
        raise _missing(root, "image folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise ValueError(f"{root} has no class sub-folders")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for file in sorted((root / cls).iterdir()):
            if not file.name.lower().endswith(_IMAGE_SUFFIXES):
                continue
            if size is None:
                images.append(_decode(file.read_bytes(), str(file)))
            else:
                with Image.open(file) as img:
                    w, h = img.size
                    s = size / min(w, h)
                    img = img.convert("RGB").resize(
                        (max(size, round(w * s)), max(size, round(h * s)))
                    )
                    left, top = (img.size[0] - size) // 2, (img.size[1] - size) // 2
                    img = img.crop((left, top, left + size, top + size))
                    images.append(np.asarray(img, np.uint8).transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise ValueError(f"{root} holds no images ({', '.join(_IMAGE_SUFFIXES)})")
    if len({im.shape for im in images}) > 1:
        raise ValueError(f"images under {root} differ in size: pass size=... to resize them")
    return ImageDataset(
        np.stack(images), np.array(labels, np.int64), tuple(classes), f"image folder {root}"
    )


def load_dataset(path: str | os.PathLike, split: str = "train") -> ImageDataset:
    """Pick the loader from the path: CIFAR archive or directory, JPEG zip, or image folder.

    An image folder's ``"test"`` split is its ``test/`` or else its ``val/`` sub-folder; its
    ``"train"`` split is ``train/``, or the root when the class folders sit there directly.
    """
    path = Path(path)
    if not path.exists():
        raise _missing(path, "dataset")
    if path.suffix == ".zip":
        if is_cifar100_zip(path):
            return load_cifar100_png(path, split)
        return load_jpeg_zip(path, split)
    cifar_names = ("batches.meta", "meta", "cifar-10-batches-py", "cifar-100-python")
    if path.is_file() or any((path / n).exists() for n in cifar_names):
        return load_cifar(path, split)
    for name in (split, "val") if split == "test" else (split,):
        if (path / name).is_dir():
            return load_image_folder(path, name)
    if split != "train" or (path / "val").is_dir():
        raise _missing(path / split, f"{split!r} split folder of the image-folder dataset")
    return load_image_folder(path)


# ----------------------------------------------------------------------------- batches
class BatchLoader:
    """Seeded mini-batches as normalised float tensors, optionally augmented.

    The order and the augmentation of epoch ``e`` depend only on ``(seed, e)``, so a run that
    resumes in the middle of an epoch (``start=...``) sees exactly the batches it would have seen.
    Augmentation is the standard CIFAR one: pad by 4 with zeros, random crop back to size,
    horizontal flip with probability 1/2; then ``(x / 255 - mean) / std`` per channel.
    """

    def __init__(self, data: ImageDataset, batch_size: int, mean, std, *, shuffle=False,
                 augment=False, seed=0, device="cpu"):  # fmt: skip
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.batch_size, self.shuffle, self.augment, self.seed = batch_size, shuffle, augment, seed
        self.n = len(data)
        self.images = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)
        self.labels = torch.from_numpy(data.labels).to(device)
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def epoch(self, epoch: int = 0, start: int = 0):
        """Yield ``(x, y)`` for batches ``start, start + 1, ...`` of epoch ``epoch``."""
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        _, _, H, W = self.images.shape
        offsets = torch.randint(0, 9, (self.n, 2), generator=g)  # crop corner in the padded image
        flips = torch.rand(self.n, generator=g) < 0.5
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[idx.to(self.images.device)]
            if self.augment:
                x = self._augment(x, offsets[idx].to(x.device), flips[idx].to(x.device), H, W)
            x = (x.float() / 255.0 - self.mean) / self.std
            yield x, self.labels[idx.to(self.labels.device)]

    @staticmethod
    def _augment(x, offsets, flips, H, W):
        import torch

        # (B, C, H + 8, W + 8), zero padding as in torchvision's RandomCrop(padding=4)
        padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
        rows = offsets[:, 0:1] + torch.arange(H, device=x.device)  # (B, H)
        cols = offsets[:, 1:2] + torch.arange(W, device=x.device)  # (B, W)
        cols = torch.where(flips[:, None], cols.flip(1), cols)
        b = torch.arange(len(x), device=x.device)[:, None, None, None]
        c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]
