#!/usr/bin/env python
"""download: fetch the MLQA archive (or copy a local one) into data/raw, verified, with provenance.

`data.source` is the official URL (checked against data.expected_size / data.expected_sha256) or a
local .zip / directory in the official MLQA_V1 layout (validated; its sha256 recorded in source.json).
--group xquad reads the same keys from the `xquad` group (XQuAD in the MLQA layout).
"""

from xaug.cli import run
from xaug.data_settings import named_group, source_settings
from xaug.download import fetch_archive


def arguments(ap):
    ap.add_argument("--out", default="data/raw", help="output folder (default: %(default)s)")
    ap.add_argument("--group", default="data", help="the params group of the archive (default: %(default)s)")


def main(args, p, log):
    with named_group(args.group):
        settings = source_settings(p.get_path(args.group))
        prov = fetch_archive(str(settings.source), args.out, expected_size=settings.expected_size,
                             expected_sha256=settings.expected_sha256)
    log.info("archive from %s (%s), sha256 %s, splits %s", prov["source"], prov["kind"], prov["sha256"], prov["splits"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
