#!/usr/bin/env bash
# Does the exported model decode like its checkpoint? Exports CKPT, decodes with
# `s2s translate|transcribe` and with `s2s-run`, and prints how many output lines
# differ and the score of each (BLEU with a reference text, WER with a manifest).
#
#   benchmarks/export_equality.sh translate CKPT SRC REF [--beam 5 ...]
#   benchmarks/export_equality.sh transcribe CKPT MANIFEST REF [--beam 10 ...]
#
# REF: reference text, one line per input (for a manifest: its text column in order).
set -euo pipefail
cmd=$1 ckpt=$2 input=$3 ref=$4
shift 4
bin=${BIN:-.venv/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/s2s" export --checkpoint "$ckpt" --out "$tmp/model"
if [ "$cmd" = translate ]; then
  "$bin/s2s" translate --checkpoint "$ckpt" --input "$input" --output "$tmp/torch" "$@"
  "$bin/s2s-run" translate --model "$tmp/model" --input "$input" --output "$tmp/onnx" "$@"
  score=bleu
else
  "$bin/s2s" transcribe --checkpoint "$ckpt" --manifest "$input" "$@" | cut -f2- >"$tmp/torch"
  "$bin/s2s-run" transcribe --model "$tmp/model" --manifest "$input" "$@" | cut -f2- >"$tmp/onnx"
  score=wer
fi
echo "lines that differ: $(diff "$tmp/torch" "$tmp/onnx" | grep -c '^<' || true) of $(wc -l <"$tmp/torch")"
echo "torch: $("$bin/s2s" score $score --ref "$ref" --hyp "$tmp/torch" | head -n 1)"
echo "onnx:  $("$bin/s2s" score $score --ref "$ref" --hyp "$tmp/onnx" | head -n 1)"
