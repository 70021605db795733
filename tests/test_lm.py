"""The LSTM language model: the model, the token stream, truncated BPTT training with
a carried state, exact resume, monolingual prep, and `s2s score ppl`."""

import contextlib
import copy
import math

import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY
from s2s.checkpoint import load_checkpoint, save_checkpoint
from s2s.cli import app
from s2s.config import load_config
from s2s.data.binarized import ShardWriter, TokenArray
from s2s.data.prep_mono import MonoPrepOptions, prep_mono
from s2s.data.stream import segment_bounds, stream_batch, stream_rows, token_stream
from s2s.data.vocab import BOS, EOS, PAD, Vocab
from s2s.models.lm import LSTMLM
from s2s.train.lm_task import LMTask, stream_nll
from s2s.train.trainer import Trainer

runner = CliRunner()

TINY_LM = [
    "train.device=cpu",
    "model.param_init=0",  # per-layer defaults: uniform 0.1 is too small this tiny
    "model.task=lm",
    "model.emb_dim=16",
    "model.hidden_size=32",
    "model.dropout=0.1",
    "model.label_smoothing=0.0",
    "train.batch_tokens=64",
    "train.bptt=4",
    "train.lr=0.01",
    "train.warmup_steps=10",
    "train.valid_every=1000",
    "train.save_every=1000",
    "train.log_every=5",
    "train.threads=1",
]
CYCLE = ["one two three", "four five red", "blue green house", "tree dog cat"]


def _lm_cfg(*extra):
    return load_config(None, [*TINY_LM, *extra])


@pytest.fixture(scope="module")
def cycle_bin(tmp_path_factory):
    """Four lines repeating in a cycle: a line's first word is only predictable
    from the line before it."""
    root = tmp_path_factory.mktemp("cycle")
    for split, n in (("train", 300), ("valid", 40)):
        text = "".join(CYCLE[k % len(CYCLE)] + "\n" for k in range(n))
        (root / f"{split}.en").write_text(text)
    opts = MonoPrepOptions(
        lang="en", train=str(root / "train"), valid=str(root / "valid"), vocab_size=24
    )
    prep_mono(opts, root / "bin", log=lambda m: None)
    return root / "bin"


# --- the model ------------------------------------------------------------------


@pytest.mark.parametrize("tie,E,H", [(True, 6, 7), (True, 7, 7), (False, 6, 7)])
def test_step_matches_forward_and_state_is_batch_first(tie, E, H):
    torch.manual_seed(0)
    lm = LSTMLM(11, E, H, layers=2, dropout=0.0, tie=tie).eval()
    tokens = torch.randint(0, 11, (3, 5))
    state = lm.init_state(3, "cpu")
    assert state[0].shape == state[1].shape == (3, 2, H)
    logits, (h, c) = lm(tokens, state)
    assert logits.shape == (3, 5, 11) and h.shape == (3, 2, H)
    s = lm.init_state(3, "cpu")
    for t in range(5):
        logp, s = lm.step(tokens[:, t], s)
        assert logp.dtype == torch.float32
        torch.testing.assert_close(logp, logits[:, t].log_softmax(-1))
    torch.testing.assert_close(s[0], h)
    # Rows are independent: a state reordered on dim 0 scores reordered rows.
    perm = torch.tensor([2, 0, 1])
    logp_perm, _ = lm.step(tokens[perm, 0], tuple(x[perm] for x in state))
    torch.testing.assert_close(logp_perm, lm.step(tokens[:, 0], state)[0][perm])


# --- the stream -----------------------------------------------------------------


def _token_array(tmp_path, sentences):
    w = ShardWriter(tmp_path, "x", "uint16", shard_size=2)  # several shards
    for s in sentences:
        w.add(s)
    return TokenArray(tmp_path, w.close(), "uint16")


def test_stream_rows_predict_every_token_once(tmp_path):
    sentences = [[5, 6], [7], [8, 9, 10], [11, 12], [13]]
    stream = token_stream(_token_array(tmp_path, sentences))
    expect = [t for s in sentences for t in (BOS, *s, EOS)]
    assert stream.tolist() == expect
    for rows_n, bptt in ((1, 4), (3, 2), (4, 5)):
        rows = stream_rows(stream, rows_n)
        targets = [[] for _ in range(rows_n)]
        for bounds in segment_bounds(rows.shape[1] - 1, bptt):
            b = stream_batch(rows, bounds)
            assert b.inputs.shape == b.targets.shape
            for r in range(rows_n):
                targets[r] += b.targets[r].tolist()
        got = [t for row in targets for t in row if t != PAD]
        assert got == [t for t in expect[1:] if t != BOS]


def test_varied_segments_are_a_function_of_seed_and_epoch():
    a = segment_bounds(1000, 20, vary=True, seed=1, epoch=0)
    assert [x.tolist() for x in a] == [
        x.tolist() for x in segment_bounds(1000, 20, vary=True, seed=1, epoch=0)
    ]
    b = segment_bounds(1000, 20, vary=True, seed=1, epoch=1)
    assert [x.tolist() for x in a] != [x.tolist() for x in b]
    for segs in (a, b):
        starts = [int(s[0]) for s in segs]
        ends = [int(s[1]) for s in segs]
        assert starts[0] == 0 and ends[-1] == 1000 and starts[1:] == ends[:-1]
        assert len({e - s for s, e in zip(starts, ends, strict=True)}) > 3


# --- training -------------------------------------------------------------------


def test_carried_state_beats_reset_state(cycle_bin, tmp_path):
    cfg = _lm_cfg("model.dropout=0.0", "train.schedule=constant", "train.max_steps=120")
    trainer = Trainer(cfg, cycle_bin, tmp_path / "run")
    trainer.run()
    model, rows = trainer.model.eval(), trainer.task.rows["valid"]
    ppl = {}
    for carry in (True, False):
        nll, n = stream_nll(
            model, rows, 4, torch.device("cpu"), contextlib.nullcontext(), carry
        )
        ppl[carry] = math.exp(nll / n)
    # Reset, a line's first word is a guess among the 4 lines' (5.2 here, 3.98 on
    # another machine); carried, the line before tells it.
    assert ppl[True] < 2.0 < 3.0 < ppl[False], ppl


def test_gradient_stops_at_segment_borders(lm_bin):
    task = LMTask(_lm_cfg("model.dropout=0.0"), lm_bin)
    torch.manual_seed(0)
    model = task.build_model()
    amp = contextlib.nullcontext()
    batches = task.batches("train", seed=1, epoch=0)

    def run(i):
        model.zero_grad()
        b = task.collate("train", batches[i])
        task.forward_backward(model, b, 1.0, lambda x: x.backward(), amp)
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    run(0)
    carried = task._state
    assert not carried[0].requires_grad and carried[0].grad_fn is None
    assert carried[0].abs().sum() > 0  # a real state, not zeros
    got = run(1)
    # The same segment from the same (detached) start state, on its own.
    model.zero_grad()
    b = task.collate("train", batches[1])
    logits, _ = model(b.inputs, tuple(s.clone() for s in carried))
    torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        b.targets.reshape(-1),
        ignore_index=PAD,
        reduction="sum",
    ).backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(got[k], p.grad, msg=k)


def test_accumulated_segments_carry_the_state_in_order(lm_bin, tmp_path):
    """One step of accum_steps=3 runs segments 0, 1, 2, each from the state the
    one before ended in (the weights only change after the step)."""
    cfg = _lm_cfg("model.dropout=0.0", "train.accum_steps=3", "train.max_steps=1")
    trainer = Trainer(cfg, lm_bin, tmp_path / "run")
    model = copy.deepcopy(trainer.model)  # the weights all three segments saw
    trainer.run()
    assert trainer.state.batch == 3
    task = trainer.task
    state = model.init_state(task.num_rows, "cpu")
    with torch.no_grad():
        for ids in task.batches("train", cfg.train.seed, 0)[:3]:
            _, state = model(task.collate("train", ids).inputs, state)
    for got, want in zip(task._state, state, strict=True):
        torch.testing.assert_close(got, want)


def test_a_non_finite_state_is_not_carried(lm_bin):
    """The trainer skips a non-finite step; the state it left must not poison the
    steps after it."""
    task = LMTask(_lm_cfg("model.dropout=0.0"), lm_bin)
    torch.manual_seed(0)
    model = task.build_model()
    amp = contextlib.nullcontext()
    batches = task.batches("train", seed=1, epoch=0)
    b = task.collate("train", batches[1])
    nan = model.init_state(b.inputs.size(0), "cpu")
    task._state = tuple(torch.full_like(s, math.nan) for s in nan)
    loss, _ = task.forward_backward(model, b, 1.0, lambda x: None, amp)
    assert math.isnan(loss) and task._state is None
    loss, _ = task.forward_backward(model, b, 1.0, lambda x: None, amp)
    assert math.isfinite(loss) and task._state is not None


def _train_lm(data, out, steps, resume=False):
    cfg = _lm_cfg(
        f"train.max_steps={steps}",
        "train.batch_tokens=640",  # 80 streams of ~36 tokens: ~5 batches an epoch
        "train.bptt=8",
        "train.bptt_random=true",
        "train.valid_every=4",
        "train.save_every=3",
    )
    Trainer(cfg, data, out, resume=resume).run()
    return load_checkpoint(out / "last.pt")


def test_resume_mid_epoch_continues_the_stream_exactly(lm_bin, tmp_path):
    straight = _train_lm(lm_bin, tmp_path / "a", 9)
    half = _train_lm(lm_bin, tmp_path / "b", 5)
    assert half["state"]["batch"] > 0  # stopped inside an epoch...
    assert half["task_state"]["hidden"][0].abs().sum() > 0  # ...with a state
    resumed = _train_lm(lm_bin, tmp_path / "b", 9, resume=True)
    assert straight["state"]["epoch"] >= 1
    assert straight["state"] == {
        **resumed["state"],
        "seconds": straight["state"]["seconds"],
    }
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    for a, b in zip(
        straight["task_state"]["hidden"], resumed["task_state"]["hidden"], strict=True
    ):
        assert torch.equal(a, b)


def test_lm_task_needs_monolingual_data(toy_bin, lm_bin, tmp_path):
    from s2s.errors import S2SError

    with pytest.raises(S2SError, match="needs monolingual data"):
        Trainer(_lm_cfg("train.max_steps=1"), toy_bin, tmp_path / "a")
    with pytest.raises(S2SError, match="set model.task=lm"):
        Trainer(load_config(None, [*TINY, "train.max_steps=1"]), lm_bin, tmp_path / "b")
    with pytest.raises(S2SError, match="train.bptt must be >= 2 for the lm"):
        _lm_cfg("train.bptt=1")


# --- prep -----------------------------------------------------------------------


def test_prep_mono_reuses_a_vocabulary(toy_raw, toy_bin, tmp_path):
    base = ["prep", "text", "--src", "en", "--train", str(toy_raw / "train")]
    base += ["--valid", str(toy_raw / "valid")]
    spm = toy_bin / "spm.en.model"
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--spm-model", spm])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "spm.en.model").read_bytes() == spm.read_bytes()
    data = LMTask(_lm_cfg(), tmp_path / "a").data["train"]
    assert len(data) == 300 and data.meta["task"] == "monolingual"

    r = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--vocab-size", "30"])
    assert r.exit_code == 0, r.output
    assert len(Vocab.load(tmp_path / "b" / "spm.en.model")) <= 30

    r = runner.invoke(app, [*base, "--out", str(tmp_path / "c"), "--tgt", "de"])
    assert r.exit_code == 0, r.output  # still parallel prep
    r = runner.invoke(
        app, [*base, "--out", str(tmp_path / "d"), "--tgt", "de", "--spm-model", spm]
    )
    assert r.exit_code == 1 and "monolingual" in r.output


def test_prep_mono_rejects_empty_lines_unless_dropped(tmp_path):
    (tmp_path / "t.en").write_text("a b\n\nc d\n")
    (tmp_path / "v.en").write_text("a\n")
    base = ["prep", "text", "--src", "en", "--train", str(tmp_path / "t")]
    base += ["--valid", str(tmp_path / "v"), "--vocab-size", "12"]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "t.en:2: empty line" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "o"), "--drop-empty"])
    assert r.exit_code == 0, r.output
    assert "dropped 1 empty" in r.output


# --- s2s score ppl --------------------------------------------------------------


@pytest.fixture(scope="module")
def uniform_lm(lm_bin, tmp_path_factory):
    """A checkpoint of an LM whose every prediction is uniform: perplexity = V."""
    task = LMTask(_lm_cfg(), lm_bin)
    model = task.build_model()
    with torch.no_grad():
        model.output.weight.zero_()  # tied: the embeddings too
        model.output.bias.zero_()
    path = tmp_path_factory.mktemp("uniform") / "lm.pt"
    payload = {"config": task.cfg.to_dict(), **task.checkpoint_extras()}
    save_checkpoint(path, {**payload, "model": model.state_dict()})
    return path, len(task.vocab)


@pytest.mark.parametrize("stream", [False, True])
def test_score_ppl_of_a_uniform_lm_is_the_vocabulary_size(uniform_lm, toy_raw, stream):
    path, V = uniform_lm
    args = ["score", "ppl", "--checkpoint", str(path)]
    args += ["--input", str(toy_raw / "valid.en")] + (["--stream"] if stream else [])
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    vocab = Vocab(load_checkpoint(path)["vocab"]["tgt"])
    lines = (toy_raw / "valid.en").read_text().splitlines()
    tokens = sum(len(s) + 1 for s in vocab.encode(lines))  # with EOS
    assert f"ppl {V:.2f}" in r.output and f"{tokens} tokens" in r.output
    assert "20 lines, 0 unknown" in r.output


def test_score_ppl_errors_are_one_line(uniform_lm, toy_bin, tmp_path):
    path, _ = uniform_lm
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\n")
    r = runner.invoke(app, ["score", "ppl", "--checkpoint", str(path), "--input", bad])
    assert r.exit_code == 1 and "bad.txt:2: not valid UTF-8" in r.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    r = runner.invoke(
        app, ["score", "ppl", "--checkpoint", str(path), "--input", empty]
    )
    assert r.exit_code == 1 and "no text to score" in r.output
    assert "Traceback" not in r.output
