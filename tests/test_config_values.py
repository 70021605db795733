"""Every config value is checked where it enters, in one place: YAML, `--set` and
the decoding commands' options. And YAML is read safely, with limits."""

import subprocess
import sys
import time

import pytest

from s2s.config import Config, load_config
from s2s.errors import S2SError

BAD = [
    ("train.lr=inf", "train.lr must be a finite number, got inf"),
    ("train.lr=nan", "train.lr must be a finite number, got nan"),
    ("train.lr=-1", "train.lr must be > 0, got -1.0"),
    ("train.lr=0", "train.lr must be > 0"),
    ("train.clip_norm=-1", "train.clip_norm must be >= 0, got -1.0"),
    ("train.max_steps=-5", "train.max_steps must be >= 0, got -5"),
    ("train.max_epochs=-1", "train.max_epochs must be >= 0"),
    ("train.max_minutes=-1", "train.max_minutes must be >= 0"),
    ("train.max_minutes=nan", "train.max_minutes must be a finite number"),
    ("train.keep_last=-2", "train.keep_last must be >= 0, got -2"),
    ("train.patience=-3", "train.patience must be >= 0, got -3"),
    (
        "train.betas=[2, 3]",
        r"train.betas must be in \[0, 1\) \(each\), got \(2.0, 3.0\)",
    ),
    ("train.weight_decay=-1", "train.weight_decay must be >= 0"),
    ("train.seed=-1", r"train.seed must be in \[0, 4294967295\], got -1"),
    ("train.seed=" + "1" + "0" * 23, r"train.seed must be in \[0, 4294967295\]"),
    ("train.warmup_steps=-10", "train.warmup_steps must be >= 0, got -10"),
    ("train.threads=-1", "train.threads must be >= 0, got -1"),
    ("train.device=banana", "train.device must be auto, cpu, cuda or cuda:N"),
    ("train.device=gpu", "got 'gpu'"),
    ("train.device=tpu", "got 'tpu'"),
    ("train.valid_bleu_sents=-1", "train.valid_bleu_sents must be >= 0, got -1"),
    ("decode.max_len_ratio=-1", r"decode.max_len_ratio must be in \[0, 1000\]"),
    ("decode.lenpen=-1e308", r"decode.lenpen must be in \[0, 10\], got -1e\+308"),
    ("decode.beam=0", "decode.beam must be >= 1, got 0"),
    ("model.hidden_size=2000000", r"model.hidden_size must be in \[1, 1048576\]"),
    ("train.plateau_factor=0", r"train.plateau_factor must be in \(0, 1\]"),
]


@pytest.mark.parametrize("override, message", BAD)
def test_bad_values_name_key_and_value(override, message):
    with pytest.raises(S2SError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize("override, message", BAD[:12])
def test_yaml_goes_through_the_same_check(tmp_path, override, message):
    key, value = override.split("=", 1)
    section, name = key.split(".")
    if value in ("inf", "nan"):
        value = "." + value  # YAML's spelling
    path = tmp_path / "c.yaml"
    path.write_text(f"{section}:\n  {name}: {value}\n")
    with pytest.raises(S2SError, match=message):
        load_config(path)


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 3e-3\n  min_lr: 1E-6\n  betas: [9e-1, .98]\n")
    cfg = load_config(path)
    assert cfg.train.lr == 3e-3 and cfg.train.min_lr == 1e-6
    assert cfg.train.betas == (0.9, 0.98)
    assert cfg == load_config(
        None, ["train.lr=3e-3", "train.min_lr=1E-6", "train.betas=[9e-1, .98]"]
    )


def test_defaults_and_every_recipe_pass_the_checks():
    from pathlib import Path

    load_config(None)
    for path in sorted(Path(__file__).parents[1].glob("recipes/*/*.yaml")):
        load_config(path)


def _bomb(levels: int = 9) -> str:
    """The classic 'billion laughs': 9**9 items in a few hundred bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        p, c = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly_in_one_short_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    bomb = _bomb() + "train:\n  lr: *i\n"  # the error message would print it
    assert len(bomb) < 600
    path.write_text(bomb)
    t0 = time.perf_counter()
    with pytest.raises(S2SError) as e:
        load_config(path)
    assert time.perf_counter() - t0 < 2
    assert "aliases expand it to over 10,000 values" in str(e.value)
    assert len(str(e.value)) < 200 and "\n" not in str(e.value)
    path.write_text("x: &x [*x]\n")
    with pytest.raises(S2SError, match="an alias refers to itself"):
        load_config(path)
    path.write_text("".join(f"k{i}: &a{i} 1\n" for i in range(102)))
    path.write_text(path.read_text() + "".join(f"v{i}: *a{i}\n" for i in range(102)))
    with pytest.raises(S2SError, match="more than 100 aliases"):
        load_config(path)


def test_a_few_aliases_are_fine_and_a_bad_value_prints_short(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: &x 0.5\n  min_lr: *x\n")
    assert load_config(path).train.min_lr == 0.5
    path.write_text("model:\n  hidden_size: [" + ", ".join(["[1, 2, 3]"] * 900) + "]\n")
    with pytest.raises(S2SError, match="model.hidden_size must be int") as e:
        load_config(path)
    assert len(str(e.value)) < 200


def test_deep_nesting_and_huge_integers_are_one_line_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(S2SError, match=r"c.yaml: not valid YAML: line 2: nested deep"):
        load_config(path)
    path.write_text("train:\n  seed: " + "7" * 5000 + "\n")
    with pytest.raises(S2SError, match="line 2: an integer of 5000 digits") as e:
        load_config(path)
    assert len(str(e.value)) < 200
    with pytest.raises(S2SError) as e:
        load_config(None, ["train.seed=" + "7" * 5000])
    assert len(str(e.value)) < 200 and "train.seed" in str(e.value)
    with pytest.raises(S2SError) as e:
        load_config(None, ["train.betas=" + "[" * 5000])
    assert len(str(e.value)) < 200 and "train.betas" in str(e.value)


def test_bad_yaml_and_huge_files_are_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: [1, 2\n")
    with pytest.raises(S2SError) as e:
        load_config(path)
    assert "\n" not in str(e.value) and "c.yaml: not valid YAML: line" in str(e.value)
    path.write_bytes(b"# " + b"x" * (2 << 20))
    with pytest.raises(S2SError, match="too large for a config"):
        load_config(path)
    path.write_bytes(b"train:\n  lr: \xff\n")
    with pytest.raises(S2SError, match=r"not valid UTF-8 \(byte 0xff"):
        load_config(path)


def test_decoding_options_pass_the_same_check_named_by_flag():
    from s2s.config import check_option, with_options

    cfg = Config()
    labels = {"decode.beam": "--beam", "decode.lenpen": "--lenpen"}
    out = with_options(cfg, {"decode.beam": 3, "decode.lenpen": None}, labels)
    assert out.decode.beam == 3 and cfg.decode.beam == 5  # a copy
    for values, message in [
        ({"decode.beam": 0}, "--beam must be >= 1, got 0"),
        ({"decode.beam": -1}, "--beam must be >= 1, got -1"),
        ({"decode.lenpen": -1e308}, r"--lenpen must be in \[0, 10\]"),
        ({"decode.lenpen": float("nan")}, "--lenpen must be a finite number"),
        ({"decode.nbest": 0}, "decode.nbest must be >= 1"),
    ]:
        with pytest.raises(S2SError, match=message):
            with_options(cfg, values, labels)
    assert check_option("train.device", "cuda:1", "--device") == "cuda:1"
    with pytest.raises(S2SError, match="--device must be auto, cpu, cuda or cuda:N"):
        check_option("train.device", "tpu", "--device")
    with pytest.raises(S2SError, match="--threads must be >= 0, got -1"):
        check_option("train.threads", -1, "--threads")


def test_bad_value_through_the_cli_is_one_line_subprocess(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "s2s", "config", "show", "--set", "train.lr=nan"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr == "error: train.lr must be a finite number, got nan\n"


def test_config_show_says_what_each_key_takes():
    from s2s.config import describe_config

    text = describe_config()
    assert "# peak learning rate (AdamW) [float, > 0]" in text
    assert "[str: auto, cpu, cuda or cuda:N]" in text
    assert "[int, in [0, 4294967295]]" in text


def test_valid_bleu_sents_zero_decodes_the_whole_validation_set():
    from s2s.config import load_config

    assert load_config(None, []).train.decoded(1421) == 1421  # the default: all
    assert load_config(None, ["train.valid_bleu_sents=300"]).train.decoded(1421) == 300
    assert load_config(None, ["train.valid_bleu_sents=300"]).train.decoded(177) == 177
