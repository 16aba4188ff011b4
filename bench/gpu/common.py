"""Helpers shared by bench/gpu/hf_parity.py and bench/gpu/train_speed.py: running recmodel,
reading its prepared-dataset split files, a plain PyTorch BERT with Hugging Face's parameter
names, and a varied text corpus. Standard library, numpy and torch only (no transformers)."""
import json
import math
import os
import random
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(message):
    print(message, file=sys.stderr, flush=True)


def run(cmd, *, stdin=None, stdout=None, env=None, check=True, timeout=None):
    """Runs a command; returns (returncode, stdout text, stderr text, seconds)."""
    full_env = dict(os.environ, CI="1")
    if env:
        full_env.update(env)
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], stdin=stdin, stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE, env=full_env, timeout=timeout)
    seconds = time.perf_counter() - start
    out = proc.stdout.decode("utf-8", "replace") if isinstance(proc.stdout, bytes) else ""
    err = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}: {err.strip()[-1500:]}")
    return proc.returncode, out, err, seconds


def recmodel_help(recmodel, command):
    return run([recmodel, command, "--help"], check=False)[1]


def generate_sample_data(out_dir, rows, seed, only=None):
    cmd = [sys.executable, os.path.join(SOURCE_DIR, "share", "generate_sample_data.py"),
           "--seed", seed, "--rows", rows, "--out", out_dir]
    for name in only or []:
        cmd += ["--only", name]
    run(cmd)


def read_split(path):
    """Reads a recmodel split file (RMDS): lists of int64 id arrays, segment_a starts, labels."""
    data = open(path, "rb").read()
    if data[:4] != b"RMDS":
        raise ValueError(f"{path}: not a recmodel split file")
    n, tokens = struct.unpack_from("<QQ", data, 16)
    task, id_bytes = struct.unpack_from("<II", data, 32)
    ids_off, offsets_off, segments_off, labels_off = struct.unpack_from("<QQQQ", data, 40)
    ids = np.frombuffer(data, dtype=np.uint16 if id_bytes == 2 else np.int32, count=tokens, offset=ids_off)
    offsets = np.frombuffer(data, dtype=np.uint64, count=n + 1, offset=offsets_off)
    segments = np.frombuffer(data, dtype=np.uint32, count=n, offset=segments_off)
    labels = np.frombuffer(data, dtype=np.int32 if task == 0 else np.float32, count=n, offset=labels_off)
    examples = [ids[offsets[i]:offsets[i + 1]].astype(np.int64) for i in range(n)]
    return examples, segments.astype(np.int64), labels.copy()


def pad_batch(examples, segments=None, pad_id=0):
    """Pads id arrays to the longest; returns input_ids, token_type_ids, attention_mask (int64)."""
    n = max(len(e) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for r, e in enumerate(examples):
        ids[r, :len(e)] = torch.as_tensor(np.asarray(e, dtype=np.int64))
        mask[r, :len(e)] = 1
        if segments is not None:
            types[r, int(segments[r]):len(e)] = 1
    return ids, types, mask


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
              "I8": torch.int8}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(data[base + start:base + end])
        t = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]) if buf else torch.empty(0, dtype=dtypes[info["dtype"]])
        tensors[name] = t.reshape(info["shape"])
    return tensors


# --- a plain PyTorch BERT classifier with Hugging Face's parameter names -------------------------

class _SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.p = c["attention_probs_dropout_prob"]

    def forward(self, x, mask):
        b, s, h = x.shape
        split = lambda t: t.view(b, s, self.heads, h // self.heads).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        p = self.p if self.training else 0.0
        if hasattr(F, "scaled_dot_product_attention"):
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:  # torch 1.x
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + mask, -1)
            ctx = F.dropout(att, p, self.training) @ v
        return ctx.transpose(1, 2).reshape(b, s, h)


class _Output(nn.Module):
    def __init__(self, n_in, n_out, c):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _Output(c["hidden_size"], c["hidden_size"], c)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class _Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _Output(c["intermediate_size"], c["hidden_size"], c)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class _Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.word_embeddings = nn.Embedding(c["vocab_size"], h, padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], h)
        self.LayerNorm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, ids, types):
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.dropout(self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos)[None]
                                           + self.token_type_embeddings(types)))


class _Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c["num_hidden_layers"]))


class _Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])


class _Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c)
        self.pooler = _Pooler(c)


class PlainBert(nn.Module):
    """BertForSequenceClassification's computation in torch.nn (SDPA attention, post-LayerNorm,
    exact GELU); its state_dict keys are Hugging Face's, so model.safetensors loads directly."""

    def __init__(self, config):
        super().__init__()
        self.bert = _Bert(config)
        drop = config.get("classifier_dropout")
        self.dropout = nn.Dropout(config["hidden_dropout_prob"] if drop is None else drop)
        self.classifier = nn.Linear(config["hidden_size"], config["num_labels"] if "num_labels" in config
                                    else len(config["id2label"]))

    @classmethod
    def from_dir(cls, model_dir):
        config = json.load(open(os.path.join(model_dir, "config.json")))
        if "num_labels" not in config:
            config["num_labels"] = len(config.get("id2label") or {0: 0, 1: 1})
        model = cls(config)
        state = {k: v.float() for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise ValueError(f"{model_dir}: missing tensors {missing[:3]}")
        return model

    def forward(self, ids, types, mask):
        x = self.bert.embeddings(ids, types)
        additive = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.bert.encoder.layer:
            x = layer(x, additive)
        pooled = torch.tanh(self.bert.pooler.dense(x[:, 0]))
        return self.classifier(self.dropout(pooled))


# --- a varied corpus for tokenizer comparisons ---------------------------------------------------

_SCRIPTS = [
    (0x0041, 0x007A), (0x00C0, 0x024F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x0590, 0x05FF),
    (0x0600, 0x06FF), (0x0900, 0x097F), (0x0E00, 0x0E7F), (0x1100, 0x11FF), (0x3040, 0x30FF),
    (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1F6FF), (0x2000, 0x206F), (0x0300, 0x036F),
    (0xFF00, 0xFFEF), (0x20000, 0x2A6DF), (0xF900, 0xFAFF), (0x2E80, 0x2EFF), (0xE000, 0xE0FF),
]
_SPECIAL = ["\t", "\u00a0", "\u3000", "\u2028", "\u200b", "\u200d", "\ufeff", "\ufffd", "\x00", "\x07",
            "\r", "\n", "\u0301", "\u00ad", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "##ing", "&amp;", "<br>",
            "https://example.com/a?b=1&c=2", "e-mail@example.org", "3.14159", "1,000,000", "$9.99", "50%",
            "C++", "U.S.A.", "don't", "naïve café", "Ångström", "ﬁ", "Ⅻ", "①", "x²", "İstanbul", "ß", "ǅ",
            "👩🏽‍💻", "🇫🇷", "a" * 120, "Ünïcödé" * 20, "(((", "...", "—", "«»", "¿¡"]


def varied_corpus(lines, seed, sample_dir=None):
    """Returns `lines` texts: the sample generator's titles, queries and reviews (typos, HTML,
    several languages, emoji) mixed with random text from many scripts, control and format
    characters, combining marks, long words and BERT's special-token spellings."""
    rng = random.Random(seed)
    real = []
    if sample_dir:
        for name in ("products.csv", "queries.tsv", "relevance.csv"):
            path = os.path.join(sample_dir, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    next(f, None)
                    real += [line.rstrip("\n").split(",", 1)[-1].replace("\t", " ") for line in f]
        path = os.path.join(sample_dir, "reviews.jsonl")
        if os.path.exists(path):
            for line in open(path, encoding="utf-8", errors="replace"):
                try:
                    text = json.loads(line).get("text")
                except (ValueError, AttributeError):
                    continue
                if isinstance(text, str):
                    real.append(text)
    texts = []
    for i in range(lines):
        kind = rng.random()
        if real and kind < 0.55:
            text = rng.choice(real)
            if rng.random() < 0.3:
                text += " " + rng.choice(real)
        elif kind < 0.85:
            words = []
            for _ in range(rng.randint(1, 25)):
                lo, hi = rng.choice(_SCRIPTS)
                word = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 12)))
                words.append(word)
            text = rng.choice([" ", "  ", "\t", ""]).join(words)
        else:
            parts = [rng.choice(_SPECIAL) for _ in range(rng.randint(1, 8))]
            if real:
                parts.append(rng.choice(real))
            rng.shuffle(parts)
            text = rng.choice([" ", ""]).join(parts)
        if rng.random() < 0.05:
            text = text.upper()
        texts.append(text)
    texts[:6] = ["", " ", "hello world", "Hello, World!", "unaffable", "\u00e9t\u00e9 \u0065\u0301t\u0065\u0301"]
    return texts
