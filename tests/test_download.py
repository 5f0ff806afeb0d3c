import hashlib
import socket
import zipfile

import pytest

from xaug.download import fetch_archive
from xaug.errors import ConfigError


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_url_download_verified_and_recorded(tmp_path, mini_zip):
    prov = fetch_archive(mini_zip.as_uri(), tmp_path / "raw", mini_zip.stat().st_size, _sha(mini_zip))
    assert (tmp_path / "raw" / "MLQA_V1.zip").read_bytes() == mini_zip.read_bytes()
    assert prov["kind"] == "url" and prov["sha256"] == _sha(mini_zip) and prov["splits"] == ["dev"]
    assert (tmp_path / "raw" / "source.json").is_file()


@pytest.mark.parametrize("field", ["size", "sha256"])
def test_download_mismatch_keeps_nothing(tmp_path, mini_zip, field):
    size, sha = mini_zip.stat().st_size, _sha(mini_zip)
    if field == "size":
        size += 1
    else:
        sha = "0" * 64
    with pytest.raises(ConfigError, match=f"expected .*data.expected_{field}"):
        fetch_archive(mini_zip.as_uri(), tmp_path / "raw", size, sha)
    assert not any((tmp_path / "raw").iterdir())  # no partial or unverified file left behind


def test_no_network_says_how_to_use_a_local_copy(tmp_path):
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="no network.*data.source.*local copy"):
        fetch_archive(f"http://127.0.0.1:{port}/MLQA_V1.zip", tmp_path / "raw", 10, "0" * 64)


def test_local_zip_and_directory(tmp_path, mini_zip, mini_dir):
    prov = fetch_archive(str(mini_zip), tmp_path / "a")
    assert prov["kind"] == "zip" and prov["sha256"] == _sha(mini_zip)
    prov = fetch_archive(str(mini_dir), tmp_path / "b")
    assert prov["kind"] == "directory" and (tmp_path / "b" / "MLQA_V1" / "dev").is_dir()
    assert prov["languages"] == {"dev": ["de", "en", "zh"]}


def test_missing_source_path(tmp_path):
    with pytest.raises(ConfigError, match="data.source: .*nope.zip does not exist"):
        fetch_archive(str(tmp_path / "nope.zip"), tmp_path / "raw")


def test_corrupt_local_zip(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ConfigError, match="not a valid zip"):
        fetch_archive(str(bad), tmp_path / "raw")


def test_shared_copy_is_recognised(tmp_path, shared_zip):
    prov = fetch_archive(str(shared_zip), tmp_path / "raw")
    assert prov["splits"] == ["dev"]
    assert prov["languages"]["dev"] == ["ar", "de", "en", "es", "hi", "vi", "zh"]


def test_a_member_that_does_not_decompress_is_caught_at_download(tmp_path, mini_zip):
    """The central directory is intact (the archive opens and lists its files) but one member's
    compressed bytes are damaged: download rejects it, instead of prepare failing on zlib later."""
    data = bytearray(mini_zip.read_bytes())
    with zipfile.ZipFile(mini_zip) as zf:
        info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 5, start + 25):  # inside the first member's data
        data[i] ^= 0xFF
    bad = tmp_path / "damaged.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"data.source: .*damaged.zip: member .* does not decompress"):
        fetch_archive(str(bad), tmp_path / "raw")
    assert not (tmp_path / "raw" / "MLQA_V1.zip").exists()


def test_directory_links_are_copied_as_links(tmp_path, mini_dir):
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the archive")
    (mini_dir / "MLQA_V1" / "dev" / "note.txt").symlink_to(outside)
    fetch_archive(str(mini_dir), tmp_path / "raw")
    copied = tmp_path / "raw" / "MLQA_V1" / "dev" / "note.txt"
    assert copied.is_symlink()  # not followed out of the source folder
