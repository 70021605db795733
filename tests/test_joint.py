"""Joint CTC/attention: the model and its loss, CTC prefix scoring, the joint beam
search (against attention greedy, one by one, CTC prefix beam search, rescoring with
an LM stand-in), and a tiny model trained on sine-tone words, decoded in all three
modes from the library and the CLI."""

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from s2s.checkpoint import load_checkpoint, load_speech_model
from s2s.cli import app
from s2s.config import ModelConfig, load_config
from s2s.data.vocab import BOS, EOS
from s2s.decode.ctc import ctc_prefix_beam_search
from s2s.decode.ctc_prefix import (
    CTCPrefixState,
    ctc_frames,
    ctc_prefix_init,
    ctc_prefix_scores,
)
from s2s.decode.joint import joint_beam_search
from s2s.decode.search import greedy_search
from s2s.decode.transcribe import Transcriber, segment_spans
from s2s.errors import S2SError
from s2s.metrics import wer_cer
from s2s.models.seq2seq import build_model
from s2s.models.speech import SpeechJoint, decoder_targets
from toy import tone_texts, tone_wave

V, NUM_MELS = 9, 12
LABELS = [1, 2, 4, 5, 6, 7, 8]  # every id but the blank (0) and EOS (3)


def _model(**kw):
    torch.manual_seed(0)
    cfg = ModelConfig(
        task="joint",
        num_mels=NUM_MELS,
        param_init=0.0,
        emb_dim=10,
        enc_hidden_size=7,
        hidden_size=16,
        subsample="stack",
        dropout=0.0,
        specaugment=False,
        **kw,
    )
    return build_model(cfg, 0, V)


def _feats(seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([40, 23, 31, 12])
    return torch.randn(4, 40, NUM_MELS, generator=g), lengths


# --- model ------------------------------------------------------------------------


def test_decoder_targets_add_bos_and_eos():
    targets = torch.tensor([[4, 5, 6], [5, 0, 0], [0, 0, 0]])
    tgt_in, tgt_out = decoder_targets(targets, torch.tensor([3, 1, 0]))
    assert tgt_in.tolist() == [[BOS, 4, 5, 6], [BOS, 5, 0, 0], [BOS, 0, 0, 0]]
    assert tgt_out.tolist() == [[4, 5, 6, EOS], [5, EOS, 0, 0], [EOS, 0, 0, 0]]


def test_shapes_and_the_weighted_loss():
    model = _model(ctc_weight=0.3, label_smoothing=0.1).eval()
    assert isinstance(model, SpeechJoint)
    feats, lengths = _feats()
    log_probs, out_lengths, mem, state = model.encode_both(feats, lengths)
    assert torch.equal(out_lengths, (lengths + 3) // 4)
    assert log_probs.shape == (4, 10, V) and mem.values.shape == (4, 10, 14)
    assert state.h.shape == (1, 4, 16)
    targets = torch.tensor([[4, 5, 6], [5, 5, 0], [7, 0, 0], [8, 4, 0]])
    loss = model.loss(feats, lengths, targets, torch.tensor([3, 2, 1, 2]))
    assert loss.num_inf.item() == 0
    assert torch.isfinite(loss.total) and loss.ctc > 0 and loss.attention > 0
    torch.testing.assert_close(loss.total, 0.3 * loss.ctc + 0.7 * loss.attention)


def test_joint_loss_goes_down_on_one_batch():
    model = _model()
    feats, lengths = _feats(1)
    targets = torch.tensor([[4, 5, 6, 7], [5, 5, 8, 0], [6, 0, 0, 0], [7, 8, 0, 0]])
    target_lengths = torch.tensor([4, 3, 1, 2])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        loss = model.loss(feats, lengths, targets, target_lengths)
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        losses.append((loss.total.item(), loss.ctc.item(), loss.attention.item()))
    first, last = losses[0], losses[-1]
    assert all(b < 0.5 * a for a, b in zip(first, last, strict=True)), losses[::10]


@pytest.mark.parametrize(
    "override, message",
    [
        (["model.task=joint", "model.ctc_weight=1.5"], "model.ctc_weight must be in"),
        (["model.task=ctc", "decode.mode=attention"], "needs an attention decoder"),
        (["decode.ctc_weight=-0.1"], "decode.ctc_weight must be in"),
    ],
)
def test_joint_config_checks(override, message):
    with pytest.raises(S2SError, match=message):
        load_config(None, override)


# --- CTC prefix scores ------------------------------------------------------------


def _log_probs(seed, B, T, peak=0.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g)
    if peak:
        hot = torch.randint(V, (B, T, 1), generator=g)
        logits = logits.scatter_add(2, hot, torch.full((B, T, 1), peak))
    return logits.log_softmax(-1)


def _extend(x, rows, state, tokens):
    """The prefixes of `state` extended by tokens (N,)."""
    prefix, r = ctc_prefix_scores(x, rows, state, tokens[:, None], blank=0)
    return CTCPrefixState(r[..., 0], prefix[:, 0], tokens, state.length + 1)


@pytest.mark.parametrize("seed", range(4))
def test_whole_transcript_score_is_the_ctc_likelihood(seed):
    # Utterances shorter than the batch exercise the padding frames.
    log_probs = _log_probs(seed, 3, 8)
    lengths = torch.tensor([8, 5, 3])
    x = ctc_frames(log_probs, lengths, blank=0)
    for b, y in enumerate([[4, 4, 5], [6, 1], []]):
        rows = torch.tensor([b])
        state = ctc_prefix_init(x, rows, blank=0)
        for tok in y:
            state = _extend(x, rows, state, torch.tensor([tok]))
        whole, _ = ctc_prefix_scores(x, rows, state, torch.tensor([[EOS]]), 0)
        L = int(lengths[b])
        nll = F.ctc_loss(
            log_probs[b, :L, None],
            torch.tensor([y], dtype=torch.long),
            torch.tensor([L]),
            torch.tensor([len(y)]),
            reduction="sum",
        )
        torch.testing.assert_close(whole[0, 0], -nll, atol=1e-4, rtol=1e-5)


def test_prefix_scores_match_brute_force():
    T = 4
    log_probs = _log_probs(7, 1, T)[0]
    # log-probability of every labelling, summed over all V**T frame paths
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(V), repeat=T):
        labels = tuple(
            s for i, s in enumerate(path) if s != 0 and (i == 0 or s != path[i - 1])
        )
        lp = sum(log_probs[t, s].item() for t, s in enumerate(path))
        totals[labels] = float(
            torch.logaddexp(torch.tensor(totals.get(labels, -1e9)), torch.tensor(lp))
        )
    x = ctc_frames(log_probs[None], torch.tensor([T]), blank=0)
    rows = torch.tensor([0])
    for g in [(4,), (4, 4), (2, 6), (5, 5, 5)]:
        state = ctc_prefix_init(x, rows, blank=0)
        for tok in g:
            state = _extend(x, rows, state, torch.tensor([tok]))
        starts = [v for k, v in totals.items() if k[: len(g)] == g]
        expected = torch.logsumexp(torch.tensor(starts), 0) if starts else -math.inf
        assert state.prefix.item() == pytest.approx(float(expected), abs=1e-4)


# --- joint beam search ------------------------------------------------------------


@pytest.fixture(scope="module", params=["general", "location"])
def model(request):
    """A random joint model; with location attention each step's weights are
    state, which every search must carry and reorder with its hypotheses."""
    m = _model(attention=request.param, att_conv_width=4).eval()
    with torch.no_grad():  # make EOS likely enough that hypotheses end at mixed times
        m.decoder.output.bias[EOS] += 1.5
    return m


class StandInLM:
    """The language model API of `s2s.models.lm`: next-token log-probabilities from
    a table indexed by the last two tokens, the earlier one carried in the state, so
    a search that mixes up rows of the state scores wrongly."""

    def __init__(self, seed):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(V, V, V, generator=g).log_softmax(-1)

    def init_state(self, batch_size, device):
        h = torch.zeros(batch_size, 1, 1, device=device)  # (N, layers, H)
        return h, h.clone()

    def step(self, tokens, state):
        h, c = state
        log_probs = self.table[h[:, 0, 0].long(), tokens]  # (N, V)
        return log_probs, (tokens.float()[:, None, None], c + 1)


def _search(model, feats, lengths, **kw):
    log_probs, out_lengths, mem, state = model.encode_both(feats, lengths)
    return joint_beam_search(model.decoder, mem, state, log_probs, out_lengths, **kw)


def test_width_one_without_ctc_is_attention_greedy(model):
    feats, lengths = _feats(2)
    with torch.no_grad():
        out_lengths = model.encode_both(feats, lengths)[1]
    greedy = greedy_search(model, feats, lengths, out_lengths)
    joint = _search(model, feats, lengths, beam=1, ctc_weight=0.0)
    assert [g[0] for g in greedy] == [j[0][0] for j in joint]
    assert [g[1] for g in greedy] == pytest.approx([j[0][1] for j in joint], abs=1e-4)


@pytest.mark.parametrize(
    "kw",
    [
        dict(beam=1, ctc_weight=0.3),
        dict(beam=3, ctc_weight=0.5, candidates=2, nbest=3),
        dict(beam=3, ctc_weight=0.0, length_bonus=0.5, nbest=2),
        dict(beam=4, ctc_weight=0.3, lm=StandInLM(1), lm_weight=0.5, nbest=4),
    ],
)
def test_batched_equals_one_by_one(model, kw):
    feats, lengths = _feats(3)
    batched = _search(model, feats, lengths, **kw)
    for i, n in enumerate(lengths.tolist()):
        (alone,) = _search(model, feats[i : i + 1, :n], lengths[i : i + 1], **kw)
        assert [h[0] for h in alone] == [h[0] for h in batched[i]]
        for a, b in zip(alone, batched[i], strict=True):
            assert a[1] == pytest.approx(b[1], abs=1e-4)


def _rescore(model, feats, lengths, b, tokens, lam, lm, lm_weight, bonus):
    """The joint score of one finished hypothesis, recomputed by teacher forcing."""
    n = int(lengths[b])
    log_probs, out_lengths, mem, state = model.encode_both(
        feats[b : b + 1, :n], lengths[b : b + 1]
    )
    y = torch.tensor([[BOS, *tokens]])
    a, _ = model.decoder(y, state, mem)
    att = model.decoder.logits(a).log_softmax(-1)[0]  # (len + 1, V)
    att = att.gather(1, torch.tensor([*tokens, EOS])[:, None]).sum()
    L = int(out_lengths[0])
    ctc = -F.ctc_loss(
        log_probs[0, :L, None],
        torch.tensor([tokens], dtype=torch.long).view(1, -1),
        torch.tensor([L]),
        torch.tensor([len(tokens)]),
        reduction="sum",
    )
    lm_score, lm_state = 0.0, lm.init_state(1, torch.device("cpu"))
    for prev, nxt in zip([BOS, *tokens], [*tokens, EOS], strict=True):
        lp, lm_state = lm.step(torch.tensor([prev]), lm_state)
        lm_score += float(lp[0, nxt])
    return (1 - lam) * att + lam * ctc + lm_weight * lm_score + bonus * len(tokens)


def test_scores_are_the_weighted_sums_of_the_hypotheses(model):
    # Rescoring each n-best hypothesis on its own checks that every state (decoder,
    # CTC forward variables, LM) follows its hypothesis through the beam's reordering.
    feats, lengths = _feats(4)
    lm, kw = StandInLM(2), dict(ctc_weight=0.4, lm_weight=0.3, length_bonus=0.2)
    out = _search(model, feats, lengths, beam=3, nbest=3, lm=lm, **kw)
    checked = 0
    with torch.no_grad():
        for b, hyps in enumerate(out):
            for tokens, score in hyps:
                if len(tokens) >= (int(lengths[b]) + 3) // 4:
                    continue  # ended at the frame limit, without EOS
                expected = _rescore(model, feats, lengths, b, tokens, 0.4, lm, 0.3, 0.2)
                assert score == pytest.approx(float(expected), abs=1e-3)
                checked += 1
    assert checked >= 6


@pytest.mark.parametrize("seed", range(5))
def test_ctc_weight_one_agrees_with_ctc_prefix_beam_search(model, seed):
    # Peaked frames with BOS and EOS ruled out as CTC labels: the label-synchronous
    # joint search ranks by CTC alone and must find the prefix search's best. Its
    # score is the exact CTC log-likelihood; the frame-synchronous search's sums
    # only the alignments that survived its pruning, so it can be lower.
    g = torch.Generator().manual_seed(seed)
    B, T = 4, 12
    logits = torch.randn(B, T, V, generator=g)
    hot = torch.randint(V, (B, T, 1), generator=g)
    logits = logits.scatter_add(2, hot, torch.full((B, T, 1), 5.0))
    logits[:, :, [BOS, EOS]] = -1e4
    log_probs = logits.log_softmax(-1)
    lengths = torch.tensor([12, 9, 5, 2])
    feats, feat_lengths = _feats(5)
    with torch.no_grad():
        _, _, mem, state = model.encode_both(feats, feat_lengths)
    joint = joint_beam_search(
        model.decoder, mem, state, log_probs, lengths, beam=4, ctc_weight=1.0
    )
    prefix = ctc_prefix_beam_search(log_probs, lengths, beam=4, token_beam=V - 1)
    for b, (j, p) in enumerate(zip(joint, prefix, strict=True)):
        assert j[0][0] == p[0][0]
        L, y = int(lengths[b]), j[0][0]
        nll = F.ctc_loss(
            log_probs[b, :L, None],
            torch.tensor([y], dtype=torch.long).view(1, -1),
            torch.tensor([L]),
            torch.tensor([len(y)]),
            reduction="sum",
        )
        assert j[0][1] == pytest.approx(-nll.item(), abs=1e-4)
        assert j[0][1] >= p[0][1] - 1e-4


# --- a tiny joint model trained on sine-tone words --------------------------------

TRAIN_TEXTS = list(tone_texts(60, seed=1))  # the tone corpus's training set
runner = CliRunner()


def _transcriber(run, **decode):
    model, cfg, vocab, features, cmvn = load_speech_model(run / "best.pt")
    for k, v in decode.items():
        setattr(cfg.decode, k, v)
    return Transcriber(model, vocab, features, cmvn, cfg.decode, torch.device("cpu"))


def _waves(texts):
    return [torch.from_numpy(tone_wave(t)) for t in texts]


def test_joint_training_learns_both_outputs(joint_run):
    lines = (joint_run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < 0.2 * losses[0]
    last = [r for r in records if "valid_loss" in r][-1]
    assert {"valid_ctc", "valid_att", "valid_ctc_wer", "valid_cer"} <= set(last)
    assert last["valid_ctc_cer"] < 5 and last["valid_att"] < 1.0
    ckpt = load_checkpoint(joint_run / "best.pt")
    assert ckpt["config"]["model"]["task"] == "joint"
    assert isinstance(load_speech_model(joint_run / "best.pt")[0], SpeechJoint)


@pytest.mark.parametrize("mode", ["ctc", "attention", "joint"])
@pytest.mark.parametrize("beam", [1, 4])
def test_all_three_modes_transcribe_what_it_learnt(joint_run, mode, beam):
    texts = TRAIN_TEXTS[:12]
    tr = _transcriber(joint_run, mode=mode, beam=beam)
    assert tr.mode == mode
    hyps = tr.transcribe(_waves(texts))
    assert wer_cer(hyps, texts)[1].rate < 5, (hyps, texts)


def test_joint_beats_attention_alone_on_unseen_utterances(joint_run):
    # 60 training utterances are few for attention; CTC keeps it on the audio.
    texts = list(tone_texts(12, seed=2))
    att = _transcriber(joint_run, mode="attention", beam=4).transcribe(_waves(texts))
    joint = _transcriber(joint_run, mode="joint", beam=4, ctc_weight=0.5)
    joint_hyps = joint.transcribe(_waves(texts))
    assert wer_cer(joint_hyps, texts)[1].rate < wer_cer(att, texts)[1].rate


def test_ctc_weight_one_matches_prefix_search_on_the_trained_model(joint_run):
    tr = _transcriber(joint_run)
    feats = [tr.cmvn.normalize(tr.extract(w)) for w in _waves(TRAIN_TEXTS[:8])]
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    with torch.no_grad():
        log_probs, out_lengths, mem, state = tr.model.encode_both(x, lengths)
    joint = joint_beam_search(
        tr.model.decoder, mem, state, log_probs, out_lengths, beam=4, ctc_weight=1.0
    )
    prefix = ctc_prefix_beam_search(log_probs, out_lengths, beam=4)
    assert [j[0][0] for j in joint] == [p[0][0] for p in prefix]


def test_segment_spans_cut_at_the_quietest_frame():
    energy = torch.ones(250)
    energy[[70, 85, 160, 230]] = 0.0
    assert segment_spans(energy, 100, search=40) == [(0, 70), (70, 160), (160, 250)]
    assert segment_spans(energy, window=300, search=40) == [(0, 250)]
    spans = segment_spans(torch.ones(1000), window=100, search=30)
    assert spans[0] == (0, 70) and spans[-1][1] == 1000
    assert all(b - a <= 100 for a, b in spans)


@pytest.mark.parametrize("mode", ["attention", "joint"])
def test_long_audio_is_cut_at_pauses_and_decoded_in_segments(joint_run, mode):
    # Eight utterances one after the other: each ends and starts with 50 ms of
    # silence, longer than the pauses between words (80 ms) and characters (30 ms).
    waves = _waves(TRAIN_TEXTS[:8])
    ends = torch.tensor([len(w) // 160 for w in waves]).cumsum(0)[:-1]
    wave = torch.cat(waves)
    tr = _transcriber(joint_run, mode=mode, chunk_seconds=1.2, chunk_overlap=0.5)
    spans = tr.segments(wave)
    assert len(spans) >= 4 and spans[0][0] == 0 and spans[-1][1] >= ends[-1]
    assert all(b - a <= 120 for a, b in spans)
    cuts = torch.tensor([b for _, b in spans[:-1]])
    for cut in cuts.tolist():  # in a pause
        assert wave[cut * 160 : (cut + 1) * 160].abs().max() < 1e-3
    # at utterance boundaries where the window's last 0.5 s has one
    assert ((ends[:, None] - cuts).abs().min(0).values <= 2).sum() >= 3
    # The tiny model cannot transcribe several utterances as one, so check the
    # plumbing: the text is the segments' texts, each decoded as a file of its own.
    alone = [wave[a * 160 : (b - 1) * 160 + 400] for a, b in spans]
    assert tr.transcribe([wave]) == [" ".join(tr.transcribe(alone))]


def test_cli_transcribe_modes(joint_run, tone_run, tone_raw):
    wavs = [str(tone_raw / "wav" / f"train00{k}.wav") for k in range(3)]
    ckpt = str(joint_run / "best.pt")
    expected = [f"{w}\t{t}" for w, t in zip(wavs, TRAIN_TEXTS, strict=False)]
    for extra in ([], ["--mode", "attention"], ["--mode", "ctc", "--beam", "1"]):
        r = runner.invoke(app, ["transcribe", "--checkpoint", ckpt, *wavs, *extra])
        assert r.exit_code == 0, r.output
        assert r.stdout.splitlines() == expected
    r = runner.invoke(
        app,
        ["transcribe", "--checkpoint", ckpt, wavs[0], "--ctc-weight", "0.7"]
        + ["--length-bonus", "0.5", "--beam", "3"],
    )
    assert r.exit_code == 0 and "mode joint, beam 3" in r.stderr
    ctc_ckpt = str(tone_run / "best.pt")
    r = runner.invoke(
        app, ["transcribe", "--checkpoint", ctc_ckpt, wavs[0], "--mode", "attention"]
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "needs an attention decoder" in r.output and "use mode ctc" in r.output
    r = runner.invoke(
        app, ["transcribe", "--checkpoint", ckpt, wavs[0], "--ctc-weight", "2"]
    )
    assert r.exit_code == 1 and "--ctc-weight must be in [0, 1]" in r.output
    r = runner.invoke(app, ["translate", "--checkpoint", ckpt])
    assert r.exit_code == 1 and "needs a translation model" in r.output
