#!/usr/bin/env bash
# Two ways to use a CPU's cores for one training run, taking turns:
#   one process with `train.threads=N` on batches of B tokens, against
#   `torchrun --nproc_per_node=N` with one thread each on batches of B/N tokens
#   (the same tokens per optimizer step; s2s.train.distributed sums the gradients).
# Each trains s2s's default model from scratch for MINUTES and reports the median
# of its logged target tokens/s (first window left out), ROUNDS times in turn.
#
#   benchmarks/cpu_data_parallel.sh DATA_DIR [MINUTES=1.5] [ROUNDS=2] [N=2] [B=2000]
set -euo pipefail
DATA=${1:?usage: $0 DATA_DIR [MINUTES] [ROUNDS] [N] [B]}
MINUTES=${2:-1.5}
ROUNDS=${3:-2}
N=${4:-2}
B=${5:-2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=$ROOT/.venv/bin/python
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COMMON=(--data "$DATA" --set train.max_minutes="$MINUTES" --set train.device=cpu
  --set train.valid_every=1000000 --set train.save_every=1000000
  --set train.valid_bleu_sents=20 --set train.log_every=10 --set train.seed=1
  --set train.lr=0.003 --set train.warmup_steps=150 --set train.schedule=inverse_sqrt)

median() {  # metrics.jsonl -> "steps median_tok_s"
  "$PY" - "$1" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
rates = [r["tok_per_s"] for r in rows if "tok_per_s" in r][1:]
print(max(r.get("step", 0) for r in rows), round(statistics.median(rates)))
EOF
}

echo "| round | setup | steps | target tok/s |"
echo "|---:|---|---:|---:|"
for round in $(seq "$ROUNDS"); do
  rm -rf "$WORK/one" "$WORK/many"
  OMP_NUM_THREADS=$N "$PY" -m s2s train --out "$WORK/one" "${COMMON[@]}" \
    --set train.threads="$N" --set train.batch_tokens="$B" > "$WORK/one.log" 2>&1
  read -r steps rate < <(median "$WORK/one/metrics.jsonl")
  echo "| $round | 1 process x $N threads, $B-token batches | $steps | $rate |"
  OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$N" \
    -m s2s train --out "$WORK/many" "${COMMON[@]}" \
    --set train.threads=1 --set train.batch_tokens=$((B / N)) > "$WORK/many.log" 2>&1
  read -r steps rate < <(median "$WORK/many/metrics.jsonl")
  echo "| $round | $N processes x 1 thread, $((B / N))-token batches | $steps | $rate |"
done
