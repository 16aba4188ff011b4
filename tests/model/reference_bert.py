#!/usr/bin/python3
"""Independent BERT reference for recmodel's checkpoint loader and forward pass.

Writes small random BERT classifiers the way third-party tools store them -- torch.save of a
Hugging Face-named state dict (pytorch_model.bin, zip format) and safetensors files in F32, F16
and BF16 written here from the format spec -- and computes their logits with a BERT assembled
from PyTorch's own nn.TransformerEncoderLayer (post-norm, exact GELU, layer_norm_eps), not from
recmodel's code. Usage: reference_bert.py OUT_DIR; writes OUT_DIR/<variant>/ model folders and
OUT_DIR/cases.json with the inputs (a padded batch of single texts and of pairs) and the logits.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn

torch.manual_seed(1234)

CONFIG = dict(
    vocab_size=97, hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=80,
    max_position_embeddings=40, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu",
    hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=0, model_type="bert",
    id2label={"0": "neg", "1": "neu", "2": "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2},
)
H, L, I, A = CONFIG["hidden_size"], CONFIG["num_hidden_layers"], CONFIG["intermediate_size"], 3


def as_module_state_dict(tensors):
    """An OrderedDict like nn.Module.state_dict(): _metadata set, and each layer's query, key and
    value weights slices of one fused storage (non-zero storage offsets)."""
    import collections
    state = collections.OrderedDict()
    for name, tensor in tensors.items():
        if name.endswith("attention.self.query.weight"):
            prefix = name[: -len("query.weight")]
            fused = torch.cat([tensors[prefix + part + ".weight"] for part in ("query", "key", "value")])
            for part, piece in zip(("query", "key", "value"), fused.chunk(3)):
                state[prefix + part + ".weight"] = piece
        elif name not in state:
            state[name] = tensor
    state._metadata = collections.OrderedDict({"": {"version": 1}})
    return state


def random_state_dict():
    g = torch.Generator().manual_seed(99)
    def rnd(*shape, scale=0.3):
        return torch.randn(*shape, generator=g) * scale
    sd = {
        "bert.embeddings.word_embeddings.weight": rnd(CONFIG["vocab_size"], H),
        "bert.embeddings.position_embeddings.weight": rnd(CONFIG["max_position_embeddings"], H),
        "bert.embeddings.token_type_embeddings.weight": rnd(2, H),
        "bert.embeddings.LayerNorm.weight": 1 + rnd(H, scale=0.1),
        "bert.embeddings.LayerNorm.bias": rnd(H, scale=0.1),
    }
    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"] = rnd(H, H, scale=0.2)
            sd[p + f"attention.self.{name}.bias"] = rnd(H, scale=0.1)
        sd[p + "attention.output.dense.weight"] = rnd(H, H, scale=0.2)
        sd[p + "attention.output.dense.bias"] = rnd(H, scale=0.1)
        sd[p + "attention.output.LayerNorm.weight"] = 1 + rnd(H, scale=0.1)
        sd[p + "attention.output.LayerNorm.bias"] = rnd(H, scale=0.1)
        sd[p + "intermediate.dense.weight"] = rnd(I, H, scale=0.2)
        sd[p + "intermediate.dense.bias"] = rnd(I, scale=0.1)
        sd[p + "output.dense.weight"] = rnd(H, I, scale=0.2)
        sd[p + "output.dense.bias"] = rnd(H, scale=0.1)
        sd[p + "output.LayerNorm.weight"] = 1 + rnd(H, scale=0.1)
        sd[p + "output.LayerNorm.bias"] = rnd(H, scale=0.1)
    sd["bert.pooler.dense.weight"] = rnd(H, H, scale=0.2)
    sd["bert.pooler.dense.bias"] = rnd(H, scale=0.1)
    sd["classifier.weight"] = rnd(A, H, scale=0.5)
    sd["classifier.bias"] = rnd(A, scale=0.1)
    return sd


class ReferenceBert(nn.Module):
    """BERT from torch.nn building blocks; weights copied from a Hugging Face state dict."""

    def __init__(self, sd):
        super().__init__()
        self.sd = sd
        self.layers = nn.ModuleList()
        for l in range(L):
            layer = nn.TransformerEncoderLayer(H, CONFIG["num_attention_heads"], I, dropout=0.0, activation="gelu",
                                               layer_norm_eps=CONFIG["layer_norm_eps"], batch_first=True,
                                               norm_first=False)
            p = f"bert.encoder.layer.{l}."
            with torch.no_grad():
                layer.self_attn.in_proj_weight.copy_(torch.cat([sd[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]))
                layer.self_attn.in_proj_bias.copy_(torch.cat([sd[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]))
                layer.self_attn.out_proj.weight.copy_(sd[p + "attention.output.dense.weight"])
                layer.self_attn.out_proj.bias.copy_(sd[p + "attention.output.dense.bias"])
                layer.norm1.weight.copy_(sd[p + "attention.output.LayerNorm.weight"])
                layer.norm1.bias.copy_(sd[p + "attention.output.LayerNorm.bias"])
                layer.linear1.weight.copy_(sd[p + "intermediate.dense.weight"])
                layer.linear1.bias.copy_(sd[p + "intermediate.dense.bias"])
                layer.linear2.weight.copy_(sd[p + "output.dense.weight"])
                layer.linear2.bias.copy_(sd[p + "output.dense.bias"])
                layer.norm2.weight.copy_(sd[p + "output.LayerNorm.weight"])
                layer.norm2.bias.copy_(sd[p + "output.LayerNorm.bias"])
            self.layers.append(layer)

    def forward(self, ids, types, mask):
        sd = self.sd
        pos = torch.arange(ids.shape[1])
        x = sd["bert.embeddings.word_embeddings.weight"][ids] + sd["bert.embeddings.position_embeddings.weight"][pos][None] \
            + sd["bert.embeddings.token_type_embeddings.weight"][types]
        x = nn.functional.layer_norm(x, (H,), sd["bert.embeddings.LayerNorm.weight"], sd["bert.embeddings.LayerNorm.bias"],
                                     CONFIG["layer_norm_eps"])
        padding = mask == 0
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        pooled = torch.tanh(x[:, 0] @ sd["bert.pooler.dense.weight"].T + sd["bert.pooler.dense.bias"])
        return pooled @ sd["classifier.weight"].T + sd["classifier.bias"]


def write_safetensors(path, tensors, dtype):
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.to(dtype).contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": names[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def batch(rows):
    n = max(len(r[0]) for r in rows)
    ids = [r[0] + [0] * (n - len(r[0])) for r in rows]
    types = [r[1] + [0] * (n - len(r[1])) for r in rows]
    mask = [[1] * len(r[0]) + [0] * (n - len(r[0])) for r in rows]
    return ids, types, mask


def main(out):
    os.makedirs(out, exist_ok=True)
    sd = random_state_dict()
    g = torch.Generator().manual_seed(7)
    singles, pairs = [], []
    for length in (5, 17, 9, 33, 3):
        ids = [2] + torch.randint(5, CONFIG["vocab_size"], (length - 2,), generator=g).tolist() + [3]
        singles.append((ids, [0] * length))
    for a, b in ((4, 6), (10, 3), (7, 20)):
        first = [2] + torch.randint(5, 97, (a,), generator=g).tolist() + [3]
        second = torch.randint(5, 97, (b,), generator=g).tolist() + [3]
        pairs.append((first + second, [0] * len(first) + [1] * len(second)))

    variants = {
        "bin": ("pytorch_model.bin", torch.float32, True),
        # What save_pretrained(safe_serialization=False) writes: Module.state_dict(), an OrderedDict
        # with _metadata, whose tensors may be views into a shared storage at an offset.
        "bin_state_dict": ("pytorch_model.bin", torch.float32, True),
        "safetensors_f32": ("model.safetensors", torch.float32, True),
        "safetensors_f16": ("model.safetensors", torch.float16, True),
        "safetensors_bf16": ("model.safetensors", torch.bfloat16, True),
        "bare_encoder": ("model.safetensors", torch.float32, False),  # no "bert." prefix
    }
    cases = {"variants": {}, "batches": {}}
    for name, rows in (("single", singles), ("pair", pairs)):
        ids, types, mask = batch(rows)
        cases["batches"][name] = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    for variant, (filename, dtype, prefixed) in variants.items():
        folder = os.path.join(out, variant)
        os.makedirs(folder, exist_ok=True)
        stored = {k: v.to(dtype).to(torch.float32) for k, v in sd.items()}  # what the file holds, read back
        tensors = dict(sd)
        if not prefixed:
            tensors = {k[len("bert."):]: v for k, v in sd.items() if k.startswith("bert.")}
        if variant == "bin_state_dict":
            torch.save(as_module_state_dict(tensors), os.path.join(folder, filename))
        elif filename == "pytorch_model.bin":
            torch.save(tensors, os.path.join(folder, filename))
        else:
            write_safetensors(os.path.join(folder, filename), tensors, dtype)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump({**CONFIG, "architectures": ["BertForSequenceClassification"]}, f)
        with open(os.path.join(folder, "vocab.txt"), "w") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, 97)]) + "\n")
        entry = {"dir": variant, "has_head": prefixed, "logits": {}}
        if prefixed:
            model = ReferenceBert(stored).eval()
            with torch.no_grad():
                for name, b in cases["batches"].items():
                    logits = model(torch.tensor(b["input_ids"]), torch.tensor(b["token_type_ids"]), torch.tensor(b["attention_mask"]))
                    entry["logits"][name] = logits.tolist()
        cases["variants"][variant] = entry
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main(sys.argv[1])
