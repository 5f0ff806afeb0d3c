"""Fetch the MLQA archive (or take a local copy), verify it, and record where it came from."""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from .data import MlqaArchive
from .data_settings import is_url
from .errors import ConfigError
from .formats import write_source
from .io import atomic_path

OFFICIAL_URL = "https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip"
LOCAL_HINT = "set data.source to a local copy, e.g. `dvc exp run -S data.source=../shared/data/MLQA_V1_dev.zip`"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_tree(root: str | os.PathLike) -> str:
    """Order-independent digest of a directory: relative paths and file digests."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def download(url: str, dest: Path, expected_size: int | None, expected_sha256: str | None, timeout: float = 60) -> str:
    """Stream ``url`` to a temp file with a progress bar; move it to ``dest`` only once verified.

    Returns the sha256 computed while streaming (the file is not read twice)."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"data.source: cannot download {url} ({reason}); no network? {LOCAL_HINT}") from None
    total = int(response.headers.get("Content-Length") or 0) or expected_size
    digest = hashlib.sha256()
    size = 0
    with atomic_path(dest) as tmp, open(tmp, "wb") as fh, response:
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {Path(url).name}") as bar:
            try:
                for block in iter(lambda: response.read(1 << 20), b""):
                    fh.write(block)
                    digest.update(block)
                    size += len(block)
                    bar.update(len(block))
            except (urllib.error.URLError, OSError) as exc:
                raise ConfigError(f"data.source: download of {url} interrupted ({exc}); {LOCAL_HINT}") from None
        fh.flush()
        if expected_size and size != expected_size:
            raise ConfigError(f"data.source: {url} gave {size} bytes, expected {expected_size} (data.expected_size); nothing was kept")
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise ConfigError(
                f"data.source: {url} has sha256 {digest.hexdigest()}, expected {expected_sha256} (data.expected_sha256); nothing was kept"
            )
    return digest.hexdigest()


def fetch_archive(source: str, out_dir: str | os.PathLike, expected_size: int | None = None,
                  expected_sha256: str | None = None) -> dict:
    """Put the archive under ``out_dir`` (``MLQA_V1.zip`` or ``MLQA_V1/``) and return its provenance.

    A URL is downloaded and checked against the expected size and sha256; a local zip or directory
    in the official layout is validated structurally and copied, its sha256 recorded.
    """
    out_dir = Path(out_dir)
    if not source:
        raise ConfigError("data.source: empty; expected the official URL or a local .zip/directory")
    if is_url(source):
        dest = out_dir / "MLQA_V1.zip"
        kind, digest = "url", download(source, dest, expected_size, expected_sha256)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise ConfigError(f"data.source: {source} does not exist (expected a .zip or directory in the MLQA_V1 layout)")
        if path.is_dir():
            MlqaArchive(path).validate()
            dest = out_dir / "MLQA_V1"
            if dest.exists():
                shutil.rmtree(dest)
            root = path / "MLQA_V1" if (path / "MLQA_V1").is_dir() else path
            shutil.copytree(root, dest, symlinks=True)  # links are copied as links, never followed out of it
            kind, digest = "directory", sha256_tree(path)
        else:
            if not zipfile.is_zipfile(path):
                raise ConfigError(f"data.source: {source} is not a valid zip archive (corrupt or wrong file)")
            MlqaArchive(path).validate()
            dest = out_dir / "MLQA_V1.zip"
            with atomic_path(dest) as tmp:
                shutil.copyfile(path, tmp)
            kind, digest = "zip", sha256_file(path)
    archive = MlqaArchive(dest)
    archive.validate()
    if kind != "directory":
        with zipfile.ZipFile(dest) as zf:
            try:
                bad = zf.testzip()  # every member decompressed and checked against its CRC, now rather than in prepare
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                bad = f"? ({exc})"
        if bad is not None:
            dest.unlink()
            raise ConfigError(f"data.source: {source}: member {bad} does not decompress (corrupt archive)")
    provenance = {
        "source": source, "kind": kind, "sha256": digest, "archive": dest.name,
        "splits": archive.splits(),
        "languages": {split: archive.languages(split) for split in archive.splits()},
    }
    write_source(out_dir, provenance)
    return provenance
