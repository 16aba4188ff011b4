#!/usr/bin/python3
"""The PyTorch peer of bench/predict_throughput.sh: a plain Python inference loop over a BERT
written here with Hugging Face's module structure and names (BertModel + pooler + classifier,
post-LayerNorm, exact GELU), loading the model directory's config.json and model.safetensors
with a small safetensors reader. It scores token ids that `recmodel tokenize --ids-only` wrote,
so tokenization is not part of its time (recmodel's figures include it).

Usage: predict_torch.py MODEL_DIR IDS_JSONL --threads N --batch-size B --latency-texts K
Prints one JSON line: {"texts", "seconds", "texts_per_s", "latency_ms_p50", "latency_ms_p90"}.
"""
import argparse
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(data[base + start:base + end])
        t = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]) if buf else torch.empty(0, dtype=dtypes[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).float()
    return tensors


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads = c["num_attention_heads"]
        self.head_size = c["hidden_size"] // self.heads
        self.query = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.key = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.value = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x, mask):
        b, s, _ = x.shape
        def split(t):
            return t.view(b, s, self.heads, self.head_size).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size) + mask
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, -1)


class Output(nn.Module):
    def __init__(self, n_in, n_out, eps):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = Output(c["hidden_size"], c["hidden_size"], c["layer_norm_eps"])

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = Output(c["intermediate_size"], c["hidden_size"], c["layer_norm_eps"])

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, ids, types):
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(positions)
                              + self.token_type_embeddings(types))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c)


class BertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = Bert(c)
        labels = 1 if c.get("problem_type") == "regression" else len(c["id2label"])
        self.classifier = nn.Linear(c["hidden_size"], labels)

    def forward(self, ids, types, attention):
        mask = (1.0 - attention[:, None, None, :].float()) * torch.finfo(torch.float32).min
        x = self.bert.embeddings(ids, types)
        for layer in self.bert.encoder.layer:
            x = layer(x, mask)
        pooled = torch.tanh(self.bert.pooler.dense(x[:, 0]))
        return self.classifier(pooled)


def batch_tensors(rows):
    width = max(len(r["ids"]) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    types = torch.zeros(len(rows), width, dtype=torch.long)
    attention = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["ids"])
        ids[i, :n] = torch.tensor(r["ids"])
        if "type_ids" in r:
            types[i, :n] = torch.tensor(r["type_ids"])
        attention[i, :n] = 1
    return ids, types, attention


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("ids")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--latency-texts", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = json.load(open(os.path.join(args.model, "config.json")))
    model = BertForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(read_safetensors(os.path.join(args.model, "model.safetensors")),
                                                strict=False)
    if [m for m in missing if "position_ids" not in m]:
        raise SystemExit("missing weights: %s" % missing[:5])
    model.eval()
    rows = [json.loads(line) for line in open(args.ids)]
    with torch.inference_mode():
        model(*batch_tensors(rows[:2]))  # warm-up
        start = time.perf_counter()
        predictions = []
        for i in range(0, len(rows), args.batch_size):
            logits = model(*batch_tensors(rows[i:i + args.batch_size]))
            predictions.extend(logits.softmax(-1).argmax(-1).tolist())
        seconds = time.perf_counter() - start
        latencies = []
        for r in rows[:args.latency_texts]:
            t0 = time.perf_counter()
            model(*batch_tensors([r])).softmax(-1)
            latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    print(json.dumps({"texts": len(rows), "seconds": seconds, "texts_per_s": len(rows) / seconds,
                      "latency_ms_p50": latencies[len(latencies) // 2],
                      "latency_ms_p90": latencies[int(len(latencies) * 0.9)],
                      "predictions": predictions}))


if __name__ == "__main__":
    main()
