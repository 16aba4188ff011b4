#!/usr/bin/env python3
"""Hugging Face parity of a recmodel build, run on the GPU machine with its python3 (torch,
transformers, tokenizers, onnxruntime):

1. Random-init BertForSequenceClassification checkpoints saved by Hugging Face (model.safetensors
   and pytorch_model.bin; a classifier, a regression head, text pairs) give the same logits in
   `recmodel predict --logits` as in transformers: <= 1e-5 in fp32 on CPU and CUDA, <= 2e-2 in bf16.
2. A model made by `recmodel init` + `recmodel train --device cuda` loads with from_pretrained and
   gives the logits and labels of `recmodel predict`; its tokenizer.json gives recmodel's ids.
3. `recmodel tokenize` and BertTokenizerFast (Rust) give identical ids on a large varied corpus,
   for each vocabulary (the shared ones carried in bench/gpu/vocab/, and one learned here); the
   throughput of both is printed.
4. `recmodel export` (Debian's ONNX/protobuf beside PyTorch's libtorch) writes a model that
   onnxruntime runs with the same logits.

Prints a PASS/FAIL table (markdown) on stdout; exit 1 when any check fails.

  python3 bench/gpu/hf_parity.py --recmodel build-gpu/recmodel [--work DIR] [--corpus-lines 200000]
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (SOURCE_DIR, generate_sample_data, log, pad_batch, recmodel_help, run,  # noqa: E402
                    varied_corpus)

FP32_TOL = 1e-5
BF16_TOL = 2e-2
RESULTS = []


def record(check, ok, detail, status=None):
    status = status or ("PASS" if ok else "FAIL")
    RESULTS.append((check, status, detail))
    log(f"[{status}] {check}: {detail}")


def guarded(check):
    """Runs a check function; an exception is that check's FAIL, not the end of the run."""
    def wrap(fn):
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - every failure becomes a table row
                record(check, False, f"{type(e).__name__}: {str(e)[:600]}")
                return None
        return inner
    return wrap


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def hf_tokenizer(vocab, lowercase, max_length=None):
    """BertTokenizerFast built by transformers itself from a vocab.txt (not from recmodel's files)."""
    import transformers
    d = tempfile.mkdtemp(prefix="hftok-")
    shutil.copy(vocab, os.path.join(d, "vocab.txt"))
    config = {"do_lower_case": lowercase, "tokenizer_class": "BertTokenizer"}
    if max_length:
        config["model_max_length"] = max_length
    json.dump(config, open(os.path.join(d, "tokenizer_config.json"), "w"))
    cls = getattr(transformers, "BertTokenizerFast", None) or transformers.BertTokenizer
    tok = cls.from_pretrained(d)
    if not getattr(tok, "is_fast", False):
        raise RuntimeError(f"{cls.__name__} from {vocab} is not the Rust (fast) tokenizer")
    return tok


def recmodel_ids(recmodel, source_args, texts, work, pairs=None, max_length=0, threads=None):
    """`recmodel tokenize` ids (and type_ids for pairs) of texts, through --jsonl."""
    path = os.path.join(work, "tokenize-input.jsonl")
    rows = [{"text": t} if pairs is None else {"text": t, "pair": p} for t, p in zip(texts, pairs or texts)]
    write_jsonl(path, rows)
    cmd = [recmodel]
    if threads:
        cmd += ["--threads", threads]
    cmd += ["tokenize", *source_args, "--jsonl", "--ids-only", "--max-length", max_length, "--input", path]
    _, out, _, seconds = run(cmd)
    docs = read_jsonl(out)
    if len(docs) != len(texts):
        raise RuntimeError(f"recmodel tokenize wrote {len(docs)} lines for {len(texts)} inputs")
    return docs, seconds


def recmodel_logits(recmodel, model_dir, texts, work, device, pairs=None, precision=None, tag="x"):
    path = os.path.join(work, f"predict-{tag}.jsonl")
    rows = []
    for i, t in enumerate(texts):
        row = {"id": i, "text": t}
        if pairs is not None:
            row["pair"] = pairs[i]
        rows.append(row)
    write_jsonl(path, rows)
    cmd = [recmodel, "predict", "--model", model_dir, "--input", path, "--logits", "--device", device,
           "--batch-size", 16]
    if pairs is not None:
        cmd += ["--text-pair-column", "pair"]
    if precision:
        cmd += ["--precision", precision]
    _, out, _, _ = run(cmd)
    docs = read_jsonl(out)
    if len(docs) != len(texts) or any("error" in d for d in docs):
        raise RuntimeError(f"recmodel predict: {[d for d in docs if 'error' in d][:2] or len(docs)}")
    return np.array([d["logits"] for d in docs], dtype=np.float64), docs


def hf_logits(model, id_docs, device, bf16=False):
    """Logits of a transformers model for recmodel's token ids, so tokenization is out of the comparison."""
    ids = [d["ids"] for d in id_docs]
    types = [d.get("type_ids") or [0] * len(d["ids"]) for d in id_docs]
    input_ids, _, mask = pad_batch(ids, pad_id=model.config.pad_token_id or 0)
    token_types, _, _ = pad_batch(types, pad_id=0)
    model = model.to(device).eval()
    with torch.no_grad():
        if bf16:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                            token_type_ids=token_types.to(device)).logits
        else:
            out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                        token_type_ids=token_types.to(device)).logits
    return out.float().cpu().numpy().astype(np.float64)


def from_pretrained(model_dir):
    import transformers
    try:
        return transformers.BertForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    except TypeError:  # transformers 4.x
        return transformers.BertForSequenceClassification.from_pretrained(model_dir, torch_dtype=torch.float32)


def save_bin(model, model_dir, ordered=False):
    """Writes pytorch_model.bin as transformers 4.35+'s save_pretrained(safe_serialization=False)
    does (torch.save of a plain dict of tensors; transformers 5 dropped that option), or, with
    `ordered`, as torch.save(model.state_dict()) does (an OrderedDict, as older checkpoints are)."""
    model.save_pretrained(model_dir)
    for name in ("model.safetensors", "pytorch_model.bin"):
        if os.path.exists(os.path.join(model_dir, name)):
            os.remove(os.path.join(model_dir, name))
    state = model.state_dict() if ordered else {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(model_dir, "pytorch_model.bin"))


def predict_limit(model_dir):
    """The length recmodel predict truncates to: max_position_embeddings, or the tokenizer's limit."""
    limit = json.load(open(os.path.join(model_dir, "config.json")))["max_position_embeddings"]
    path = os.path.join(model_dir, "tokenizer_config.json")
    tok_limit = json.load(open(path)).get("model_max_length") if os.path.exists(path) else None
    if isinstance(tok_limit, (int, float)) and 0 < tok_limit < 1e9:
        limit = min(limit, int(tok_limit))
    return limit


def parity_texts(sample_dir, n=48):
    texts = varied_corpus(n, seed=7, sample_dir=sample_dir)
    texts = [t if t.strip() else "empty text replaced" for t in texts]
    texts[-1] = " ".join(["long"] * 400)  # longer than max_position_embeddings: truncated alike
    return texts


def compare(check, ours, theirs, tol, extra=""):
    diff = float(np.max(np.abs(ours - theirs))) if ours.size else float("nan")
    record(check, diff <= tol, f"max |diff| {diff:.2e} (tolerance {tol:g}){extra}")
    return diff


def check_hf_checkpoints(args, work, vocab, sample_dir, cuda, bf16_flag):
    cases = [
        ("classifier, model.safetensors", dict(num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"},
                                                label2id={"neg": 0, "neu": 1, "pos": 2}), "safetensors", False),
        ("classifier, pytorch_model.bin (plain dict, as transformers 4.35+ writes)", dict(num_labels=3), "bin", False),
        ("classifier, pytorch_model.bin (torch.save(model.state_dict()), an OrderedDict)", dict(num_labels=3),
         "ordered-bin", False),
        ("text pairs (token types), model.safetensors", dict(num_labels=4), "safetensors", True),
        ("regression head, model.safetensors", dict(num_labels=1, problem_type="regression"), "safetensors", False),
    ]
    for number, case in enumerate(cases):
        guarded(f"HF→recmodel {case[0]}")(check_hf_checkpoint)(args, work, vocab, sample_dir, cuda, bf16_flag,
                                                               number, *case)


def check_hf_checkpoint(args, work, vocab, sample_dir, cuda, bf16_flag, number, name, head, fmt, use_pairs):
    import transformers
    texts = parity_texts(sample_dir)
    pairs = list(reversed(texts))
    vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))
    torch.manual_seed(number + 1)
    config = transformers.BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=3,
                                     num_attention_heads=4, intermediate_size=128,
                                     max_position_embeddings=128, initializer_range=0.05, **head)
    model = transformers.BertForSequenceClassification(config).eval()
    model_dir = os.path.join(work, f"hf-checkpoint-{number}")
    tok = hf_tokenizer(vocab, lowercase=True, max_length=128)
    if fmt == "safetensors":
        model.save_pretrained(model_dir)
    else:
        save_bin(model, model_dir, ordered=fmt == "ordered-bin")
    tok.save_pretrained(model_dir)
    if not os.path.exists(os.path.join(model_dir, "vocab.txt")):
        record(f"HF {transformers.__version__} tokenizer save writes vocab.txt", False,
               "save_pretrained wrote no vocab.txt (only tokenizer.json); recmodel needs vocab.txt, copied it",
               status="WARN")
        shutil.copy(vocab, os.path.join(model_dir, "vocab.txt"))
    weights = sorted(os.path.basename(p) for p in glob.glob(os.path.join(model_dir, "*"))
                     if p.endswith((".safetensors", ".bin")))
    p = pairs if use_pairs else None
    id_docs, _ = recmodel_ids(args.recmodel, ["--model", model_dir], texts, work, pairs=p,
                              max_length=predict_limit(model_dir))
    reference = hf_logits(model, id_docs, "cpu")
    for device in ["cpu"] + (["cuda"] if cuda else []):
        ours, _ = recmodel_logits(args.recmodel, model_dir, texts, work, device, pairs=p, tag=f"{number}-{device}")
        theirs = reference if device == "cpu" else hf_logits(model, id_docs, "cuda")
        compare(f"HF→recmodel {name}: fp32 {device}", ours, theirs, FP32_TOL, f"; {len(texts)} texts, {weights}")
    if cuda and number == 0:
        theirs = hf_logits(model, id_docs, "cuda", bf16=True)
        scale = float(np.max(np.abs(theirs - reference)))
        if bf16_flag:
            ours, _ = recmodel_logits(args.recmodel, model_dir, texts, work, "cuda", precision="bf16",
                                      tag=f"{number}-bf16")
            compare(f"HF→recmodel {name}: bf16 cuda", ours, theirs, BF16_TOL,
                    f"; HF bf16 vs fp32 differ by {scale:.1e}")
        else:
            record(f"HF→recmodel {name}: bf16 cuda", False,
                   "recmodel predict has no --precision option, so bf16 inference cannot be compared "
                   f"(HF bf16 vs fp32 differ by {scale:.1e})")


@guarded("HF tokenizer_config without a length limit")
def check_unlimited_tokenizer(args, work, vocab):
    """transformers writes model_max_length 1e30 for a tokenizer built without a limit."""
    model_dir = os.path.join(work, "hf-unlimited")
    import transformers
    torch.manual_seed(3)
    vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))
    config = transformers.BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertForSequenceClassification(config).save_pretrained(model_dir)
    hf_tokenizer(vocab, lowercase=True).save_pretrained(model_dir)
    if not os.path.exists(os.path.join(model_dir, "vocab.txt")):
        shutil.copy(vocab, os.path.join(model_dir, "vocab.txt"))
    limit = json.load(open(os.path.join(model_dir, "tokenizer_config.json"))).get("model_max_length")
    rc, _, err, _ = run([args.recmodel, "predict", "--model", model_dir, "--input", "-", "--device", "cpu"],
                        stdin=open(os.path.join(work, "one-line.txt")), check=False)
    record("HF checkpoint whose tokenizer_config has no length limit: recmodel predict runs", rc == 0,
           f"model_max_length {limit}; exit {rc}" + (f": {err.strip().splitlines()[-1]}" if rc else ""))


@guarded("recmodel-trained model in transformers")
def check_recmodel_trained(args, work, vocab, sample_dir, cuda):
    import transformers
    data = os.path.join(work, "train-data")
    run([args.recmodel, "preprocess", "--input", os.path.join(sample_dir, "products.csv"), "--text-column", "title",
         "--label-column", "category", "--vocab", vocab, "--out", data, "--max-length", 64, "--max-rejected", "10%",
         "--force"])
    base = os.path.join(work, "rm-init")
    trained = os.path.join(work, "rm-trained")
    run([args.recmodel, "init", "--preset", "tiny", "--data", data, "--out", base, "--seed", 1, "--force"])
    device = ["--device", "cuda", "--precision", "bf16"] if cuda else ["--device", "cpu"]
    _, out, _, seconds = run([args.recmodel, "--json", "train", "--model", base, "--data", data, "--out", trained,
                              "--epochs", 1, "--batch-size", 32, "--force", *device])
    summary = json.loads(out)
    record(f"recmodel train {' '.join(device)} (tiny preset)", summary.get("steps", 0) > 0,
           f"{summary.get('steps')} steps in {seconds:.1f} s, dev accuracy "
           f"{(summary.get('dev') or {}).get('accuracy')}, final loss {summary.get('final_loss')}")
    texts = parity_texts(sample_dir)
    model = from_pretrained(trained)
    limit = predict_limit(trained)
    id_docs, _ = recmodel_ids(args.recmodel, ["--model", trained], texts, work, max_length=limit)
    reference = hf_logits(model, id_docs, "cpu")
    for dev in ["cpu"] + (["cuda"] if cuda else []):
        ours, docs = recmodel_logits(args.recmodel, trained, texts, work, dev, tag=f"trained-{dev}")
        theirs = reference if dev == "cpu" else hf_logits(model, id_docs, "cuda")
        compare(f"recmodel→HF from_pretrained (trained tiny): fp32 {dev}", ours, theirs, FP32_TOL)
        if dev == "cpu":
            labels = [model.config.id2label[int(i)] for i in np.argmax(theirs, axis=1)]
            same = sum(a == d["label"] for a, d in zip(labels, docs))
            record("recmodel→HF: same predicted labels (id2label)", same == len(texts), f"{same}/{len(texts)}")
    auto = transformers.AutoTokenizer.from_pretrained(trained)
    hf_ids = auto(texts, truncation=True, max_length=limit)["input_ids"]
    same = sum(list(a) == d["ids"] for a, d in zip(hf_ids, id_docs))
    record("recmodel's tokenizer.json in AutoTokenizer: same ids", same == len(texts),
           f"{same}/{len(texts)} texts ({type(auto).__name__})")
    return trained, id_docs


@guarded("ONNX export")
def check_export(args, work, trained, id_docs):
    import onnxruntime as ort
    out = os.path.join(work, "rm-export")
    run([args.recmodel, "export", "--model", trained, "--out", out, "--force"])
    session = ort.InferenceSession(os.path.join(out, "onnx", "model.onnx"), providers=["CPUExecutionProvider"])
    ids, _, mask = pad_batch([d["ids"] for d in id_docs])
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": np.zeros_like(ids.numpy())}
    names = {i.name for i in session.get_inputs()}
    onnx_logits = session.run(None, {k: v for k, v in feeds.items() if k in names})[0].astype(np.float64)
    reference = hf_logits(from_pretrained(trained), id_docs, "cpu")
    compare(f"recmodel export → onnxruntime {ort.__version__} (Debian ONNX + PyTorch libtorch)", onnx_logits,
            reference, 1e-4, f"; {len(id_docs)} texts")


def check_tokenizers(args, work, vocabs, sample_dir):
    corpus = varied_corpus(args.corpus_lines, seed=11, sample_dir=sample_dir)
    log(f"corpus: {len(corpus)} lines, {sum(len(t.encode('utf-8')) for t in corpus) / 1e6:.1f} MB")
    for vocab, lowercase in vocabs:
        name = os.path.basename(vocab)
        lines = corpus if name.startswith("bert-base-uncased") or len(vocabs) == 1 else corpus[:args.corpus_lines // 4]
        guarded(f"tokenizer ids vs BertTokenizerFast: {name}")(check_tokenizer)(args, work, vocab, lowercase, lines)


_STARTUP = {}


def recmodel_startup(recmodel):
    """Seconds `recmodel --version` takes (loading libtorch), the best of three."""
    if recmodel not in _STARTUP:
        _STARTUP[recmodel] = min(run([recmodel, "--version"])[3] for _ in range(3))
    return _STARTUP[recmodel]


def check_tokenizer(args, work, vocab, lowercase, lines):
    threads = os.cpu_count()
    tok = hf_tokenizer(vocab, lowercase)
    source = ["--vocab", vocab] + ([] if lowercase else ["--cased"])
    ours, ours_s = recmodel_ids(args.recmodel, source, lines, work, threads=threads)
    start = time.perf_counter()
    theirs = tok(lines, add_special_tokens=True, truncation=False)["input_ids"]
    theirs_s = time.perf_counter() - start
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a["ids"] != list(b)]
    mb = sum(len(t.encode("utf-8")) for t in lines) / 1e6
    startup = recmodel_startup(args.recmodel)
    net = max(1e-6, ours_s - startup)
    detail = (f"{len(lines) - len(bad)}/{len(lines)} identical ({'uncased' if lowercase else 'cased'}, "
              f"{type(tok).__name__}); recmodel {len(lines) / net:,.0f} lines/s ({mb / net:.1f} MB/s, {threads} "
              f"threads, JSON output included, its {startup:.2f} s start-up not; {len(lines) / ours_s:,.0f} lines/s "
              f"with it) vs Hugging Face {len(lines) / theirs_s:,.0f} lines/s ({mb / theirs_s:.1f} MB/s, the "
              f"batch call)")
    if bad:
        i = bad[0]
        detail += (f"; {len(bad)} differ, first line {i}: {lines[i][:80]!r} ours {ours[i]['ids'][:16]} "
                   f"theirs {list(theirs[i])[:16]}")
    record(f"tokenizer ids vs BertTokenizerFast: {os.path.basename(vocab)}", not bad, detail)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recmodel", required=True, help="the recmodel binary to check")
    parser.add_argument("--work", help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--vocab-dir", default=os.path.join(SOURCE_DIR, "bench", "gpu", "vocab"),
                        help="shared BERT vocabularies (*.txt) for the tokenizer check")
    parser.add_argument("--corpus-lines", type=int, default=200000)
    parser.add_argument("--no-cuda", action="store_true", help="CPU checks only")
    parser.add_argument("--only", default="checkpoints,unlimited,trained,export,tokenizers",
                        help="comma-separated subset of the checks (default: all)")
    args = parser.parse_args()
    args.recmodel = os.path.abspath(args.recmodel)
    work = args.work or tempfile.mkdtemp(prefix="hf-parity-")
    os.makedirs(work, exist_ok=True)

    import transformers
    cuda = torch.cuda.is_available() and not args.no_cuda
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 on both sides
        torch.backends.cudnn.allow_tf32 = False
    _, version, _, _ = run([args.recmodel, "--version"])
    log(version.strip())
    gpu = torch.cuda.get_device_name(0) if cuda else "none"
    bf16_flag = "--precision" in recmodel_help(args.recmodel, "predict")

    sample_dir = os.path.join(work, "sample")
    generate_sample_data(sample_dir, 3000, 5)
    with open(os.path.join(work, "one-line.txt"), "w") as f:
        f.write("wireless earbuds with charging case\n")
    learned = os.path.join(work, "learned-vocab.txt")
    corpus = os.path.join(work, "vocab-corpus.txt")
    with open(corpus, "w", encoding="utf-8") as out:
        for name in ("products.csv", "queries.tsv", "reviews.jsonl"):  # one row holds invalid UTF-8 on purpose
            out.writelines(open(os.path.join(sample_dir, name), encoding="utf-8", errors="replace"))
    run([args.recmodel, "vocab", "--input", corpus, "--size", 4000, "--lowercase", "--out", learned, "--force"])

    vocabs = [(learned, True)]
    for path in sorted(glob.glob(os.path.join(args.vocab_dir, "*.txt"))):
        vocabs.append((path, "uncased" in os.path.basename(path) or "chinese" in os.path.basename(path)))
    if len(vocabs) == 1:
        log(f"no shared vocabularies in {args.vocab_dir} (bench/gpu/fetch-debs.sh copies them); "
            "the tokenizer check uses the learned one only")

    only = set(args.only.split(","))
    if "checkpoints" in only:
        check_hf_checkpoints(args, work, learned, sample_dir, cuda, bf16_flag)
    if "unlimited" in only:
        check_unlimited_tokenizer(args, work, learned)
    trained = check_recmodel_trained(args, work, learned, sample_dir, cuda) if only & {"trained", "export"} else None
    if trained and "export" in only:
        check_export(args, work, *trained)
    if "tokenizers" in only:
        check_tokenizers(args, work, vocabs, sample_dir)

    print(f"\n### Hugging Face parity ({time.strftime('%Y-%m-%d')}, {gpu}, torch {torch.__version__}, "
          f"transformers {transformers.__version__})\n")
    print(f"recmodel: {' · '.join(version.strip().splitlines())}\n")
    print("| check | result | detail |\n| --- | --- | --- |")
    for check, status, detail in RESULTS:
        print(f"| {check} | {status} | {detail.replace('|', '/')} |")
    failed = [r for r in RESULTS if r[1] == "FAIL"]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
