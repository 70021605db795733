"""What a fresh clone holds and what its recipes do first.

A symlink committed by mistake (``recipes/lm-cs/work`` pointed into a developer's
worktree) made ``make text`` fail on every fresh clone; before ``venv.mk`` a recipe's
first step on a fresh clone failed for want of ``.venv``.
"""

import shutil
import subprocess
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


def _dry_run(tmp_path, recipe, target, *variables):
    """`make -n` of a recipe's target against a stub top-level Makefile whose
    `install` echoes its own BIN; inputs the target needs are made in tmp_path."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    root = tmp_path / "root"
    root.mkdir()
    stub = "BIN := venv-bin\ninstall:\n\t@echo INSTALL BIN=$(BIN)\n"
    (root / "Makefile").write_text(stub)
    asr = tmp_path / "asr"
    (asr / "data").mkdir(parents=True)
    (asr / "data" / "test.tsv").write_text("")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("test.en", "sentences.en"):
        (data / name).write_text("a sentence\n")
    proc = subprocess.run(
        ["make", "-n", "-C", str(RECIPES / recipe), target, f"ROOT={root}"]
        + [f"ASR={asr}", f"DATA={data}", f"SENTENCES={data / 'sentences.en'}"]
        + list(variables),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    # The dry run stayed dry: nothing was created in the stub root.
    assert not (root / ".venv").exists()
    return proc.stdout


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


@pytest.mark.parametrize(
    "recipe, lm_run",
    [
        ("asr-cs", "runs/cs-config.text.cpu-extra-x10"),
        ("asr-en", "runs/en-config.text.cpu-extra"),
    ],
)
def test_recipe_lm_keeps_its_run_out_of_the_lm_recipe(tmp_path, recipe, lm_run):
    """`make lm RUN=exp/x CONFIG=...` names the speech run: ../lm-cs still trains and
    reads its own LM run with its own config, while the speech run's averaging (and
    asr-en's decoding) get exp/x. Before, the command line leaked into ../lm-cs and
    it trained a new LM into exp/x with the speech config."""
    out = _dry_run(tmp_path, recipe, "lm", "RUN=exp/x", "CONFIG=speech.yaml")
    assert f"--out {lm_run} --resume" in out, out
    assert "train config.text.cpu.yaml" in out, out
    lm_lines = [line for line in out.splitlines() if "config.text.cpu.yaml" in line]
    assert all("exp/x" not in line for line in lm_lines), lm_lines
    assert "average exp/x --best 5 --out exp/x/avg.pt" in out, out
    assert "train speech.yaml --data exp/data-bin" in out, out
