"""The encoder-decoder model, its loss, and `build_model(cfg)` for every task.

The model returns outputs and losses only; search lives in `s2s.decode`, the training
loop in `s2s.train`.
"""

from __future__ import annotations

import torch
from torch import nn

from s2s.config import ModelConfig
from s2s.data.vocab import PAD
from s2s.models.ctc import CTCHead
from s2s.models.decoder import (
    AttentionDecoder,
    DecoderState,
    Memory,
    output_loss,
)
from s2s.models.encoder import RNNEncoder
from s2s.models.frontend import SpecAugment, Subsampler
from s2s.models.lm import LSTMLM
from s2s.models.loss import token_loss
from s2s.models.speech import SpeechCTC, SpeechJoint

__all__ = ["Seq2Seq", "build_model", "token_loss"]


class Seq2Seq(nn.Module):
    """Source embeddings -> BiLSTM encoder -> attention LSTM decoder."""

    def __init__(
        self,
        src_embed: nn.Embedding,
        encoder: RNNEncoder,
        decoder: AttentionDecoder,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        self.src_embed = src_embed
        self.encoder = encoder
        self.decoder = decoder
        self.label_smoothing = label_smoothing

    def encode(
        self, src: torch.Tensor, src_lens: torch.Tensor
    ) -> tuple[Memory, DecoderState]:
        """src (B, S), src_lens (B,) -> attention memory, initial decoder state."""
        out, lens, h = self.encoder(self.src_embed(src), src_lens)  # (B, S, E)
        return self.decoder.prepare(out, lens, h)

    def forward(
        self, src: torch.Tensor, src_lens: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced logits (B, T, V)."""
        mem, state = self.encode(src, src_lens)
        a, _ = self.decoder(tgt_in, state, mem)
        return self.decoder.logits(a)

    def loss(
        self,
        src: torch.Tensor,
        src_lens: torch.Tensor,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor,
    ) -> torch.Tensor:
        """Summed label-smoothed loss over the batch's target tokens."""
        mem, state = self.encode(src, src_lens)
        a, _ = self.decoder(tgt_in, state, mem)
        return self.output_loss(a, tgt_out)

    def output_loss(self, a: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        """Attentional vectors a (B, T, H) -> summed loss against tgt_out (B, T)."""
        return output_loss(self.decoder, a, tgt_out, self.label_smoothing)


def build_model(cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> nn.Module:
    """Turn the model section of the config into modules.

    translation: `Seq2Seq` over `src_vocab` source and `tgt_vocab` target tokens.
    ctc: `SpeechCTC` over `cfg.num_mels` features per frame and `tgt_vocab` output
    symbols; joint: `SpeechJoint`, the same plus the attention decoder. Speech
    models leave `src_vocab` unused (pass 0).
    lm: `LSTMLM` over `tgt_vocab` tokens (emb_dim, hidden_size, dec_layers,
    dropout, tie_embeddings); `src_vocab` is unused (pass 0).
    """
    if cfg.task == "lm":
        lm = LSTMLM(
            vocab_size=tgt_vocab,
            emb_dim=cfg.emb_dim,
            hidden_size=cfg.hidden_size,
            layers=cfg.dec_layers,
            dropout=cfg.dropout,
            tie=cfg.tie_embeddings,
            padding_idx=PAD,
        )
        _init(lm, cfg.param_init)
        return lm
    encoder = RNNEncoder(
        input_size=cfg.emb_dim,
        hidden_size=cfg.enc_hidden_size,
        num_layers=cfg.enc_layers,
        dropout=cfg.dropout,
    )
    if cfg.task not in ("translation", "ctc", "joint"):
        raise ValueError(f"unsupported task {cfg.task!r}")
    decoder = None
    if cfg.task in ("translation", "joint"):
        decoder = AttentionDecoder(
            vocab_size=tgt_vocab,
            emb_dim=cfg.emb_dim,
            hidden_size=cfg.hidden_size,
            memory_size=encoder.output_size,
            num_layers=cfg.dec_layers,
            attention=cfg.attention,
            input_feed=cfg.input_feed,
            dropout=cfg.dropout,
            tie_embeddings=cfg.tie_embeddings,
            padding_idx=PAD,
            att_conv_channels=cfg.att_conv_channels,
            att_conv_width=cfg.att_conv_width,
        )
    if cfg.task == "translation":
        model = Seq2Seq(
            src_embed=nn.Embedding(src_vocab, cfg.emb_dim, padding_idx=PAD),
            encoder=encoder,
            decoder=decoder,
            label_smoothing=cfg.label_smoothing,
        )
        _init(model, cfg.param_init)
        return model
    specaugment = None
    if cfg.specaugment:
        specaugment = SpecAugment(
            freq_masks=cfg.freq_masks,
            freq_width=cfg.freq_width,
            time_masks=cfg.time_masks,
            time_width_ratio=cfg.time_width_ratio,
            max_time_width=cfg.max_time_width or None,
        )
    speech = dict(
        specaugment=specaugment,
        subsampler=Subsampler(
            in_dim=cfg.num_mels,
            out_dim=cfg.emb_dim,
            kind=cfg.subsample,
            channels=cfg.subsample_channels or None,
        ),
        encoder=encoder,
        head=CTCHead(encoder.output_size, tgt_vocab, blank=PAD),
        dropout=cfg.dropout,
        inter_ctc_weight=cfg.inter_ctc_weight,
    )
    if cfg.task == "ctc":
        model = SpeechCTC(**speech)
    else:
        model = SpeechJoint(
            **speech,
            decoder=decoder,
            ctc_weight=cfg.ctc_weight,
            label_smoothing=cfg.label_smoothing,
        )
    _init(model, cfg.param_init)
    return model


def _init(model: nn.Module, param_init: float) -> None:
    """param_init > 0: every parameter uniform in [-b, b], b = max(param_init, the
    layer's own scale) (`_own_bound`; the padding embedding row stays zero).

    OpenNMT-py's `param_init` is one b for all: at 256-512 units it is larger than
    the layers' fan-in scales and learns faster early on, but below that it is
    smaller, and the embeddings (with tied embeddings, also the output layer) are
    what it shrinks first: uniform 0.1 gives rows of RMS norm 0.058 * sqrt(emb_dim),
    0.46 at 64 against 1 for N(0, 1/emb_dim), and a small model then barely
    learns (benchmarks/toy_tasks.py). Taking the larger of the two keeps param_init
    where it is larger and each layer's own scale where it is not.

    param_init == 0: PyTorch's defaults (scaled to each layer's size) for LSTMs and
    linear layers; embeddings N(0, 1/emb_dim) so tied output scores start moderate;
    forget-gate biases summing to 1 so early gradients flow through time."""
    if param_init > 0:
        done: set[int] = set()  # a tied output layer shares the embedding's rows
        for m in model.modules():
            own = _own_bound(m)
            for p in m.parameters(recurse=False):
                if id(p) not in done:
                    b = max(param_init, own)
                    nn.init.uniform_(p, -b, b)
                    done.add(id(p))
    else:
        for m in model.modules():
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, m.embedding_dim**-0.5)
            elif isinstance(m, nn.LSTM):
                for name, p in m.named_parameters():
                    if name.startswith("bias"):
                        n = p.size(0) // 4
                        with torch.no_grad():
                            p[n : 2 * n].fill_(0.5)  # bias_ih + bias_hh = 1
    for m in model.modules():  # after all: a tied output layer shares the rows
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()


def _own_bound(m: nn.Module) -> float:
    """The uniform bound of `m`'s parameters at its own scale (0: none): PyTorch's
    1 / sqrt(fan_in) for linear, convolution and LSTM layers; sqrt(3 / emb_dim),
    the uniform twin of N(0, 1/emb_dim), rows of norm 1, for embeddings."""
    if isinstance(m, nn.Embedding):
        return (3.0 / m.embedding_dim) ** 0.5
    if isinstance(m, nn.LSTM):
        return m.hidden_size**-0.5
    if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return (m.weight[0].numel()) ** -0.5  # in_features (x kernel size)
    return 0.0
