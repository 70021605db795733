"""Training throughput, decoding speed and hardware efficiency of an s2s model.

Prints one markdown table. Random-token batches are built like s2s's real ones
(`make_batches` by padded tokens; source EOS-terminated; target BOS y / y EOS) with
lengths drawn around the stated means: the numbers depend on sizes, not on data.

FLOPs (2 per multiply-add; gathers, element-wise ops, softmax and loss ignored) of
the forward pass of a sentence pair with S source and T target steps (EOS counted),
encoder output size E = 2*He, decoder size H, P = emb if the output layer is tied
and emb != H (an extra H -> emb projection), else P = H and no projection:

    encoder    S * sum_l 2 dirs * 2*4He*(in_l + He)    in_0 = emb, in_l = E
    keys       S * 2*E*H                               general and mlp only
    bridge     2*E*(2*Ld*H)                            once per sentence
    decoder    T * sum_l 2*4H*(in_l + H)               in_0 = emb (+ H with input
                                                       feeding), in_l = H
    attention  T * (2*S*H + 2*S*E + 2*(E+H)*H)         scores, context, combine
               (+ T * (2*H*H + S*H) for mlp)
    output     T * (2*H*P [projection] + 2*P*V)

Training = 3 x forward (backward ~ 2 x forward). FLOPs/token = training FLOPs of the
measured batches / their target tokens, and "% of peak mm" = FLOPs/token x tokens/s
over the best `torch.mm` rate this script measured on the same device and dtype.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from synthetic import (  # noqa: E402 (benchmarks/ is on the path of its scripts)
    Batch,
    draw_lengths,
    forward_flops,
    median_times,
    mm_gflops,
    peak_mib,
    train_batches,
)

from s2s.config import DecodeConfig, ModelConfig
from s2s.data.vocab import EOS
from s2s.decode.translate import Translator
from s2s.models.cpu_kernels import cpu_autocast_cast
from s2s.models.decoder import Memory
from s2s.models.seq2seq import Seq2Seq, build_model, token_loss
from s2s.precision import autocast_for
from s2s.train.tbptt import forward_backward

# --quick puts these before the user's flags, so flags given explicitly still win.
QUICK = (
    "--emb 32 --enc-hidden 32 --hidden 64 --vocab 500 --batch-tokens 512 --src-len 10 "
    "--tgt-len 10 --repeats 2 --warmup 1 --sents 20 --mm-size 256 --batches 1 "
    "--threads 1"
)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
COLUMNS = ["measurement", "prec", "rate", "median time", "share of step", "GFLOP/s"]
COLUMNS += ["% of peak mm", "peak MiB", "notes"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a = p.add_argument  # the model's flags land in ModelConfig fields of their dest
    a("--emb", dest="emb_dim", type=int, default=256, help="embedding size")
    a("--enc-hidden", dest="enc_hidden_size", type=int, default=256)
    a("--hidden", dest="hidden_size", type=int, default=512, help="decoder size")
    a("--enc-layers", type=int, default=2)
    a("--dec-layers", type=int, default=1)
    a("--vocab", type=int, default=8000, help="source and target vocabulary")
    a("--attention", choices=["dot", "general", "mlp"], default="general")
    a("--input-feed", action=argparse.BooleanOptionalAction, default=False)
    a("--batch-tokens", type=int, default=4096, help="training batch size")
    a("--decode-batch-tokens", type=int, default=6000)
    a("--src-len", type=int, default=25, help="mean source length (with EOS)")
    a("--tgt-len", type=int, default=25, help="mean target length (with EOS)")
    a("--batches", type=int, default=4, help="training batches per timed pass")
    a("--sents", type=int, default=200, help="sentences decoded per timed pass")
    a("--beam", type=int, default=5)
    a("--device", choices=["cpu", "cuda"], default="cpu")
    a("--precision", default="fp32,bf16", help="comma list of fp32, bf16")
    a("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    a("--repeats", type=int, default=5, help="timed passes; medians are reported")
    a("--warmup", type=int, default=2, help="untimed passes first")
    a("--mm-size", type=int, default=2048, help="n of the n x n x n matmul")
    a("--seed", type=int, default=1)
    a("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    args = p.parse_args()
    if args.quick:
        args = p.parse_args(QUICK.split() + sys.argv[1:])
    args.precisions = args.precision.split(",")
    if not set(args.precisions) <= set(DTYPES):
        p.error(f"--precision: use fp32 and/or bf16, got {args.precision!r}")
    return args


# -- what is timed -----------------------------------------------------------------


def step_passes(model: Seq2Seq, opt, batches: list[Batch], amp, dtype) -> dict:
    """A full training step per batch (forward, backward, clip, AdamW) as `s2s
    train` takes it, and each part of one alone: forward + backward on random
    inputs with the shapes, dtypes (embeddings fp32, the rest `dtype`, the autocast
    one) and call pattern (step by step with input feeding) they have in the model.
    Inputs that get a gradient in the model get one here too."""
    enc, dec, dev = model.encoder, model.decoder, batches[0].src.device

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)  # the parts timed alone leave gradients
        for b in batches:
            ntok = int(b.T.sum())
            src, lens, tgt_in, tgt_out = b.src, b.src_lens, b.tgt_in, b.tgt_out
            forward_backward(model, src, lens, tgt_in, tgt_out, 1 / ntok, autocast=amp)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

    def rand(*shape: int, dtype=torch.float32) -> torch.Tensor:
        return torch.randn(*shape, device=dev, dtype=dtype).requires_grad_(True)

    inputs = [
        dict(
            x_src=rand(*b.src.shape, enc.lstm.input_size),
            x_tgt=rand(*b.tgt_in.shape, dec.lstm.input_size),
            h0=rand(2, dec.num_layers, len(b.S), dec.hidden_size, dtype=dtype),
            memory=rand(*b.src.shape, enc.output_size, dtype=dtype),
            s=rand(*b.tgt_in.shape, dec.hidden_size, dtype=dtype),
            mask=torch.arange(b.src.size(1), device=dev) < b.src_lens.to(dev)[:, None],
        )
        for b in batches
    ]

    def each(part: Callable) -> Callable:
        def run() -> None:
            model.train()
            for b, x in zip(batches, inputs, strict=True):
                model.zero_grad(set_to_none=True)
                with amp:
                    out = part(b, x)
                out.float().sum().backward()

        return run

    def encoder_lstm(b: Batch, x: dict) -> torch.Tensor:
        return enc(x["x_src"], b.src_lens)[0]  # its input dropout included

    def decoder_lstm(b: Batch, x: dict) -> torch.Tensor:
        h, c = x["h0"]
        if not dec.input_feed:
            return dec.lstm(*cpu_autocast_cast(x["x_tgt"]), (h, c))[0]
        # Input feeding: the model's own cells, a random a_{t-1} for each step.
        emb = dec.embed.embedding_dim
        x_gates, weights = dec.fed_cells(x["x_tgt"][..., :emb])
        h, c = list(h.unbind(0)), list(c.unbind(0))
        feeds = x["x_tgt"][..., emb:].unbind(1)
        outs = [
            dec.fed_step(f, h, c, x_gates[:, t], weights) for t, f in enumerate(feeds)
        ]
        return torch.stack(outs, dim=1)

    def attention(b: Batch, x: dict) -> torch.Tensor:
        mem = Memory(dec.attention.project_keys(x["memory"]), x["memory"], x["mask"])
        steps = x["s"].split(1, dim=1) if dec.input_feed else [x["s"]]
        return torch.cat([dec._attend(s, mem)[0] for s in steps], dim=1)

    def output_loss(b: Batch, x: dict) -> torch.Tensor:
        return token_loss(dec.logits(x["s"]), b.tgt_out, model.label_smoothing)

    def optimizer() -> None:
        for _ in batches:
            for p in model.parameters():
                p.grad = torch.full_like(p, 1e-3)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

    return {
        "step": step,
        "encoder LSTM": each(encoder_lstm),
        "decoder LSTM": each(decoder_lstm),
        "attention (keys, scores, context, combine)": each(attention),
        "output layer + loss": each(output_loss),
        "clip + AdamW": optimizer,
    }


def decode_pass(translator: Translator, sents: list[list[int]], amp, out: list):
    """All sentences, batched longest first by source tokens, searched as
    `s2s translate` does; the output lengths land in `out`."""
    lengths = np.array([len(s) for s in sents])

    def run() -> None:
        out.clear()
        for batch in translator._batches(lengths):
            hyps = translator._search([sents[i] for i in batch], amp)
            out.extend(len(h[0][0]) for h in hyps)

    return run


# -- the table ---------------------------------------------------------------------


def num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def measure(args, cfg: ModelConfig, model: Seq2Seq, device, prec: str) -> list:
    """The table's rows for one precision: matmuls, training and its parts, search.
    Each starts from the model's initial weights: a few steps on random tokens
    teach it that EOS is frequent, and search would then stop early."""
    init = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98))
    rng, amp, rows = np.random.default_rng(args.seed), autocast_for(device, prec), []
    batches, nb = train_batches(rng, args, device), args.batches
    S, T = (np.concatenate([getattr(b, k) for b in batches]) for k in "ST")
    ntok, fwd = int(T.sum()), forward_flops(cfg, args.vocab, S, T)

    def add(what, rate="–", time="–", share=None, g=None, mib=None, note=""):
        """g: achieved GFLOP/s; time: per training step or per decoding pass."""
        pct = fmt(g and g / peak, ".1%")
        cells = [fmt(share, ".0%"), num(g) if g else "–", pct, fmt(mib, ",.0f")]
        rows.append([what, prec, rate, time, *cells, note])

    def per_step(t: float) -> str:
        return f"{1e3 * t / nb:.1f} ms/step"

    P = cfg.emb_dim if cfg.tie_embeddings and cfg.emb_dim != cfg.hidden_size else 0
    P, B, H, V = P or cfg.hidden_size, len(batches[0].S), cfg.hidden_size, args.vocab
    shapes = {
        f"matmul {args.mm_size}^3": (args.mm_size,) * 3,
        f"matmul {ntok // nb}x{P} @ {P}x{V} (output layer)": (ntok // nb, P, V),
        f"matmul {B}x{H} @ {H}x{4 * H} (decoder LSTM step)": (B, H, 4 * H),
    }
    mm = {k: mm_gflops(*mnk, DTYPES[prec], args, device) for k, mnk in shapes.items()}
    peak = max(mm.values())
    for what, g in mm.items():
        add(what, f"{num(g)} GFLOP/s", g=g)

    # The step and its parts timed alone, taking turns.
    peak_mib(device, reset=True)
    passes = step_passes(model, opt, batches, amp, DTYPES[prec])
    parts = median_times(passes, args, device)
    t_step = parts.pop("step")
    rate, flops = f"{num(ntok / t_step)} tok/s", 3 * sum(fwd.values())
    note = f"{flops / ntok / 1e6:.1f} MFLOP/tok; per batch {ntok / nb:,.0f} "
    note += f"target tokens, {len(S) / nb:.0f} sentences; target padding "
    note += f"{1 - ntok / sum(b.tgt_out.numel() for b in batches):.0%}"
    what = "train step (fwd, bwd, clip, AdamW)"
    add(what, rate, per_step(t_step), 1.0, flops / t_step / 1e9, peak_mib(device), note)

    t = parts["encoder LSTM"] + parts["decoder LSTM"]
    g = 3 * (fwd["encoder"] + fwd["decoder"]) / t / 1e9
    note = "the same batches; no embeddings, attention or output layer"
    what = "the LSTMs alone (encoder + decoder), fwd + bwd"
    add(what, f"{num(ntok / t)} tok/s", per_step(t), t / t_step, g, note=note)
    parts["rest: embeddings, bridge, dropout, ..."] = t_step - sum(parts.values())
    part_flops = ["encoder", "decoder", "attention", "output", None, None]
    for (what, t), k in zip(parts.items(), part_flops, strict=True):
        g = 3 * fwd[k] / t / 1e9 if k else None
        note = "" if k or what.startswith("clip") else "the step minus the parts alone"
        what = f"&nbsp;&nbsp;step part: {what}"
        add(what, "–", per_step(t), t / t_step, g, None, note)

    model.load_state_dict(init)
    lengths = draw_lengths(rng, args, args.sents)[0]
    sents = [np.append(rng.integers(4, V, n - 1), EOS).tolist() for n in lengths]
    outs: dict[str, list[int]] = {"greedy": [], f"beam {args.beam}": []}
    runs = {}
    for (name, out), beam in zip(outs.items(), (1, args.beam), strict=True):
        dcfg = DecodeConfig(beam=beam, max_len_ratio=1.0, max_len_a=5)
        dcfg.batch_tokens = args.decode_batch_tokens
        translator = Translator(model, None, None, dcfg, device, prec)
        runs[name] = decode_pass(translator, sents, amp, out)
    peak_mib(device, reset=True)
    times = median_times(runs, args, device)
    mib = peak_mib(device)  # of both searches
    for name, t in times.items():
        note = f"mean output {np.mean(outs[name]):.1f} tokens (max_len: source + 5)"
        rate, time = f"{num(len(sents) / t)} sent/s", f"{t:.3g} s/pass"
        add(f"decode {name}, {len(sents)} sents", rate, time, None, None, mib, note)
    return rows


def cpu_info() -> tuple[str, str]:
    """The CPU's model name and flags, from /proc/cpuinfo where there is one."""
    path = Path("/proc/cpuinfo")
    text = path.read_text() if path.exists() else ""
    keys = ("model name", "flags")
    name, flags = (re.search(rf"^{k}\s*: (.*)$", text, re.M) for k in keys)
    return name[1] if name else platform.processor(), flags[1] if flags else ""


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    cfg = ModelConfig(**{k: v for k, v in vars(args).items() if k in names})
    model = build_model(cfg, args.vocab, args.vocab).to(device)
    rows = [r for p in args.precisions for r in measure(args, cfg, model, device, p)]

    cuda = device.type == "cuda"
    name, flags = (torch.cuda.get_device_name(device), "") if cuda else cpu_info()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    header = [
        f"command: `{shlex.join(sys.orig_argv)}`",
        f"torch {torch.__version__}, {args.device}: {name}, "
        f"{torch.get_num_threads()} threads",
        f"model: {params:.2f}M parameters, vocab {args.vocab}, `{cfg}`",
        f"data: random tokens, mean lengths {args.src_len}/{args.tgt_len}; "
        f"{args.batches} train batches of <= {args.batch_tokens} tokens per pass; "
        f"decode batches <= {args.decode_batch_tokens} source tokens; medians of "
        f"{args.repeats} passes after {args.warmup} warmup; peak MiB: "
        + ("GPU max allocated" if cuda else "peak RSS of the process so far"),
    ]
    if not cuda and "bf16" in args.precisions and "_bf16" not in flags:
        header.append("**no avx512_bf16/amx_bf16 on this CPU: bf16 is emulated**")
    print("  \n".join(header))
    print("\n| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
