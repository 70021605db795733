#!/usr/bin/env bash
# Install the peer toolkits, each in its own venv:
#   venvs/onmt: OpenNMT-py 3.5.1      venvs/joey: JoeyNMT 2.3.0   (run.py)
#   venvs/speechbrain: SpeechBrain 1.1.2 + torchaudio 2.11.1       (asr_run.py)
# all on torch 2.14.1 (the same torch as s2s's .venv). `setup.sh` builds onmt and
# joey; `setup.sh speechbrain` (or any list of names) builds those named.
# Idempotent: a venv whose stamp file matches this script's package list is left
# alone; FORCE=1 rebuilds.
#
# Why not plain `pip install OpenNMT-py==3.5.1 joeynmt==2.3.0`:
#  - OpenNMT-py 3.5.1 pins torch<2.3; we install it with --no-deps plus only the
#    modules that `onmt_train`/`onmt_translate` import (onmt/transforms/__init__.py
#    imports every transform module, hence spacy, fasttext, rapidfuzz, ahocorasick,
#    regex). Its server (flask, waitress), ctranslate2 and tensorboard are lazy
#    imports we never reach.
#  - JoeyNMT 2.3.0 lists linters, datasets, pandas, plotly, seaborn; training and
#    translation import only the packages below. It needs sentencepiece 0.2.0, and
#    torch 2.14's ReduceLROnPlateau has no `verbose` argument: patched out below.
#  - Under torch>=2.6 torch.load defaults to weights_only=True, which rejects both
#    toolkits' checkpoints: run.py sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venvs="$here/venvs"
TORCH="${TORCH:-torch==2.14.1}"
# The interpreter: s2s's own (same Python for all three) unless PYTHON is set.
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then
    PYTHON="$("$root/.venv/bin/python" -c 'import sys; print(sys._base_executable)')"
  else
    PYTHON=python3
  fi
fi
PIP_FLAGS=(-q --disable-pip-version-check --only-binary=:all:)

ONMT_PKGS=(configargparse "pyonmttok>=1.37,<2" sacrebleu pyyaml numpy six
           rapidfuzz pyahocorasick regex spacy fasttext-wheel)
# SpeechBrain 1.1.2 asks for torch>=2.7.1 and torchaudio>=2.7.1, so 2.14.1/2.11.1
# fit; it is installed with --no-deps all the same so that pip cannot move torch.
# asr_run.py reads audio with soundfile, never torchaudio.load (which wants
# torchcodec in torchaudio 2.9+). huggingface_hub is imported at start-up; no model
# is fetched from any hub.
SB_PKGS=("torchaudio==2.11.1" hyperpyyaml joblib numpy packaging requests scipy
         sentencepiece soundfile tqdm huggingface_hub)
JOEY_PKGS=(numpy pyyaml "sacrebleu>=2.0" "sentencepiece==0.2.0" subword-nmt
           tensorboard matplotlib tqdm importlib-metadata packaging six)

make_venv() {  # name toolkit-spec check-import extra-packages...
  local name="$1" spec="$2" check="$3"; shift 3
  local v="$venvs/$name"
  local want="$TORCH $spec $* python=$("$PYTHON" -V 2>&1)"
  if [[ -z "${FORCE:-}" && -f "$v/.peers-stamp" && "$(cat "$v/.peers-stamp")" == "$want" ]] \
     && "$v/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "[setup] $name: up to date ($v)"
    return
  fi
  echo "[setup] $name: creating $v with $PYTHON"
  rm -rf "$v"
  "$PYTHON" -m venv "$v"
  "$v/bin/pip" install "${PIP_FLAGS[@]}" --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  echo "[setup] $name: $TORCH (about a minute)"
  "$v/bin/pip" install "${PIP_FLAGS[@]}" "$TORCH" 2>&1 | grep -v '^WARNING: Location' || true
  echo "[setup] $name: $spec (no deps) + $*"
  "$v/bin/pip" install "${PIP_FLAGS[@]}" --no-deps "$spec" 2>&1 | grep -v '^WARNING: Location' || true
  "$v/bin/pip" install "${PIP_FLAGS[@]}" "$@" "$TORCH" 2>&1 \
    | grep -v -e '^WARNING: Location' -e "dependency resolver" -e "requires .*which is" \
      -e "which is incompatible" || true
  if [[ "$name" == joey ]]; then patch_joey "$v"; fi
  "$v/bin/python" -c "$check"
  echo "$want" > "$v/.peers-stamp"
  echo "[setup] $name: ok"
}

patch_joey() {
  local f
  f="$("$1/bin/python" -c 'import joeynmt, os; print(os.path.join(os.path.dirname(joeynmt.__file__), "builders.py"))')"
  # torch 2.14: ReduceLROnPlateau(verbose=...) is a TypeError. Only the plateau
  # scheduler uses it (run.py uses warmupinversesquareroot), patched all the same.
  sed -i '/"verbose": False,/d' "$f"
  if grep -q '"verbose"' "$f"; then echo "[setup] joey: patch failed: $f" >&2; exit 1; fi
}

mkdir -p "$venvs"
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=(onmt joey); fi
for t in "${targets[@]}"; do
  case "$t" in
    onmt) make_venv onmt "OpenNMT-py==3.5.1" \
      "import warnings; warnings.simplefilter('ignore'); import onmt.bin.train, onmt.bin.translate, onmt.bin.build_vocab; assert __import__('onmt').__version__ == '3.5.1'" \
      "${ONMT_PKGS[@]}" ;;
    joey) make_venv joey "joeynmt==2.3.0" \
      "import joeynmt.training, joeynmt.prediction, joeynmt.__main__, inspect, joeynmt.builders as b; assert '\"verbose\"' not in inspect.getsource(b)" \
      "${JOEY_PKGS[@]}" ;;
    speechbrain) make_venv speechbrain "speechbrain==1.1.2" \
      "import speechbrain, speechbrain.lobes.models.CRDNN, speechbrain.nnet.losses, speechbrain.decoders, hyperpyyaml, soundfile; assert speechbrain.__version__ == '1.1.2'" \
      "${SB_PKGS[@]}" ;;
    *) echo "[setup] unknown toolkit: $t (onmt, joey or speechbrain)" >&2; exit 2 ;;
  esac
done
for v in "${targets[@]}"; do
  "$venvs/$v/bin/python" -W ignore -c "import torch, sys; print('[setup] $v:', 'python', sys.version.split()[0], 'torch', torch.__version__)"
done
