#!/usr/bin/python3
"""The peer of bench/train_throughput.sh: a plain PyTorch (Debian's python3-torch) training loop
of the same BERT classifier on the same prepared split, with the same batch size, optimizer
(AdamW, decay groups, linear schedule, clipping) and length bucketing. Prints one JSON line.

Usage: train_torch_loop.py MODEL_DIR SPLIT_BIN BATCH_SIZE STEPS THREADS
"""
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def read_split(path):
    data = open(path, "rb").read()
    assert data[:4] == b"RMDS", "not a recmodel split file"
    n, tokens = struct.unpack_from("<QQ", data, 16)
    task, id_bytes = struct.unpack_from("<II", data, 32)
    ids_off, offsets_off, segments_off, labels_off = struct.unpack_from("<QQQQ", data, 40)
    ids = np.frombuffer(data, dtype=np.uint16 if id_bytes == 2 else np.int32, count=tokens, offset=ids_off)
    offsets = np.frombuffer(data, dtype=np.uint64, count=n + 1, offset=offsets_off)
    segments = np.frombuffer(data, dtype=np.uint32, count=n, offset=segments_off)
    labels = np.frombuffer(data, dtype=np.int32 if task == 0 else np.float32, count=n, offset=labels_off)
    examples = [ids[offsets[i]:offsets[i + 1]].astype(np.int64) for i in range(n)]
    return examples, segments, labels


class Bert(nn.Module):
    """Hugging Face's BertForSequenceClassification computation, written with torch.nn."""

    def __init__(self, c, labels):
        super().__init__()
        h = c["hidden_size"]
        self.word = nn.Embedding(c["vocab_size"], h, padding_idx=c.get("pad_token_id", 0))
        self.pos = nn.Embedding(c["max_position_embeddings"], h)
        self.token_type = nn.Embedding(c["type_vocab_size"], h)
        self.norm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.drop = nn.Dropout(c["hidden_dropout_prob"])
        self.heads = c["num_attention_heads"]
        self.layers = nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            self.layers.append(nn.ModuleDict(dict(
                q=nn.Linear(h, h), k=nn.Linear(h, h), v=nn.Linear(h, h), o=nn.Linear(h, h),
                n1=nn.LayerNorm(h, eps=c["layer_norm_eps"]), i=nn.Linear(h, c["intermediate_size"]),
                out=nn.Linear(c["intermediate_size"], h), n2=nn.LayerNorm(h, eps=c["layer_norm_eps"]))))
        self.pool = nn.Linear(h, h)
        self.cls = nn.Linear(h, labels)
        self.p = c["attention_probs_dropout_prob"]

    def forward(self, ids, types, mask):
        b, s = ids.shape
        x = self.drop(self.norm(self.word(ids) + self.pos(torch.arange(s))[None] + self.token_type(types)))
        add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        hd = x.shape[-1] // self.heads
        for l in self.layers:
            split = lambda t: t.view(b, s, self.heads, hd).transpose(1, 2)
            q, k, v = split(l["q"](x)), split(l["k"](x)), split(l["v"](x))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + add, -1)
            ctx = (nn.functional.dropout(att, self.p, self.training) @ v).transpose(1, 2).reshape(b, s, -1)
            x = l["n1"](self.drop(l["o"](ctx)) + x)
            x = l["n2"](self.drop(l["out"](nn.functional.gelu(l["i"](x)))) + x)
        return self.cls(self.drop(torch.tanh(self.pool(x[:, 0]))))


def main():
    model_dir, split, batch_size, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = json.load(open(f"{model_dir}/config.json"))
    examples, segments, labels = read_split(split)
    model = Bert(config, config["num_labels"]).train()
    no_decay = lambda n: n.endswith("bias") or n.startswith("norm.") or ".n1." in n or ".n2." in n
    decay = [p for n, p in model.named_parameters() if not no_decay(n)]
    plain = [p for n, p in model.named_parameters() if no_decay(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}], lr=5e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * max(0.0, (steps - s) / steps))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(examples))
    window = batch_size * 64
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: -len(examples[i]))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)

    def tensors(batch):
        n = max(len(examples[i]) for i in batch)
        ids = torch.zeros(len(batch), n, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(batch):
            e = examples[i]
            ids[r, :len(e)] = torch.from_numpy(e)
            types[r, segments[i]:len(e)] = 1
            mask[r, :len(e)] = 1
        return ids, types, mask, torch.tensor([int(labels[i]) for i in batch])

    done = samples = tokens = 0
    start = None
    warmup = 3
    while done < steps + warmup:
        for batch in batches:
            if done == warmup:
                start = time.perf_counter()
                samples = tokens = 0
            ids, types, mask, y = tensors(batch)
            loss = nn.functional.cross_entropy(model(ids, types, mask), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            samples += len(batch)
            tokens += int(mask.sum())
            done += 1
            if done >= steps + warmup:
                break
    seconds = time.perf_counter() - start
    print(json.dumps({"steps": steps, "seconds": seconds, "samples_per_second": samples / seconds,
                      "tokens_per_second": tokens / seconds}))


if __name__ == "__main__":
    main()
