"""What a fresh clone holds and what its recipes do first.

A symlink committed by mistake (``recipes/lm-cs/work`` pointed into a developer's
worktree) made ``make text`` fail on every fresh clone; before ``venv.mk`` a recipe's
first step on a fresh clone failed for want of ``.venv``.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


def _tracked() -> list[tuple[str, str]]:
    """(mode, path) of every file git tracks; skips outside a git checkout."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-s", "-z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries = []
    for record in out.split("\0"):
        if record:
            meta, path = record.split("\t", 1)
            entries.append((meta.split()[0], path))
    return entries


def test_no_symlinks_are_tracked():
    links = [path for mode, path in _tracked() if mode == "120000"]
    assert links == [], f"symlinks in git (they point into one machine): {links}"


def test_no_large_files_are_tracked():
    # Recipes build their data, features and checkpoints; a small sample is fine.
    big = []
    for _, path in _tracked():
        file = ROOT / path
        if file.is_file() and file.stat().st_size > 2_000_000:
            big.append((path, file.stat().st_size))
    assert big == [], f"files over 2 MB in git: {big}"


def _make(directory, target, *variables):
    """A real (quiet) `make` of `target` in `directory`, which must succeed."""
    r = subprocess.run(
        ["make", "-s", target, *variables],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def _make_n(tmp_path, directory, target, *variables):
    """`make -n` of `target` in `directory` against a stub top-level Makefile (ROOT)
    whose `install` echoes its own BIN; the dry run must stay dry."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    stub = "BIN := venv-bin\ninstall:\n\t@echo INSTALL BIN=$(BIN)\n"
    (root / "Makefile").write_text(stub)
    proc = subprocess.run(
        ["make", "-n", "-C", str(directory), target, f"ROOT={root}", *variables],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    # The dry run stayed dry: nothing was created in the stub root.
    assert not (root / ".venv").exists()
    return proc.stdout


def _in_order(out, steps):
    """The dry run `out` on one line (continuations joined) and where each of
    `steps` starts in it; every step is there, in the order given."""
    flat = " ".join(out.replace("\\\n", " ").split())
    at = [flat.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), (at, out)
    return flat, at


def _dry_run(tmp_path, recipe, target, *variables):
    """`_make_n` of a recipe's target; inputs the target needs are made in
    tmp_path."""
    asr = tmp_path / "asr"
    (asr / "data").mkdir(parents=True)
    (asr / "data" / "test.tsv").write_text("")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("test.en", "sentences.en"):
        (data / name).write_text("a sentence\n")
    inputs = [f"ASR={asr}", f"DATA={data}", f"SENTENCES={data / 'sentences.en'}"]
    return _make_n(tmp_path, RECIPES / recipe, target, *inputs, *variables)


STEPS = [
    ("asr-cs", "data/train.tsv"),
    ("asr-cs", "exp/other-bin/meta.json"),
    ("asr-en", "data/train.tsv"),
    ("lm-cs", "data/extra.cs"),
    ("mt-de-en", "exp/other-bin/meta.json"),
    ("lm-en", "exp/other-bin/meta.json"),
]


@pytest.mark.parametrize("recipe, target", STEPS)
def test_recipe_first_step_installs_the_venv(tmp_path, recipe, target):
    """Without ROOT/.venv, the recipe's first step runs the top-level `make install`,
    without passing the recipe's own variables (BIN=) down."""
    out = _dry_run(tmp_path, recipe, target, "BIN=exp/other-bin")
    assert "INSTALL BIN=venv-bin" in out, out


@pytest.mark.parametrize("recipe, target", STEPS)
def test_recipe_with_the_users_own_s2s_installs_nothing(tmp_path, recipe, target):
    """S2S=s2s (from PATH) and PYTHON=python3 are not files to make."""
    out = _dry_run(
        tmp_path, recipe, target, "BIN=exp/other-bin", "S2S=s2s", "PYTHON=python3"
    )
    assert "INSTALL" not in out, out


def _recipes_copy(tmp_path, names):
    """The Makefiles and configs of `names` (and common/) copied under tmp_path:
    a dry run there may need input files a clean clone lacks."""
    recipes = tmp_path / "recipes"
    for name in [*names, "common"]:
        (recipes / name).mkdir(parents=True)
        for src in (RECIPES / name).iterdir():
            if src.name == "Makefile" or src.suffix in (".yaml", ".mk"):
                shutil.copy(src, recipes / name / src.name)
    return recipes


def _sentences(tmp_path):
    """`SENTENCES=` a one-line file: asr-en's data/train.tsv has the translation
    corpus as an order-only input, which a clean clone lacks."""
    sentences = tmp_path / "sentences.en"
    sentences.write_text("a sentence\n")
    return f"SENTENCES={sentences}"


def test_asr_cs_lm_keeps_its_variables_out_of_the_lm_recipe(tmp_path):
    """`make lm RUN=exp/x CONFIG=speech.yaml` names the speech run and its config:
    ../lm-cs still trains its own LM run with its own config, and the speech run's
    averaging gets exp/x. Before, RUN= reached ../lm-cs (through MAKEFLAGS) and
    CONFIG= too (through the environment, into its `?=` default)."""
    recipes = _recipes_copy(tmp_path, ["asr-cs", "lm-cs"])
    (recipes / "asr-cs" / "data").mkdir()
    (recipes / "asr-cs" / "data" / "test.tsv").write_text("")
    out = _make_n(tmp_path, recipes / "asr-cs", "lm", "RUN=exp/x", "CONFIG=speech.yaml")
    assert "train speech.yaml --data exp/data-bin-sp --out exp/x" in out, out
    assert "average exp/x --best 5 --out exp/x/avg.pt" in out, out
    lm = (
        "train config.text.cpu.yaml --data data-bin/cs-extra-x10 "
        "--out runs/cs-config.text.cpu-extra-x10"
    )
    assert lm in out, out
    assert f"ASR_CKPT={recipes / 'asr-cs' / 'exp/x/avg.pt'}" in out, out
    assert 'BEAMS="16 32 64"' in out, out  # wider beams tried at the chosen point


def test_asr_cs_lm_of_a_joint_run_fuses_into_its_joint_search(tmp_path):
    """`make lm MODE=joint CTC_WEIGHT=0.5`: every fusion decode of ../lm-cs runs the
    joint search at that CTC weight, into a directory named for the search; without
    MODE the decodes name no search (the checkpoint's own)."""
    recipes = _recipes_copy(tmp_path, ["asr-cs", "lm-cs"])
    (recipes / "asr-cs" / "data").mkdir()
    (recipes / "asr-cs" / "data" / "test.tsv").write_text("")
    out = _make_n(
        tmp_path, recipes / "asr-cs", "lm", "RUN=exp/j", "MODE=joint", "CTC_WEIGHT=0.5"
    )
    assert "FUSION=runs/fusion-j-avg-joint-x10" in out, out
    (tmp_path / "joint").mkdir()
    (tmp_path / "plain").mkdir()
    lm_cs = _make_n(
        tmp_path / "joint",
        recipes / "lm-cs",
        "fusion",
        f"ASR={recipes / 'asr-cs'}",
        "MODE=joint",
        "CTC_WEIGHT=0.5",
    )
    decodes = [line for line in lm_cs.splitlines() if "transcribe --checkpoint" in line]
    assert decodes, lm_cs
    assert all("--mode joint --ctc-weight 0.5" in line for line in decodes), lm_cs
    plain = _make_n(
        tmp_path / "plain", recipes / "lm-cs", "fusion", f"ASR={recipes / 'asr-cs'}"
    )
    assert "--mode" not in plain and "--ctc-weight" not in plain, plain


def test_asr_cs_joint_trains_ctc_then_joint_from_its_average(tmp_path):
    """`make joint`: the 3 x 256 CTC model for CTC_MINUTES at CTC_LR (empty: the
    config's own), its best checkpoints averaged, the joint model started from that
    average for JOINT_MINUTES, its 5 best averaged (JOINT_AVG), then the joint
    search on the test set, whatever CONFIG the CPU would pick."""
    recipes = _recipes_copy(tmp_path, ["asr-cs"])
    bin_dir = recipes / "asr-cs" / "exp" / "data-bin-sp"
    bin_dir.mkdir(parents=True)
    (bin_dir / "meta.json").write_text("{}")
    out = _make_n(
        tmp_path, recipes / "asr-cs", "joint", "CONFIG=other.yaml", "JOINT_MINUTES=20"
    )
    steps = [
        "train config.cpu-fp32.yaml --data exp/data-bin-sp --out exp/joint-ctc "
        "--resume --set train.lr=0.004 --set train.max_minutes=29",
        "average exp/joint-ctc --best 5 --out exp/joint-ctc/avg.pt",
        "train config.joint-warm.cpu-fp32.yaml --data exp/data-bin-sp --out exp/joint "
        "--resume --set train.init_from=exp/joint-ctc/avg.pt "
        "--set train.max_minutes=20",
        "average exp/joint --best 5 --out exp/joint/avg.pt",
        "transcribe --checkpoint exp/joint/avg.pt --manifest data/test.tsv "
        "--output exp/joint/test.avg.joint.beam8.ctc0.5.hyp.tsv",
    ]
    _in_order(out, steps)
    assert "train other.yaml" not in out, out
    own = _make_n(tmp_path, recipes / "asr-cs", "joint", "CTC_LR=")
    _in_order(own, ["--out exp/joint-ctc --resume --set train.max_minutes=29"])
    assert "train.lr" not in own, own
    one = _make_n(tmp_path, recipes / "asr-cs", "joint", "JOINT_AVG=1")
    assert "average exp/joint --best 1 --out exp/joint/avg.pt" in one, one


def test_asr_cs_all_is_the_joint_split_then_its_lm(tmp_path):
    """`make all` is the headline: `make joint` (its CTC stage at CTC_LR 0.004),
    then `make lm` of exp/joint with the joint search at CTC weight 0.5 and
    JOINT_LM_WEIGHTS; `make ctc` is the
    single-run path (CONFIG into RUN, best.pt greedy, the 5 best averaged)."""
    recipes = _recipes_copy(tmp_path, ["asr-cs", "lm-cs"])
    bin_dir = recipes / "asr-cs" / "exp" / "data-bin-sp"
    bin_dir.mkdir(parents=True)
    (bin_dir / "meta.json").write_text("{}")
    (recipes / "asr-cs" / "data").mkdir()
    (recipes / "asr-cs" / "data" / "test.tsv").write_text("")
    out = _make_n(tmp_path, recipes / "asr-cs", "all")
    steps = [
        "--out exp/joint-ctc --resume --set train.lr=0.004 --set train.max_minutes=29",
        "--out exp/joint --resume --set train.init_from=exp/joint-ctc/avg.pt",
        "average exp/joint --best 5 --out exp/joint/avg.pt",
        "--output exp/joint/test.avg.joint.beam8.ctc0.5.hyp.tsv",
        "FUSION=runs/fusion-joint-avg-joint-x10",
    ]
    flat, at = _in_order(out, steps)
    fusion = flat[at[-1] - 2000 :]
    assert "--out runs/cs-config.text.cpu-extra-x10" in fusion, out  # the LM
    assert f"ASR_CKPT={recipes / 'asr-cs' / 'exp/joint/avg.pt'}" in flat, out
    assert "MODE=joint CTC_WEIGHT=0.5" in fusion, out
    assert 'WEIGHTS="0.3 0.5 0.7 1.0"' in fusion, out
    # Last, a line names where the LM's results are.
    where = "LM: ../lm-cs/runs/fusion-joint-avg-joint-x10/fusion.txt"
    assert flat.rfind(where) > at[-1], out
    ctc = _make_n(tmp_path, recipes / "asr-cs", "ctc", "CONFIG=speech.yaml")
    steps = [
        "train speech.yaml --data exp/data-bin-sp --out exp/cpu --resume",
        "--output exp/cpu/test.hyp.tsv",
        "average exp/cpu --best 5 --out exp/cpu/avg.pt",
        "--output exp/cpu/test.avg.beam8.hyp.tsv",
    ]
    flat, _ = _in_order(ctc, steps)
    assert "exp/joint" not in flat and "--mode" not in flat, ctc


def test_asr_en_lm_decodes_its_own_run_with_the_chosen_weights(tmp_path):
    """asr-en's `make lm RUN=exp/x CONFIG=speech.yaml`: ../lm-cs's own LM, and the
    last step decodes exp/x/avg.pt (not the default run) with the LM."""
    recipes = _recipes_copy(tmp_path, ["asr-en", "lm-cs"])
    data = recipes / "asr-en" / "data"
    data.mkdir()
    for name in ("train.tsv", "valid.tsv", "test.tsv", "lm_text.txt", "words.en"):
        (data / name).write_text("")
    run = recipes / "asr-en" / "exp" / "x"
    run.mkdir(parents=True)
    (run / "avg.pt").write_text("")
    fusion = recipes / "lm-cs" / "runs" / "fusion-en-x-avg"
    fusion.mkdir(parents=True)
    (fusion / "chosen.tsv").write_text("/lm/best.pt\t1.0\t3\t1\n")
    out = _make_n(
        tmp_path,
        recipes / "asr-en",
        "lm",
        "RUN=exp/x",
        "CONFIG=speech.yaml",
        _sentences(tmp_path),
    )
    lm = (
        "train config.text.cpu.yaml --data data-bin/en-extra "
        "--out runs/en-config.text.cpu-extra"
    )
    assert lm in out, out
    assert "speech.yaml" not in out, out
    assert "transcribe --checkpoint exp/x/avg.pt --manifest data/$t.tsv" in out, out
    assert "--output exp/x/$t.avg.beam8.lm1.0.x3.b1.hyp.tsv" in out, out
    assert "--lm /lm/best.pt --lm-weight 1.0" in out, out


def test_asr_en_fotaq_trains_on_the_game_speech_and_tests_on_real_speech(tmp_path):
    """asr-en's `make fotaq`: fotaq.py's manifests into their own features and run,
    then `all` there, scored on the held-out dialogues and the real clips (not the
    synthetic test sets); `make all` still preps the synthetic manifests."""
    recipes = _recipes_copy(tmp_path, ["asr-en"])
    out = _make_n(tmp_path, recipes / "asr-en", "fotaq", "S2S=s2s", "PYTHON=python3")
    steps = [
        "python3 fotaq.py --work work --out data",
        "s2s prep speech --train data/fotaq_train.tsv --valid data/fotaq_valid.tsv "
        "--out exp/data-bin-fotaq --chars",
        "s2s train config.cpu.yaml --data exp/data-bin-fotaq --out exp/fotaq --resume",
        "for t in fotaq_test pocketsphinx_test; do",
        "s2s average exp/fotaq --best 5 --out exp/fotaq/avg.pt",
        "--checkpoint exp/fotaq/avg.pt --manifest data/$t.tsv",
    ]
    _in_order(out, steps)
    assert "test_seen" not in out and "data/train.tsv" not in out, out
    (recipes / "asr-en" / "data").mkdir()
    (recipes / "asr-en" / "data" / "train.tsv").write_text("")
    synthetic = _make_n(
        tmp_path, recipes / "asr-en", "prep", "S2S=s2s", _sentences(tmp_path)
    )
    assert "--train data/train.tsv --valid data/valid.tsv" in synthetic, synthetic


def test_asr_en_mix_joins_synthetic_and_game_speech(tmp_path):
    """asr-en's `make mix`: the synthetic train lines, then the game's FOTAQ_REPEAT
    times under new ids, into their own features and run, validated on the game's
    held-out dialogues and tested on all three kinds of speech; `make mix-lm` hands
    that run and those tests to `lm`."""
    recipes = _recipes_copy(tmp_path, ["asr-en", "lm-cs"])
    common = ("S2S=s2s", "PYTHON=python3", _sentences(tmp_path))
    out = _make_n(tmp_path, recipes / "asr-en", "mix", "FOTAQ_REPEAT=2", *common)
    steps = [
        "python3 prepare_data.py --sentences",
        "python3 fotaq.py --work work --out data",
        "tail -n +2 data/train.tsv | cut -f1-4 >> data/mix_train.tsv.tmp",
        "for i in $(seq 2); do",
        'sed "s/^/r$i-/"',
        "mv data/mix_train.tsv.tmp data/mix_train.tsv",
        "s2s prep speech --train data/mix_train.tsv --valid data/fotaq_valid.tsv "
        "--out exp/data-bin-mix --chars",
        "s2s train config.cpu.yaml --data exp/data-bin-mix --out exp/mix --resume",
        "for t in test fotaq_test pocketsphinx_test; do",
        "s2s average exp/mix --best 5 --out exp/mix/avg.pt",
        "--checkpoint exp/mix/avg.pt --manifest data/$t.tsv",
    ]
    _in_order(out, steps)
    # The recipe itself on two tiny manifests: the header once, every synthetic
    # line, then each game line twice under its own id, four columns each.
    work = recipes / "asr-en"
    (work / "data").mkdir()
    (work / "data" / "train.tsv").write_text(
        "id\tpath\tduration\ttext\tengine\na\ta.wav\t1.0\thello\tflite\n"
    )
    (work / "data" / "fotaq_train.tsv").write_text(
        "id\tpath\tduration\ttext\tspeaker\nf\tf.mp3\t2.0\tyes\tjoe\n"
    )
    _make(work, "data/mix_train.tsv", "FOTAQ_REPEAT=2", *common)
    assert (work / "data" / "mix_train.tsv").read_text() == (
        "id\tpath\tduration\ttext\n"
        "a\ta.wav\t1.0\thello\n"
        "r1-f\tf.mp3\t2.0\tyes\n"
        "r2-f\tf.mp3\t2.0\tyes\n"
    )
    for name in ("valid.tsv", "test.tsv", "lm_text.txt", "words.en"):
        (work / "data" / name).write_text("")
    (work / "exp" / "mix").mkdir(parents=True)
    (work / "exp" / "mix" / "avg.pt").write_text("")
    fusion = recipes / "lm-cs" / "runs" / "fusion-en-mix-avg"
    fusion.mkdir(parents=True)
    (fusion / "chosen.tsv").write_text("/lm/best.pt\t1.0\t3\t1\n")
    lm = _make_n(tmp_path, work, "mix-lm", *common)
    # The game's test lines as 16 kHz WAV for pocketsphinx: wav16.py on fotaq_test.
    (work / "data" / "fotaq_train.tsv").touch()
    wav = _make_n(tmp_path, work, "data/fotaq_test_16k.tsv", *common)
    want = "python3 wav16.py data/fotaq_test.tsv data/audio/fotaq_test_16k"
    assert f"{want} data/fotaq_test_16k.tsv" in wav, wav
    assert "--checkpoint exp/mix/avg.pt --manifest data/$t.tsv" in lm, lm
    assert "for t in test fotaq_test pocketsphinx_test; do" in lm, lm
    assert "--lm /lm/best.pt --lm-weight 1.0" in lm, lm
    assert "ASR_BIN=" + str(work / "exp" / "data-bin-mix") in lm, lm


def test_asr_en_mix_can_add_the_second_game(tmp_path):
    """`make mix BASS_REPEAT=N`: bass.py's train lines N times after the first
    game's, ids b1-, b2-, ...; bass_test joins the tests."""
    recipes = _recipes_copy(tmp_path, ["asr-en", "lm-cs"])
    common = ("S2S=s2s", "PYTHON=python3", _sentences(tmp_path))
    mix = ("MIX_TRAIN=data/mixb.tsv", "BASS_REPEAT=2", "MIX_RUN=exp/mixb")
    out = _make_n(tmp_path, recipes / "asr-en", "mix", *mix, *common)
    steps = [
        "python3 fotaq.py --work work --out data",
        "python3 bass.py --work work --out data",
        'sed "s/^/r$i-/"',
        'sed "s/^/b$i-/"',
        "mv data/mixb.tsv.tmp data/mixb.tsv",
        "s2s prep speech --train data/mixb.tsv --valid data/fotaq_valid.tsv",
        "for t in test fotaq_test pocketsphinx_test bass_test; do",
    ]
    _in_order(out, steps)
    work = recipes / "asr-en"
    (work / "data").mkdir()
    for name, row in [
        ("train.tsv", "a\ta.wav\t1.0\thello\tflite"),
        ("fotaq_train.tsv", "f\tf.mp3\t2.0\tyes\tjoe"),
        ("bass_train.tsv", "bass-50001\taudio/bass/50001.wav\t0.5\tno\tNo!"),
    ]:
        (work / "data" / name).write_text("id\tpath\tduration\ttext\tx\n" + row + "\n")
    _make(work, "data/mixb.tsv", *mix, "FOTAQ_REPEAT=1", *common)
    assert (work / "data" / "mixb.tsv").read_text() == (
        "id\tpath\tduration\ttext\n"
        "a\ta.wav\t1.0\thello\n"
        "r1-f\tf.mp3\t2.0\tyes\n"
        "b1-bass-50001\taudio/bass/50001.wav\t0.5\tno\n"
        "b2-bass-50001\taudio/bass/50001.wav\t0.5\tno\n"
    )
    # Without BASS_REPEAT the mix is the first game's only, as before.
    plain = _make_n(tmp_path, work, "mix", *common)
    assert "bass" not in plain, plain


FAKE_S2S = """#!{python}
# A stand-in for s2s in the fusion recipe: `transcribe` writes its beam and LM
# weight as the hypothesis; `score wer` scores them from a table.
import sys

args = sys.argv[1:]
with open({calls!r}, "a") as calls:
    calls.write(" ".join(args) + "\\n")
opt = {{args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}}
if args[0] == "transcribe":
    with open(opt["--output"], "w") as out:
        lm = opt.get("--lm-weight", "none")
        out.write("u1\\tbeam" + opt["--beam"] + " lm" + lm + "\\n")
    print("transcribed 1 file (beam " + opt["--beam"] + ")", file=sys.stderr)
else:
    beam, lm = open(opt["--hyp"]).read().split()
    wer = {{"lmnone": 80.0, "lm0.5": 70.0, "lm1.0": 72.0}}[lm]
    wer += {{"beam8": 0.0, "beam16": -1.0, "beam32": -3.0, "beam64": -2.0}}[beam]
    print(f"WER {{wer:.2f}}  (S 1, D 0, I 0, N 1)")
    print(f"CER {{wer / 2:.2f}}  (S 1, D 0, I 0, N 2)")
"""


def test_lm_fusion_picks_the_beam_with_the_lowest_validation_wer(tmp_path):
    """lm-cs `fusion BEAMS="16 32 64"`: the LM weight is chosen at BEAM 8, then each
    wider beam decodes the validation set at that weight; the one with the lowest
    WER (32 here, not the widest) decodes the test set with the LM, and is written
    to chosen.tsv; the test set without the LM stays at beam 8."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    recipes = _recipes_copy(tmp_path, ["lm-cs"])
    lm_cs = recipes / "lm-cs"
    asr = tmp_path / "asr"
    (asr / "data").mkdir(parents=True)
    for split in ("valid", "test"):
        (asr / "data" / f"{split}.tsv").write_text("")
    run = lm_cs / "runs" / "cs-config.cpu"
    run.mkdir(parents=True)
    (run / "best.pt").write_text("")
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "s2s"
    fake.write_text(FAKE_S2S.format(python=sys.executable, calls=str(calls)))
    fake.chmod(0o755)
    proc = subprocess.run(
        [
            "make",
            "-C",
            str(lm_cs),
            "fusion",
            "-o",
            "runs/cs-config.cpu/best.pt",
            f"S2S={fake}",
            f"ASR={asr}",
            "FUSION=runs/f",
            "WEIGHTS=0.5 1.0",
            "BEAMS=16 32 64",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    chosen = (lm_cs / "runs" / "f" / "chosen.tsv").read_text().split()
    assert chosen[1:] == ["0.5", "none", "0", "32"], chosen
    beams = (lm_cs / "runs" / "f" / "beams.tsv").read_text().splitlines()
    assert [line.split("\t")[:2] for line in beams] == [
        ["8", "70.00"],
        ["16", "69.00"],
        ["32", "67.00"],
        ["64", "68.00"],
    ], beams
    tests = [c for c in calls.read_text().splitlines() if "data/test.tsv" in c]
    assert len(tests) == 2, tests
    assert "--beam 8" in tests[0] and "--lm-weight" not in tests[0], tests
    assert "--beam 32" in tests[1] and "--lm-weight 0.5" in tests[1], tests
    fusion = (lm_cs / "runs" / "f" / "fusion.txt").read_text()
    assert "== chosen beam 32" in fusion, fusion
