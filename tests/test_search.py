import pytest
import torch

from s2s.config import ModelConfig
from s2s.data.vocab import BOS, EOS, PAD
from s2s.decode import search
from s2s.decode.search import beam_search, greedy_search, topk_rows
from s2s.models.seq2seq import build_model

V = 15


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    cfg = ModelConfig(
        emb_dim=8, enc_hidden_size=8, hidden_size=16, dropout=0.0, input_feed=True
    )
    m = build_model(cfg, V, V).eval()
    with torch.no_grad():  # make EOS likely enough that hypotheses end at mixed times
        m.decoder.output.bias[EOS] += 2.0
    return m


def _src(B=6, S=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(3, S + 1, (B,), generator=g)
    src = torch.randint(4, V, (B, int(lens.max())), generator=g)
    for i, n in enumerate(lens):
        src[i, n - 1] = EOS
        src[i, n:] = 0
    return src, lens


def test_bos_and_pad_are_never_emitted():
    torch.manual_seed(4)
    cfg = ModelConfig(emb_dim=8, enc_hidden_size=8, hidden_size=16, dropout=0.0)
    m = build_model(cfg, V, V).eval()
    with torch.no_grad():  # an untrained model that likes BOS and PAD best
        m.decoder.output.bias[BOS] += 6.0
        m.decoder.output.bias[PAD] += 6.0
    src, lens = _src()
    hyps = [h for h, _ in greedy_search(m, src, lens, lens * 2)]
    for K in (1, 3):
        hyps += [
            h for n in beam_search(m, src, lens, lens * 2, K, nbest=K) for h, _ in n
        ]
    assert hyps and all(BOS not in h and PAD not in h for h in hyps)


def test_beam1_equals_greedy(model):
    src, lens = _src()
    max_len = lens * 2
    greedy = greedy_search(model, src, lens, max_len)
    beam = beam_search(model, src, lens, max_len, beam=1, lenpen=0.0)
    assert [g[0] for g in greedy] == [b[0][0] for b in beam]
    # lenpen 0: both scores are the plain sum of log-probabilities
    assert [g[1] for g in greedy] == pytest.approx([b[0][1] for b in beam], abs=1e-4)


@pytest.mark.parametrize("K", [2, 4])
def test_batched_beam_equals_one_by_one(model, K):
    src, lens = _src()
    max_len = lens * 2
    batched = beam_search(model, src, lens, max_len, beam=K, nbest=K)
    for i in range(src.size(0)):
        n = int(lens[i])
        alone = beam_search(
            model,
            src[i : i + 1, :n],
            lens[i : i + 1],
            max_len[i : i + 1],
            beam=K,
            nbest=K,
        )
        assert [h[0] for h in alone[0]] == [h[0] for h in batched[i]]
        for a, b in zip(alone[0], batched[i], strict=True):
            assert a[1] == pytest.approx(b[1], abs=1e-4)


def test_greedy_batched_equals_one_by_one(model):
    src, lens = _src(seed=1)
    max_len = lens * 2
    batched = greedy_search(model, src, lens, max_len)
    for i in range(src.size(0)):
        n = int(lens[i])
        alone = greedy_search(
            model, src[i : i + 1, :n], lens[i : i + 1], max_len[i : i + 1]
        )
        assert alone[0][0] == batched[i][0]


def test_nbest_sorted_and_within_max_len(model):
    src, lens = _src(seed=2)
    max_len = torch.full_like(lens, 4)
    out = beam_search(model, src, lens, max_len, beam=3, nbest=3)
    for hyps in out:
        assert len(hyps) == 3
        scores = [s for _, s in hyps]
        assert scores == sorted(scores, reverse=True)
        assert all(len(toks) <= 4 and EOS not in toks for toks, _ in hyps)


def test_wider_beam_finds_no_worse_raw_score(model):
    """With no length penalty, beam 4's best sum log-prob is >= greedy's."""
    src, lens = _src(seed=4)
    max_len = lens * 2
    greedy = greedy_search(model, src, lens, max_len)
    beam = beam_search(model, src, lens, max_len, beam=4, lenpen=0.0)
    for g, b in zip(greedy, beam, strict=True):
        assert b[0][1] >= g[1] - 1e-4


@pytest.mark.parametrize("V_, k", [(8000, 10), (8000, 1), (2600, 10), (333, 1)])
def test_topk_rows_equals_torch_topk(V_, k):
    """Block-pruned top-k: the values of torch.topk, best first, and indices that
    point at them; also with a partial last block and with many tied values."""
    g = torch.Generator().manual_seed(V_ + k)
    x = torch.randn(37, V_, generator=g)
    x[:5] = torch.randint(0, 3, (5, V_), generator=g).float()  # heavy ties
    x[5, :] = float("-inf")
    x[5, -1] = 0.0  # the best value in the partial last block
    vals, idx = topk_rows(x, k)
    ref = x.topk(k, dim=-1)
    assert torch.equal(vals, ref.values)
    assert torch.equal(x.gather(1, idx), vals)
    assert (idx[:, :, None] != idx[:, None, :]).sum() == 37 * k * (k - 1)  # distinct


def test_beam_search_same_with_block_topk(monkeypatch):
    """A vocabulary wide enough for the block path: beam search and greedy give
    what plain torch.topk gives."""
    torch.manual_seed(5)
    cfg = ModelConfig(emb_dim=8, enc_hidden_size=8, hidden_size=16, dropout=0.0)
    m = build_model(cfg, V, 2100).eval()  # 32 blocks: 4 x (2K = 8)
    src, lens = _src(seed=6)
    runs = []
    for plain in (False, True):
        if plain:
            monkeypatch.setattr(search, "topk_rows", lambda x, k: x.topk(k, dim=-1))
        runs.append(
            (
                beam_search(m, src, lens, lens * 2, beam=4),
                greedy_search(m, src, lens, lens * 2),
            )
        )
    assert runs[0] == runs[1]
