#!/usr/bin/env python
"""download: fetch the MLQA archive (or copy a local one) into data/raw, verified, with provenance.

`data.source` is the official URL (checked against data.expected_size / data.expected_sha256) or a
local .zip / directory in the official MLQA_V1 layout (validated; its sha256 recorded in source.json).
"""

from xaug.cli import run
from xaug.download import fetch_archive, is_url


def arguments(ap):
    ap.add_argument("--out", default="data/raw", help="output folder (default: %(default)s)")


def main(args, p, log):
    source = p.get_path("data.source")
    url = is_url(str(source))
    prov = fetch_archive(str(source), args.out,
                         expected_size=p.get_path("data.expected_size", None) if url else None,
                         expected_sha256=p.get_path("data.expected_sha256", None) if url else None)
    log.info("archive from %s (%s), sha256 %s, splits %s", prov["source"], prov["kind"], prov["sha256"], prov["splits"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
