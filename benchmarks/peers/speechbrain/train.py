#!/usr/bin/env python
"""SpeechBrain's side of benchmarks/peers/asr_run.py; runs in venvs/speechbrain.

    python train.py prep  --manifests DIR --work DATA [--max-utts N]
    python train.py train --hparams crdnn_ctc.yaml --work DATA --out RUN \
        --minutes 60 --threads 2 [--max-epochs N] [--overrides JSON]
    python train.py test  --hparams crdnn_ctc.yaml --work DATA --out RUN --threads 2

prep: reads asr-cs's {train,valid,test}.tsv (`id path duration text`, paths
relative to the manifest), writes 16 kHz mono WAV copies (soundfile + torchaudio's
resampler, not torchaudio.load, which wants torchcodec) and SpeechBrain JSON
annotations into DATA, and the character list of the training text.
train: SpeechBrain's Brain loop from scratch (no hub weights) until the wall-clock
budget, validating every epoch (greedy CER; a last validation where the budget
stopped it) and keeping the checkpoint with the lowest validation CER.
test: decodes the test set with that checkpoint (CTC greedy, or the joint model's
beam search with CTC scorer) into RUN/test.hyp.tsv (`id<TAB>text`) and writes
RUN/summary.json (parameters, epochs, training audio seconds and time, decoding
time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import soundfile
import speechbrain as sb
import torch
import torchaudio
from hyperpyyaml import load_hyperpyyaml

RATE = 16000
SPLITS = ("train", "valid", "test")
# Output indices: 0 the CTC blank, 1 bos, 2 eos (SpeechBrain's joint beam search
# wants the three apart), then the training characters.
BOS, EOS, FIRST_CHAR = 1, 2, 3


class BudgetReached(Exception):
    """Raised from fit_batch once the training budget is spent."""


# --------------------------------------------------------------------------- prep


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    if head[:4] != ["id", "path", "duration", "text"]:
        sys.exit(f"{path}:1: header is not `id path duration text`")
    return [dict(zip(head, line.split("\t"), strict=False)) for line in lines[1:]]


def write_json(path: Path, data: object) -> None:
    """Whole or not at all: a temporary file beside it, then a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def to_wav16k(src: Path, dst: Path) -> float:
    """A mono 16 kHz 16-bit copy of src at dst (kept if there); its seconds."""
    if not dst.exists():
        data, rate = soundfile.read(str(src), dtype="float32", always_2d=True)
        wave = torch.from_numpy(data).mean(dim=1)  # (N,)
        if rate != RATE:
            wave = torchaudio.functional.resample(wave, rate, RATE)  # (N',)
        tmp = dst.with_name(dst.stem + ".part.wav")
        soundfile.write(str(tmp), wave.numpy(), RATE, subtype="PCM_16")
        os.replace(tmp, dst)
    return soundfile.info(str(dst)).frames / RATE


def prep(manifests: Path, work: Path, max_utts: int) -> None:
    (work / "wav").mkdir(parents=True, exist_ok=True)
    chars: set[str] = set()
    for split in SPLITS:
        tsv = manifests / f"{split}.tsv"
        rows = read_tsv(tsv)
        if max_utts:
            rows = rows[:max_utts]
        ann = {}
        for line, r in enumerate(rows, 2):
            wav = work / "wav" / f"{r['id']}.wav"
            try:
                secs = to_wav16k((tsv.parent / r["path"]).resolve(), wav)
            except (OSError, RuntimeError, ValueError) as err:
                sys.exit(f"{tsv}:{line}: {r['path']}: {err}")
            ann[r["id"]] = {"wav": str(wav), "duration": secs, "text": r["text"]}
            if split == "train":
                chars.update(r["text"])
        write_json(work / f"{split}.json", ann)
        print(f"[sb prep] {split}: {len(ann)} utterances", flush=True)
    write_json(work / "chars.json", sorted(chars))


# ----------------------------------------------------------------- data pipeline


def datasets(work: Path, chars: list[str], sorting: str) -> dict:
    """SpeechBrain datasets of the three splits: waveform and character ids, each
    split sorted by duration as the recipes sort them (train: `sorting`)."""
    index = {c: i + FIRST_CHAR for i, c in enumerate(chars)}

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio(wav: str) -> torch.Tensor:
        data, _ = soundfile.read(wav, dtype="float32")
        return torch.from_numpy(data)  # (N,)

    @sb.utils.data_pipeline.takes("text")
    @sb.utils.data_pipeline.provides("tokens_bos", "tokens_eos", "tokens")
    def text(text: str):
        ids = [index[c] for c in text if c in index]  # unseen characters dropped
        yield torch.LongTensor([BOS, *ids])
        yield torch.LongTensor([*ids, EOS])
        yield torch.LongTensor(ids)

    out = {}
    for split in SPLITS:
        ds = sb.dataio.dataset.DynamicItemDataset.from_json(work / f"{split}.json")
        if split != "train" or sorting == "ascending":
            ds = ds.filtered_sorted(sort_key="duration")
        elif sorting == "descending":
            ds = ds.filtered_sorted(sort_key="duration", reverse=True)
        ds.add_dynamic_item(audio)
        ds.add_dynamic_item(text)
        ds.set_output_keys(["id", "sig", "tokens_bos", "tokens_eos", "tokens"])
        out[split] = ds
    return out


# ------------------------------------------------------------------------- brain


class ASR(sb.Brain):
    """SpeechBrain's recipe Brain: features, augmentation, CRDNN, CTC (+ attention).

    Attributes set by main: chars, joint, budget_s, t0, train_audio_s, train_time_s
    (the seconds of audio trained on, and the time of the training stages).
    """

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig  # (B, N), (B,) relative lengths
        feats = self.hparams.compute_features(wavs)  # (B, T, 80)
        feats = self.modules.normalize(feats, wav_lens)
        if stage == sb.Stage.TRAIN:
            feats, wav_lens = self.hparams.fea_augment(feats, wav_lens)
        x = self.modules.enc(feats)  # (B, T/4, dnn_neurons)
        p_ctc = self.hparams.log_softmax(self.modules.ctc_lin(x))  # (B, T/4, V)
        out = {"p_ctc": p_ctc, "wav_lens": wav_lens, "hyps": None}
        if self.joint:
            e = self.modules.emb(batch.tokens_bos.data)  # (B, U+1, emb)
            h, _ = self.modules.dec(e, x, wav_lens)  # (B, U+1, dec_neurons)
            out["p_seq"] = self.hparams.log_softmax(self.modules.seq_lin(h))
            if stage == sb.Stage.VALID:
                out["hyps"], _, _, _ = self.hparams.valid_search(x, wav_lens)
            elif stage == sb.Stage.TEST:
                out["hyps"], _, _, _ = self.hparams.test_search(x, wav_lens)
        if out["hyps"] is None and stage != sb.Stage.TRAIN:
            out["hyps"] = sb.decoders.ctc_greedy_decode(
                p_ctc, wav_lens, blank_id=self.hparams.blank_index
            )
        return out

    def compute_objectives(self, predictions, batch, stage):
        tokens, token_lens = batch.tokens
        lens = predictions["wav_lens"]
        loss = self.hparams.ctc_cost(predictions["p_ctc"], tokens, lens, token_lens)
        if self.joint:
            eos, eos_lens = batch.tokens_eos
            nll = self.hparams.seq_cost(predictions["p_seq"], eos, length=eos_lens)
            w = self.hparams.ctc_weight
            loss = w * loss + (1 - w) * nll
        if stage != sb.Stage.TRAIN:
            hyps = [self.decode(h) for h in predictions["hyps"]]
            n_tok = (token_lens * tokens.shape[1]).round().long()  # (B,) absolute
            refs = [self.decode(t[:n]) for t, n in zip(tokens, n_tok, strict=True)]
            chars = [list(h) for h in hyps], [list(r) for r in refs]
            self.cer.append(batch.id, predict=chars[0], target=chars[1])
            self.hyps.update(zip(batch.id, hyps, strict=True))
        return loss

    def decode(self, ids) -> str:
        ids = ids.tolist() if torch.is_tensor(ids) else ids
        return "".join(self.chars[i - FIRST_CHAR] for i in ids if i >= FIRST_CHAR)

    def fit_batch(self, batch):
        if time.time() - self.t0 > self.budget_s:
            raise BudgetReached
        wavs, wav_lens = batch.sig
        loss = super().fit_batch(batch)
        self.train_audio_s += float((wav_lens * wavs.shape[1]).sum()) / RATE
        return loss

    def end_train_stage(self) -> None:
        """Adds the training stage's time (batch loading included) to train_time_s."""
        self.train_time_s += time.time() - self.stage_t0

    def on_stage_start(self, stage, epoch=None):
        self.cer, self.hyps = sb.utils.metric_stats.ErrorRateStats(), {}
        self.stage_t0 = time.time()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.end_train_stage()
            self.train_loss = stage_loss
            return
        cer = self.cer.summarize("error_rate")  # percent, over characters
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(cer)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr},
                train_stats={"loss": self.train_loss},
                valid_stats={"loss": stage_loss, "CER": cer},
            )
            self.checkpointer.save_and_keep_only(meta={"CER": cer}, min_keys=["CER"])
            self.valid_cer.append(cer)


def build(args: argparse.Namespace, chars: list[str]) -> tuple[ASR, dict]:
    overrides = {
        "output_folder": str(args.out),
        "output_neurons": len(chars) + FIRST_CHAR,
        "seed": args.seed,
        **json.loads(args.overrides or "{}"),
    }
    with open(args.hparams, encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, overrides)
    brain = ASR(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True, "max_grad_norm": 5.0},
        checkpointer=hparams["checkpointer"],
    )
    brain.chars, brain.joint = chars, "dec" in hparams["modules"]
    if brain.joint and (hparams["bos_index"], hparams["eos_index"]) != (BOS, EOS):
        sys.exit(f"{args.hparams}: bos_index/eos_index must be {BOS}/{EOS}")
    brain.valid_cer = []
    return brain, hparams


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["prep", "train", "test"])
    ap.add_argument("--manifests", type=Path, help="prep: DIR with {split}.tsv")
    ap.add_argument("--max-utts", type=int, default=0, help="prep: first N per split")
    ap.add_argument("--work", type=Path, required=True, help="prep's output DIR")
    ap.add_argument("--hparams", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--max-epochs", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1986)
    ap.add_argument("--overrides", default="", help="JSON of hyperparameter overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.stage == "prep":
        prep(args.manifests, args.work, args.max_utts)
        return 0
    chars = json.loads((args.work / "chars.json").read_text(encoding="utf-8"))
    brain, hp = build(args, chars)
    data = datasets(args.work, chars, hp["sorting"])
    loader = {"batch_size": hp["batch_size"], "num_workers": 0}
    summary_path = args.out / "summary.json"
    if args.stage == "train":
        if args.max_epochs:
            hp["epoch_counter"].limit = args.max_epochs
        brain.budget_s, brain.t0 = args.minutes * 60, time.time()
        brain.train_audio_s = brain.train_time_s = 0.0
        stopped = "epochs"
        valid = brain.make_dataloader(
            data["valid"], stage=sb.Stage.VALID, ckpt_prefix=None, **loader
        )
        try:
            brain.fit(
                hp["epoch_counter"],
                data["train"],
                valid,
                train_loader_kwargs={**loader, "shuffle": hp["sorting"] == "random"},
            )
        except BudgetReached:
            stopped = "budget"
            brain.end_train_stage()
            # The model where the budget stopped it is validated and kept if best,
            # as Brain._fit_train would end the epoch (step counts the averages).
            brain.zero_grad(set_to_none=True)
            brain.train_loss, brain.step = brain.avg_train_loss, 0
            brain._fit_valid(valid, hp["epoch_counter"].current, False)
        summary = {
            "params": sum(p.numel() for p in hp["model"].parameters()),
            "epochs": hp["epoch_counter"].current,
            "stopped": stopped,
            "train_wall_s": time.time() - brain.t0,
            "train_time_s": brain.train_time_s,
            "train_audio_s": brain.train_audio_s,
            "valid_cer": brain.valid_cer,
            "chars": len(chars),
        }
        write_json(summary_path, summary)
        print(f"[sb train] {json.dumps(summary)}", flush=True)
        return 0
    # test: the checkpoint with the lowest validation CER
    brain.checkpointer.recover_if_possible(min_key="CER")
    brain.on_evaluate_start = lambda max_key=None, min_key=None: None
    t0 = time.time()
    brain.evaluate(data["test"], test_loader_kwargs=loader)
    decode_s = time.time() - t0
    rows = json.loads((args.work / "test.json").read_text(encoding="utf-8"))
    lines = [f"{k}\t{brain.hyps.get(k, '')}\n" for k in rows]
    tmp = args.out / "test.hyp.tsv.tmp"
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, args.out / "test.hyp.tsv")
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.update(
        decode_s=decode_s,
        test_audio_s=sum(r["duration"] for r in rows.values()),
        test_cer_sb=brain.cer.summarize("error_rate"),
    )
    write_json(summary_path, summary)
    print(f"[sb test] decoded {len(rows)} utterances in {decode_s:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
