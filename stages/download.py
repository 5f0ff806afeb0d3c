#!/usr/bin/env python
"""download: fetch the MLQA archive (or copy a local one) into data/raw, verified, with provenance.

`data.source` is the official URL (checked against data.expected_size / data.expected_sha256) or a
local .zip / directory in the official MLQA_V1 layout (validated; its sha256 recorded in source.json).
"""
import argparse

from xaug.cli import run_stage, setup
from xaug.download import fetch_archive, is_url
from xaug.params import load_params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/raw", help="output folder (default: %(default)s)")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    source = p.get_path("data.source")
    url = is_url(str(source))
    prov = fetch_archive(str(source), args.out,
                         expected_size=p.get_path("data.expected_size", None) if url else None,
                         expected_sha256=p.get_path("data.expected_sha256", None) if url else None)
    log.info("archive from %s (%s), sha256 %s, splits %s", prov["source"], prov["kind"], prov["sha256"], prov["splits"])


if __name__ == "__main__":
    run_stage(main)
