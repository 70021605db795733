import pytest

from s2s.config import Config, config_from_dict, describe_config, load_config
from s2s.errors import S2SError


def test_defaults_roundtrip_through_dict():
    cfg = Config()
    assert config_from_dict(cfg.to_dict()) == cfg


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "model:\n  hidden_size: 64\n  enc_hidden_size: 32\ntrain:\n  lr: 0.01\n"
    )
    cfg = load_config(
        path, ["train.lr=3e-3", "model.input_feed=true", "train.betas=[0.8, 0.9]"]
    )
    assert cfg.model.hidden_size == 64
    assert cfg.train.lr == pytest.approx(3e-3)
    assert cfg.model.input_feed is True
    assert cfg.train.betas == (0.8, 0.9)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.hiden_size=3", "did you mean 'model.hidden_size'"),
        ("modle.hidden_size=3", "unknown config section 'modle'"),
        ("model.hidden_size=abc", "model.hidden_size must be int"),
        ("model.hidden_size=1.5", "model.hidden_size must be int"),
        ("model.attention=bahdanau", "must be one of dot, general, mlp"),
        ("model.input_feed=maybe", "model.input_feed must be bool"),
        ("train.precision=fp8", "must be one of fp32, bf16, fp16"),
        ("decode.nbest=9", "cannot exceed decode.beam"),
        ("model.dropout=1.5", "model.dropout must be in"),
        ("model.param_init=-0.1", "model.param_init must be >= 0"),
        ("nodot", "section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(S2SError, match=message):
        load_config(None, [override])


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  max_step: 5\n")
    with pytest.raises(
        S2SError, match="train.max_step.*did you mean 'train.max_steps'"
    ):
        load_config(path)


def test_dot_attention_needs_matching_sizes():
    with pytest.raises(S2SError, match="attention=dot needs"):
        load_config(None, ["model.attention=dot", "model.hidden_size=100"])


def test_describe_lists_every_key_with_help():
    text = describe_config()
    for key in ("emb_dim", "bptt", "precision", "lenpen", "max_len_ratio"):
        assert f"  {key}:" in text
    lines = [line for line in text.splitlines() if line.startswith("  ")]
    helps, keys = lines[0::2], lines[1::2]
    assert all(h.startswith("  # ") for h in helps)
    assert not any(k.startswith("  #") for k in keys)


def test_one_key_for_truncated_bptt_and_the_old_name(tmp_path, capsys):
    """train.bptt serves translation and the LM; train.tbptt_steps still works,
    with a warning; configs that older s2s wrote whole (checkpoints) keep meaning
    what they meant."""
    assert load_config(None, ["train.bptt=4"]).train.bptt == 4
    assert load_config(None, ["train.tbptt_steps=4"]).train.bptt == 4
    assert "train.tbptt_steps is deprecated: use train.bptt" in capsys.readouterr().err
    old = tmp_path / "old.yaml"
    old.write_text("train:\n  tbptt_steps: 3\n")
    assert load_config(old).train.bptt == 3
    assert "deprecated" in capsys.readouterr().err
    # Written whole by an older s2s: both keys, bptt=64 the LM's default.
    saved = {"train": {"tbptt_steps": 0, "bptt": 64}}
    assert config_from_dict({**saved, "model": {"task": "translation"}}).train.bptt == 0
    lm = config_from_dict(
        {"model": {"task": "lm"}, "train": {"tbptt_steps": 0, "bptt": 64}}
    )
    assert lm.train.bptt == 64
    ctc = config_from_dict({**saved, "model": {"task": "ctc"}})
    assert ctc.train.bptt == 0
    assert capsys.readouterr().err == ""  # no warning for a stored config
    with pytest.raises(S2SError, match="set it to 0 for ctc"):
        load_config(None, ["model.task=ctc", "train.bptt=8"])
