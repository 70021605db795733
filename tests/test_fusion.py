"""Shallow fusion with an LSTM LM: translation beam search, CTC prefix beam search,
the joint and attention searches of a joint speech model, the vocabulary check, and
`--lm` / `--lm-weight` through the CLI."""

import copy

import pytest
import torch
from test_ctc import _brute_force, _log_probs
from typer.testing import CliRunner

from conftest import TINY
from s2s.checkpoint import save_checkpoint, target_vocab
from s2s.cli import app
from s2s.config import ModelConfig, load_config
from s2s.data.prep_mono import MonoPrepOptions, prep_mono
from s2s.data.stream import MonoData
from s2s.data.vocab import BOS, EOS, Vocab
from s2s.decode.ctc import ctc_prefix_beam_search
from s2s.decode.fusion import LMScorer, load_lm
from s2s.decode.search import beam_search
from s2s.errors import S2SError
from s2s.models.lm import LSTMLM
from s2s.models.seq2seq import build_model
from s2s.train.trainer import Trainer

runner = CliRunner()
V = 15
X = 7  # the token a biased LM insists on

TINY_LM = [
    "model.param_init=0",  # per-layer defaults: uniform 0.1 is too small this tiny
    "model.task=lm",
    "model.emb_dim=16",
    "model.hidden_size=16",
    "model.label_smoothing=0.0",
    "train.batch_tokens=64",
    "train.bptt=8",
    "train.lr=0.01",
    "train.warmup_steps=5",
    "train.max_steps=10",
    "train.valid_every=1000",
    "train.save_every=1000",
    "train.threads=1",
]


def _lm(seed=0, vocab=V, bias_to=None):
    torch.manual_seed(seed)
    lm = LSTMLM(vocab, 6, 8, layers=2, dropout=0.0, tie=False).eval()
    if bias_to is not None:
        with torch.no_grad():
            lm.output.bias[bias_to] += 5.0
    return lm


@pytest.fixture(scope="module")
def mt():
    torch.manual_seed(3)
    cfg = ModelConfig(
        emb_dim=8, enc_hidden_size=8, hidden_size=16, dropout=0.0, param_init=0.0
    )
    return build_model(cfg, V, V).eval()


@pytest.fixture(scope="module")
def mt_eos(mt):
    """EOS likely enough that hypotheses end at mixed times."""
    m = copy.deepcopy(mt)
    with torch.no_grad():
        m.decoder.output.bias[EOS] += 2.0
    return m


def _src(B=5, S=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(3, S + 1, (B,), generator=g)
    src = torch.randint(4, V, (B, int(lens.max())), generator=g)
    for i, n in enumerate(lens):
        src[i, n - 1] = EOS
        src[i, n:] = 0
    return src, lens


# --- translation beam search ----------------------------------------------------


def test_beam_weight_zero_equals_no_lm(mt_eos):
    src, lens = _src()
    plain = beam_search(mt_eos, src, lens, lens * 2, beam=3, nbest=3)
    fused = beam_search(
        mt_eos, src, lens, lens * 2, beam=3, nbest=3, lm=_lm(), lm_weight=0
    )
    assert plain == fused


def test_beam_strong_lm_takes_over(mt):
    src, lens = _src(seed=1)
    plain = beam_search(mt, src, lens, lens * 2, beam=3)
    lm = _lm(bias_to=X)
    fused = beam_search(mt, src, lens, lens * 2, beam=3, lm=lm, lm_weight=1.0)
    assert any(set(h[0][0]) != {X} for h in plain)
    for (tokens, _), n in zip((h[0] for h in fused), lens.tolist(), strict=True):
        assert tokens == [X] * (2 * n)  # EOS is unlikely to the LM too


def test_beam_fused_score_is_model_plus_weighted_lm(mt):
    """The returned score (lenpen 0) is the sum of both models' log-probabilities of
    the tokens and EOS, the LM's weighted."""
    src, lens = _src(B=1, seed=2)
    lm, w = _lm(seed=5), 0.7
    (tokens, score), *_ = beam_search(
        mt, src, lens, lens * 2, beam=4, lenpen=0.0, lm=lm, lm_weight=w
    )[0]
    seq = torch.tensor([BOS, *tokens, EOS])
    with torch.no_grad():
        mt_logp = mt(src, lens, seq[None, :-1]).log_softmax(-1)[0]  # (T, V)
        lm_logits, _ = lm(seq[None, :-1], lm.init_state(1, "cpu"))
        lm_logp = lm_logits.log_softmax(-1)[0]
    steps = torch.arange(len(seq) - 1)
    expect = mt_logp[steps, seq[1:]].sum() + w * lm_logp[steps, seq[1:]].sum()
    assert score == pytest.approx(float(expect), abs=1e-4)


@pytest.mark.parametrize("K", [1, 3])
def test_beam_fusion_batched_equals_one_by_one(mt_eos, K):
    mt = mt_eos
    src, lens = _src(seed=3)
    lm = _lm(seed=1)
    batched = beam_search(
        mt, src, lens, lens * 2, beam=K, nbest=K, lm=lm, lm_weight=0.5
    )
    for i in range(src.size(0)):
        n = int(lens[i])
        alone = beam_search(
            mt,
            src[i : i + 1, :n],
            lens[i : i + 1],
            lens[i : i + 1] * 2,
            beam=K,
            nbest=K,
            lm=lm,
            lm_weight=0.5,
        )[0]
        assert [h[0] for h in alone] == [h[0] for h in batched[i]]
        assert [h[1] for h in alone] == pytest.approx([h[1] for h in batched[i]])


# --- CTC prefix beam search -----------------------------------------------------


def test_ctc_weight_zero_equals_no_lm():
    lp = _log_probs(0, 3, 12, V, peak=3.0)
    lengths = torch.tensor([12, 9, 5])
    plain = ctc_prefix_beam_search(lp, lengths, beam=4)
    scorer = LMScorer(_lm(), 0.0)
    assert ctc_prefix_beam_search(lp, lengths, 4, prefix_scorer=scorer) == plain


def test_ctc_strong_lm_takes_over():
    lp = _log_probs(1, 3, 10, V, peak=3.0)
    lengths = torch.tensor([10, 10, 7])
    plain = ctc_prefix_beam_search(lp, lengths, beam=4, token_beam=V - 1)
    scorer = LMScorer(_lm(bias_to=X), 3.0)
    fused = ctc_prefix_beam_search(
        lp, lengths, beam=4, token_beam=V - 1, prefix_scorer=scorer
    )
    assert any(set(h[0][0]) - {X} for h in plain)
    for hyps in fused:
        assert hyps[0][0] and set(hyps[0][0]) == {X}


def test_ctc_fusion_is_exact_with_a_wide_beam():
    """Scores (LM tokens and EOS included) match a sum over all alignments."""
    lm, w = _lm(seed=2, vocab=4), 0.6  # CTC symbols 0 (blank), 1, 2; the LM's EOS 3
    T = 5

    def lm_score(seq):
        tokens = torch.tensor([BOS, *seq])
        with torch.no_grad():
            logits, _ = lm(tokens[None], lm.init_state(1, "cpu"))
        logp = logits[0].log_softmax(-1)  # (len + 1, 4)
        return w * float(logp[torch.arange(len(seq) + 1), [*seq, EOS]].sum())

    lp = _log_probs(4, 1, T, 3)
    exact = _brute_force(lp[0], extra=lm_score)
    (got,) = ctc_prefix_beam_search(
        lp, torch.tensor([T]), beam=64, prefix_scorer=LMScorer(lm, w)
    )
    assert {tuple(seq) for seq, _ in got} == set(exact)
    for seq, score in got:
        assert score == pytest.approx(exact[tuple(seq)], abs=1e-4)


# --- checkpoints and the CLI ----------------------------------------------------


@pytest.fixture(scope="module")
def mt_run(toy_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("mt-run")
    cfg = load_config(None, [*TINY, "train.max_steps=6", "train.valid_bleu=false"])
    Trainer(cfg, toy_bin, out).run()
    return out / "best.pt"


def _train_lm(toy_raw, out, **vocab):
    opts = MonoPrepOptions(
        lang="en",
        train=str(toy_raw / "train"),
        valid=str(toy_raw / "valid"),
        vocab_size=40,
        **vocab,
    )
    prep_mono(opts, out / "bin", log=lambda m: None)
    Trainer(load_config(None, TINY_LM), out / "bin", out / "run").run()
    return out / "run" / "best.pt"


@pytest.fixture(scope="module")
def lms(toy_raw, mt_run, tmp_path_factory):
    """An LM sharing the translation model's target vocabulary, and one with its own."""
    root = tmp_path_factory.mktemp("lms")
    shared = _train_lm(
        toy_raw, root / "shared", vocab_from=str(mt_run), vocab=target_vocab(mt_run)
    )
    own = _train_lm(toy_raw, root / "own")
    return shared, own


def test_load_lm_checks_the_vocabulary(mt_run, lms):
    from s2s.checkpoint import load_model

    _, _, _, tgt_vocab = load_model(mt_run)
    assert isinstance(load_lm(lms[0], tgt_vocab), LSTMLM)
    with pytest.raises(S2SError, match=r"differs from that of .*best\.pt \(") as e:
        load_lm(lms[1], tgt_vocab, model_path=mt_run)
    assert str(lms[1]) in str(e.value)
    with pytest.raises(S2SError, match="--lm needs a lm model"):
        load_lm(mt_run, tgt_vocab)


def test_translate_with_lm_through_the_cli(mt_run, lms, toy_raw, tmp_path):
    base = ["translate", "--checkpoint", str(mt_run), "--input"]
    base += [str(toy_raw / "test.de"), "--beam", "3"]
    outs = {}
    for name, extra in {
        "plain": [],
        "w0": ["--lm", str(lms[0]), "--lm-weight", "0"],
        "w1": ["--lm", str(lms[0]), "--lm-weight", "1.0"],
    }.items():
        r = runner.invoke(app, [*base, "--output", str(tmp_path / name), *extra])
        assert r.exit_code == 0, r.output
        outs[name] = (tmp_path / name).read_text()
    assert outs["w0"] == outs["plain"] and len(outs["plain"].splitlines()) == 20
    assert "LM" in r.output and "weight 1" in r.output
    r = runner.invoke(app, [*base, "--beam", "1", "--lm", str(lms[0])])
    assert r.exit_code == 1 and "--lm needs --lm-weight" in r.output
    r = runner.invoke(
        app, [*base, "--beam", "1", "--lm", str(lms[0]), "--lm-weight", "0.5"]
    )
    assert r.exit_code == 0, r.output  # beam search of width 1
    r = runner.invoke(app, [*base, "--lm", str(lms[1]), "--lm-weight", "0.3"])
    assert r.exit_code == 1 and "error:" in r.output and "differs" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, [*base, "--lm-weight", "0.3"])
    assert r.exit_code == 1 and "--lm-weight needs --lm" in r.output


def test_transcribe_with_lm_through_the_cli(tone_run, tone_raw, lms, tmp_path):
    from toy import tone_texts

    raw = tmp_path / "raw"
    raw.mkdir()
    for split, n, seed in (("train", 200, 5), ("valid", 20, 6)):
        (raw / f"{split}.txt").write_text("\n".join(tone_texts(n, seed)) + "\n")
    opts = MonoPrepOptions(
        lang="txt",
        train=str(raw / "train"),
        valid=str(raw / "valid"),
        vocab_from=str(tone_run / "best.pt"),
        vocab=target_vocab(tone_run / "best.pt"),
    )
    prep_mono(opts, tmp_path / "bin", log=lambda m: None)
    Trainer(load_config(None, TINY_LM), tmp_path / "bin", tmp_path / "lm").run()
    lm = str(tmp_path / "lm" / "best.pt")

    ckpt = str(tone_run / "best.pt")
    base = [
        "transcribe",
        "--checkpoint",
        ckpt,
        "--manifest",
        str(tone_raw / "valid.tsv"),
    ]
    outs = {}
    for name, extra in {
        "plain": ["--beam", "3"],
        "w0": ["--beam", "3", "--lm", lm, "--lm-weight", "0"],
        "beam1": ["--beam", "1", "--lm", lm, "--lm-weight", "0.5"],
    }.items():
        r = runner.invoke(app, [*base, "--output", str(tmp_path / name), *extra])
        assert r.exit_code == 0, r.output
        outs[name] = (tmp_path / name).read_text()
    assert outs["w0"] == outs["plain"] and len(outs["plain"].splitlines()) == 12
    r = runner.invoke(app, [*base, "--lm", str(lms[0]), "--lm-weight", "0.1"])
    assert r.exit_code == 1 and "differs" in r.output and "Traceback" not in r.output


def test_transcribe_ctc_length_bonus_through_the_cli(tone_run, tone_raw, tmp_path):
    base = ["transcribe", "--checkpoint", str(tone_run / "best.pt")]
    base += ["--manifest", str(tone_raw / "valid.tsv"), "--beam", "3"]
    outs = {}
    for name, extra in {
        "plain": [],
        "b0": ["--length-bonus", "0"],
        "b10": ["--length-bonus", "10"],
        "greedy10": ["--length-bonus", "10", "--beam", "1"],
    }.items():
        r = runner.invoke(app, [*base, "--output", str(tmp_path / name), *extra])
        assert r.exit_code == 0, r.output
        outs[name] = [
            line.split("\t")[1] for line in (tmp_path / name).read_text().splitlines()
        ]
    assert outs["b0"] == outs["plain"]

    def chars(texts):
        return sum(len(t.replace(" ", "")) for t in texts)

    # A bonus of 10 per token outweighs any frame's log-probability: more tokens.
    assert chars(outs["b10"]) > chars(outs["plain"])
    assert chars(outs["greedy10"]) > chars(outs["plain"])


def _lm_checkpoint(path, proto, bias_to=None):
    """An untrained tiny LM over the vocabulary `proto`, saved as a checkpoint
    (`bias_to`: a token it insists on)."""
    cfg = load_config(None, ["model.task=lm", "model.emb_dim=8", "model.hidden_size=8"])
    torch.manual_seed(0)
    lm = build_model(cfg.model, 0, len(Vocab(proto)))
    if bias_to is not None:
        with torch.no_grad():
            lm.output.bias[bias_to] += 10.0
    payload = {"config": cfg.to_dict(), "vocab": {"tgt": proto}}
    save_checkpoint(path, {**payload, "model": lm.state_dict()})
    return str(path)


def test_transcribe_joint_and_attention_with_lm(joint_run, tone_raw, lm_bin, tmp_path):
    from s2s.checkpoint import load_speech_model
    from s2s.decode.transcribe import Transcriber

    ckpt = str(joint_run / "best.pt")
    model, cfg, vocab, features, cmvn = load_speech_model(ckpt)
    x = vocab.sp.piece_to_id("a")
    assert vocab.sp.id_to_piece(x) == "a"
    same = _lm_checkpoint(tmp_path / "same.pt", vocab.proto)
    biased = _lm_checkpoint(tmp_path / "biased.pt", vocab.proto, bias_to=x)
    other = _lm_checkpoint(
        tmp_path / "other.pt", MonoData(lm_bin, "train").vocab().proto
    )

    wavs = [str(tone_raw / "wav" / f"train00{k}.wav") for k in range(4)]
    base = ["transcribe", "--checkpoint", ckpt, *wavs, "--beam", "3", "--device", "cpu"]
    for mode in ("joint", "attention"):
        outs = {}
        for name, extra in {
            "plain": [],
            "w0": ["--lm", same, "--lm-weight", "0"],
            "biased": ["--lm", biased, "--lm-weight", "1"],
        }.items():
            r = runner.invoke(app, [*base, "--mode", mode, *extra])
            assert r.exit_code == 0, r.output
            outs[name] = [line.split("\t")[1] for line in r.stdout.splitlines()]
        assert outs["w0"] == outs["plain"], mode
        assert "".join(outs["biased"]).count("a") > "".join(outs["plain"]).count("a")
        assert f"mode {mode}, beam 3, cpu, LM {biased} weight 1)" in r.stderr

    # The joint and attention searches step the LM; CTC gets it as a scorer.
    lm = load_lm(same, vocab)
    for mode, scorer in (("joint", False), ("attention", False), ("ctc", True)):
        cfg.decode.mode = mode
        cpu = torch.device("cpu")
        tr = Transcriber(model, vocab, features, cmvn, cfg.decode, cpu, "fp32", lm)
        assert tr.lm is lm and (tr.scorer is not None) == scorer

    r = runner.invoke(
        app, [*base, "--mode", "joint", "--lm", other, "--lm-weight", "1"]
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert r.output.startswith("error: the vocabulary of LM") and "differs" in r.output
