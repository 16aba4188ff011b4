#!/usr/bin/env python3
"""Training speed on the GPU machine (issue 8): recmodel `train --device cuda --precision bf16`
vs the Hugging Face Trainer (bf16, SDPA attention, group_by_length) vs a plain PyTorch loop
(bf16 autocast, SDPA, fused AdamW, loss read every 10 steps), on the same data, model (the `base`
preset, randomly initialised by `recmodel init`, so all three start from identical weights),
batch size, optimizer (AdamW, no decay on biases and LayerNorm, clipping at 1.0) and linear
warmup/decay schedule, sequence length 128. Then `predict` on the GPU: texts/s at batch 64 vs the
Hugging Face pipeline and plain PyTorch inference.

Reports samples/s and tokens/s (median over 10-step logging intervals, where every framework
synchronizes to read the loss), peak GPU memory (device-wide, polled through NVML, CUDA context
included), MFU (FLOPs per token = 6 x non-embedding parameters + 12 x layers x hidden x sequence
length, against a bf16 8192^3 matrix product measured in the same run) and the last dev accuracy.
Writes a bench/RESULTS.md section (markdown) on stdout; progress on stderr.

  python3 bench/gpu/train_speed.py --recmodel build-gpu/recmodel [--train-rows 12000] [--epochs 2]
"""
import argparse
import csv
import inspect
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SOURCE_DIR, PlainBert, generate_sample_data, log, pad_batch, read_split, run  # noqa: E402

LOG_EVERY = 10
DEVICE = "cuda"  # --cpu-smoke: "cpu", to try the plumbing where there is no GPU


# --- measuring ------------------------------------------------------------------------------------

class MemoryPoller:
    """Peak device memory in use while a block runs, minus what was in use before (NVML)."""

    def __init__(self):
        self.peak = None
        self._stop = threading.Event()
        try:
            import pynvml
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._read = lambda: pynvml.nvmlDeviceGetMemoryInfo(self._handle).used
        except Exception:  # noqa: BLE001 - no NVML: fall back to nvidia-smi
            self._read = self._smi

    @staticmethod
    def _smi():
        out = run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                  check=False)[1]
        return int(out.strip().splitlines()[0]) * 1024 * 1024 if out.strip() else 0

    def __enter__(self):
        self.base = self._read()
        self.peak = 0

        def loop():
            while not self._stop.wait(0.1):
                self.peak = max(self.peak, self._read() - self.base)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class NoPoller:
    peak = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def measure_peak_tflops():
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        a @ b
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000 / 10
    del a, b
    torch.cuda.empty_cache()
    return 2 * n ** 3 / seconds / 1e12


def steady_rate(intervals):
    """Median samples/s over (seconds, samples) logging intervals, the first one (start-up) left out."""
    rates = [samples / seconds for seconds, samples in intervals[1:] if seconds > 0] or \
            [samples / seconds for seconds, samples in intervals if seconds > 0]
    return statistics.median(rates) if rates else float("nan")


# --- data ---------------------------------------------------------------------------------------------

def make_dataset(work, recmodel, vocab, train_rows, dev_rows, seed=1):
    """Catalogue-page texts (3 to 10 product titles of one category, ~40-150 tokens) labelled with
    the category, prepared by recmodel preprocess at --max-length 128."""
    raw = os.path.join(work, "raw")
    total = train_rows + dev_rows
    generate_sample_data(raw, max(5000, total * 2), seed, only=["products"])
    by_category = {}
    with open(os.path.join(raw, "products.csv"), encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.DictReader(f):
            title, category = (row.get("title") or "").strip(), (row.get("category") or "").strip()
            if title and category:
                by_category.setdefault(category, []).append(" ".join(title.split()))
    rng = random.Random(seed)
    categories = sorted(by_category)
    path = os.path.join(work, "pages.csv")
    texts = []
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "label"])
        for i in range(total):
            category = rng.choice(categories)
            text = " ; ".join(rng.choice(by_category[category]) for _ in range(rng.randint(3, 10)))
            texts.append(text)
            writer.writerow([f"page{i}", text, category])
    data = os.path.join(work, "data")
    share = train_rows / total
    run([recmodel, "preprocess", "--input", path, "--text-column", "text", "--label-column", "label", "--vocab",
         vocab, "--out", data, "--max-length", 128, "--split", f"{share:.6f},{1 - share:.6f}", "--seed", seed,
         "--max-rejected", "5%", "--force"])
    return data, texts


def length_batches(lengths, batch_size, rng):
    """Shuffled examples sorted by length within windows of 64 batches, batches shuffled: the
    bucketing recmodel train does (training/batching.cpp), with numpy's generator."""
    order = rng.permutation(len(lengths))
    window = batch_size * 64
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def warmup_steps(total_steps, ratio):
    return int(np.ceil(ratio * total_steps))


def linear_factor(step, warmup, total):
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


# --- the three trainers -------------------------------------------------------------------------

def train_recmodel(args, model_dir, data, out):
    cmd = [args.recmodel, "--json", "train", "--model", model_dir, "--data", data, "--out", out, "--epochs",
           args.epochs, "--batch-size", args.batch_size, "--lr", args.lr, "--warmup-ratio", args.warmup_ratio,
           "--weight-decay", 0.01, "--max-grad-norm", 1.0, "--device", DEVICE,
           "--precision", "bf16" if DEVICE == "cuda" else "fp32",
           "--log-every", LOG_EVERY, "--checkpoint-every", 1 << 39, "--seed", 1, "--force"]
    _, stdout, _, wall = run(cmd)
    summary = json.loads(stdout)
    intervals, dev = [], []
    last_step, last_time = 0, 0.0
    for line in open(os.path.join(out, "train_log.jsonl")):
        record = json.loads(line)
        if "loss" in record and "samples_per_second" in record:
            samples = record["samples_per_second"] * (record["elapsed_seconds"] - last_time)
            intervals.append((record["elapsed_seconds"] - last_time, samples))
            last_time = record["elapsed_seconds"]
            last_step = record["step"]
        elif "dev" in record:
            dev.append(record["dev"].get("accuracy"))
    return {"intervals": intervals, "train_seconds": summary["seconds"], "wall_seconds": wall,
            "dev_accuracy": dev[-1] if dev else None, "best_dev_accuracy": (summary.get("dev") or {}).get("accuracy"),
            "steps": summary["steps"], "own_tokens_per_second": summary.get("tokens_per_second"),
            "final_step": last_step}


def worker_hf(args):
    import transformers
    from transformers import Trainer, TrainingArguments, TrainerCallback

    train_ex, train_seg, train_y = read_split(os.path.join(args.data, "train.bin"))
    dev_ex, dev_seg, dev_y = read_split(os.path.join(args.data, "dev.bin"))

    class Split(torch.utils.data.Dataset):
        def __init__(self, examples, segments, labels):
            self.rows = [{"input_ids": e.tolist(), "token_type_ids": [0] * int(s) + [1] * (len(e) - int(s)),
                          "labels": int(y)} for e, s, y in zip(examples, segments, labels)]

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            return self.rows[i]

    def collate(rows):
        n = max(len(r["input_ids"]) for r in rows)
        ids = torch.zeros(len(rows), n, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[i, :k] = torch.tensor(r["input_ids"])
            types[i, :k] = torch.tensor(r["token_type_ids"])
            mask[i, :k] = 1
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
                "labels": torch.tensor([r["labels"] for r in rows])}

    intervals = []

    class Timer(TrainerCallback):
        last = None

        def on_log(self, _args, state, control, logs=None, **kwargs):
            # A training log (not evaluation, not the final summary): the loss was just read, synchronized.
            if logs and not any(k.startswith("eval_") or k.startswith("train_") for k in logs):
                now = time.perf_counter()
                if self.last is not None:
                    intervals.append((now - self.last[0], (state.global_step - self.last[1]) * args.batch_size))
                self.last = (now, state.global_step)

    steps_per_epoch = (len(train_ex) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    wanted = dict(output_dir=args.out, per_device_train_batch_size=args.batch_size,
                  per_device_eval_batch_size=args.batch_size * 2, num_train_epochs=args.epochs,
                  learning_rate=args.lr, weight_decay=0.01, warmup_steps=warmup_steps(total, args.warmup_ratio),
                  lr_scheduler_type="linear", max_grad_norm=1.0, bf16=True, group_by_length=True,
                  eval_strategy="epoch", evaluation_strategy="epoch", save_strategy="no", logging_steps=LOG_EVERY,
                  report_to="none", seed=1, disable_tqdm=True, remove_unused_columns=False)
    accepted = inspect.signature(TrainingArguments.__init__).parameters
    if "eval_strategy" in accepted:
        wanted.pop("evaluation_strategy")
    dropped = [k for k in wanted if k not in accepted]
    for k in dropped:
        wanted.pop(k)
    if "group_by_length" in dropped or "bf16" in dropped:
        raise RuntimeError(f"TrainingArguments of transformers {transformers.__version__} lacks {dropped}")
    training_args = TrainingArguments(**wanted)
    try:
        model = transformers.BertForSequenceClassification.from_pretrained(args.model, attn_implementation="sdpa",
                                                                           dtype=torch.float32)
    except TypeError:
        model = transformers.BertForSequenceClassification.from_pretrained(args.model, attn_implementation="sdpa",
                                                                           torch_dtype=torch.float32)

    def accuracy(prediction):
        logits, labels = prediction.predictions, prediction.label_ids
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = Trainer(model=model, args=training_args, train_dataset=Split(train_ex, train_seg, train_y),
                      eval_dataset=Split(dev_ex, dev_seg, dev_y), data_collator=collate, compute_metrics=accuracy,
                      callbacks=[Timer()])
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    history = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    return {"intervals": intervals, "train_seconds": seconds, "dev_accuracy": history[-1] if history else None,
            "steps": trainer.state.global_step, "optim": str(training_args.optim),
            "attention": getattr(model.config, "_attn_implementation", "?"), "dropped_args": dropped,
            "torch_peak_allocated": torch.cuda.max_memory_allocated()}


def worker_torch(args):
    train_ex, train_seg, train_y = read_split(os.path.join(args.data, "train.bin"))
    dev_ex, dev_seg, dev_y = read_split(os.path.join(args.data, "dev.bin"))
    device = torch.device(DEVICE)
    bf16 = DEVICE == "cuda"
    torch.manual_seed(1)
    model = PlainBert.from_dir(args.model).to(device).train()
    no_decay = lambda n: n.endswith(".bias") or "LayerNorm." in n
    groups = [{"params": [p for n, p in model.named_parameters() if not no_decay(n)], "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if no_decay(n)], "weight_decay": 0.0}]
    try:
        if not bf16:
            raise TypeError("fused AdamW is for CUDA")
        optimizer = torch.optim.AdamW(groups, lr=args.lr, fused=True)
    except (TypeError, RuntimeError):
        optimizer = torch.optim.AdamW(groups, lr=args.lr)
    steps_per_epoch = (len(train_ex) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    warmup = warmup_steps(total, args.warmup_ratio)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_factor(s, warmup, total))
    lengths = [len(e) for e in train_ex]
    rng = np.random.default_rng(1)

    def to_device(examples, segments, labels, indices):
        ids, types, mask = pad_batch([examples[i] for i in indices], [segments[i] for i in indices])
        y = torch.as_tensor(np.asarray([labels[i] for i in indices]), dtype=torch.long)
        if not bf16:
            return [ids, types, mask, y]
        return [t.pin_memory().to(device, non_blocking=True) for t in (ids, types, mask, y)]

    def evaluate():
        model.eval()
        correct = 0
        order = np.argsort([-len(e) for e in dev_ex])
        with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=bf16):
            for b in range(0, len(order), args.batch_size * 2):
                ids, types, mask, y = to_device(dev_ex, dev_seg, dev_y, order[b:b + args.batch_size * 2])
                correct += (model(ids, types, mask).argmax(-1) == y).sum()
        model.train()
        return float(correct) / len(dev_ex)

    if bf16:
        torch.cuda.reset_peak_memory_stats()
    intervals, accuracies = [], []
    start = time.perf_counter()
    last = (start, 0)
    step = 0
    loss_sum = torch.zeros((), device=device)
    for epoch in range(args.epochs):
        batches = length_batches(lengths, args.batch_size, rng)
        # The next batch is copied (pinned, asynchronously) while this one computes.
        upcoming = to_device(train_ex, train_seg, train_y, batches[0])
        for b in range(len(batches)):
            ids, types, mask, y = upcoming
            if b + 1 < len(batches):
                upcoming = to_device(train_ex, train_seg, train_y, batches[b + 1])
            with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=bf16):
                logits = model(ids, types, mask)
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            step += 1
            if step % LOG_EVERY == 0:
                loss_value = float(loss_sum) / LOG_EVERY  # the only host synchronization
                loss_sum.zero_()
                now = time.perf_counter()
                intervals.append((now - last[0], (step - last[1]) * args.batch_size))
                last = (now, step)
        accuracies.append(evaluate())
    seconds = time.perf_counter() - start
    return {"intervals": intervals, "train_seconds": seconds, "dev_accuracy": accuracies[-1], "steps": step,
            "last_loss": loss_value if step >= LOG_EVERY else None, "optim": type(optimizer).__name__ +
            (" (fused)" if optimizer.defaults.get("fused") else ""),
            "torch_peak_allocated": torch.cuda.max_memory_allocated() if bf16 else None}


def run_worker(args, kind, model_dir, data, out):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--model", model_dir, "--data", data,
           "--out", out, "--epochs", args.epochs, "--batch-size", args.batch_size, "--lr", args.lr,
           "--warmup-ratio", args.warmup_ratio, "--recmodel", args.recmodel] + (["--cpu-smoke"] if DEVICE == "cpu" else [])
    _, stdout, _, wall = run(cmd, env={"TOKENIZERS_PARALLELISM": "false"})
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


# --- predict --------------------------------------------------------------------------------------

def predict_bench(args, model_dir, texts, work):
    texts = [" ".join(t.split()) for t in texts]
    path = os.path.join(work, "predict-texts.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    rows = []
    _, _, err, wall = run([args.recmodel, "predict", "--model", model_dir, "--input", path, "--device", "cuda",
                           "--batch-size", 64, "--max-length", 128], stdout=subprocess_devnull())
    rate = None
    for line in err.splitlines():
        if "texts/s" in line and "predicted" in line:
            rate = float(line.split("(")[1].split(" texts/s")[0])
    rows.append(("recmodel predict --device cuda (fp32; tokenization included)", rate, len(texts) / wall))

    import transformers
    for dtype, label in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        try:
            pipe = transformers.pipeline("text-classification", model=model_dir, device=0, dtype=dtype)
        except TypeError:
            pipe = None
        if pipe is None or pipe.model.dtype != dtype:  # transformers 4.x names it torch_dtype
            pipe = transformers.pipeline("text-classification", model=model_dir, device=0, torch_dtype=dtype)
        pipe(texts[:256], batch_size=64, truncation=True, max_length=128)
        torch.cuda.synchronize()
        start = time.perf_counter()
        pipe(texts, batch_size=64, truncation=True, max_length=128)
        torch.cuda.synchronize()
        rows.append((f"Hugging Face pipeline ({label}; tokenization included)", len(texts) / (time.perf_counter() - start),
                     None))
        del pipe

    _, out, _, _ = run([args.recmodel, "tokenize", "--model", model_dir, "--input", path, "--ids-only",
                        "--max-length", 128])
    ids = [json.loads(line)["ids"] for line in out.splitlines() if line.strip()]
    model = PlainBert.from_dir(model_dir).cuda().eval()
    order = np.argsort([-len(i) for i in ids])
    for autocast, label in ((False, "fp32"), (True, "bf16")):
        def once():
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                for b in range(0, len(order), 64):
                    batch, _, mask = pad_batch([ids[i] for i in order[b:b + 64]])
                    batch = batch.pin_memory().cuda(non_blocking=True)
                    mask = mask.pin_memory().cuda(non_blocking=True)
                    model(batch, torch.zeros_like(batch), mask).float().cpu()
        once()
        torch.cuda.synchronize()
        start = time.perf_counter()
        once()
        torch.cuda.synchronize()
        rows.append((f"plain PyTorch ({label}; token ids given)", len(texts) / (time.perf_counter() - start), None))
    return rows


def subprocess_devnull():
    return open(os.devnull, "wb")


# --- main -----------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recmodel", required=True)
    parser.add_argument("--vocab", default=os.path.join(SOURCE_DIR, "bench", "gpu", "vocab", "bert-base-uncased.txt"))
    parser.add_argument("--preset", default="base")
    parser.add_argument("--train-rows", type=int, default=12000)
    parser.add_argument("--dev-rows", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--predict-texts", type=int, default=8192)
    parser.add_argument("--only", default="recmodel,hf,torch,predict", help="comma-separated subset")
    parser.add_argument("--work", help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="try the plumbing on the CPU (fp32, no Trainer, no predict): figures mean nothing")
    parser.add_argument("--worker", choices=["hf", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.recmodel = os.path.abspath(args.recmodel)
    global DEVICE
    if args.cpu_smoke:
        DEVICE = "cpu"

    if args.worker:
        result = worker_hf(args) if args.worker == "hf" else worker_torch(args)
        print(json.dumps(result))
        return 0

    if not torch.cuda.is_available() and not args.cpu_smoke:
        log("train_speed.py: no CUDA device; this benchmark runs on the GPU machine (or try --cpu-smoke)")
        return 1
    only = set(args.only.split(","))
    if args.cpu_smoke:
        only -= {"hf", "predict"}
    work = args.work or tempfile.mkdtemp(prefix="train-speed-")
    os.makedirs(work, exist_ok=True)
    vocab = args.vocab
    if not os.path.exists(vocab):
        log(f"{vocab} is missing (bench/gpu/fetch-debs.sh copies the shared vocabularies); learning a 30,522-token "
            "vocabulary from sample data instead, so the parameter count differs from BERT-base")
        sample = os.path.join(work, "vocab-sample")
        generate_sample_data(sample, 100000, 9)
        vocab = os.path.join(work, "vocab.txt")
        run([args.recmodel, "vocab", "--input", os.path.join(sample, "products.csv"), "--input",
             os.path.join(sample, "reviews.jsonl"), "--lowercase", "--size", 30522, "--out", vocab, "--force"])

    peak = measure_peak_tflops() if DEVICE == "cuda" else 1.0
    gpu = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "CPU smoke run"
    log(f"{gpu}: bf16 8192^3 matrix product {peak:.0f} TFLOP/s")
    data, texts = make_dataset(work, args.recmodel, vocab, args.train_rows, args.dev_rows)
    model_dir = os.path.join(work, "init")
    _, out, _, _ = run([args.recmodel, "--json", "init", "--preset", args.preset, "--data", data, "--out", model_dir,
                        "--seed", 1, "--force"])
    params = json.loads(out)["parameters"]

    config = json.load(open(os.path.join(model_dir, "config.json")))
    h, layers = config["hidden_size"], config["num_hidden_layers"]
    embedding = (config["vocab_size"] + config["max_position_embeddings"] + config["type_vocab_size"]) * h
    train_ex, _, _ = read_split(os.path.join(data, "train.bin"))
    lengths = np.array([len(e) for e in train_ex], dtype=np.float64)
    mean_tokens = float(lengths.mean())
    attention_length = float((lengths ** 2).sum() / lengths.sum())  # per token: the length of its sequence
    flops_per_token = 6 * (params - embedding) + 12 * layers * h * attention_length
    log(f"data: {len(train_ex)} train examples, {mean_tokens:.1f} tokens on average; model {params / 1e6:.1f} M "
        f"parameters; {flops_per_token / 1e9:.2f} GFLOP per token")

    results = {}
    runs = [("recmodel", "recmodel train (bf16, C++)"), ("hf", "Hugging Face Trainer (bf16, sdpa, group_by_length)"),
            ("torch", "plain PyTorch loop (bf16 autocast, sdpa, fused AdamW)")]
    trained = None
    for key, label in runs:
        if key not in only:
            continue
        log(f"training: {label}")
        out_dir = os.path.join(work, f"out-{key}")
        try:
            with (MemoryPoller() if DEVICE == "cuda" else NoPoller()) as memory:
                result = (train_recmodel(args, model_dir, data, out_dir) if key == "recmodel"
                          else run_worker(args, key, model_dir, data, out_dir))
            result["peak_memory"] = memory.peak
            results[key] = (label, result)
            if key == "recmodel":
                trained = out_dir
            log(f"  {json.dumps({k: v for k, v in result.items() if k != 'intervals'})}")
        except Exception as e:  # noqa: BLE001 - one failed run still leaves the others' figures
            log(f"  failed: {e}")
            results[key] = (label, {"error": str(e)[:400]})

    print(f"\n### GPU training speed ({time.strftime('%Y-%m-%d')}, {gpu}, torch {torch.__version__}, CUDA "
          f"{torch.version.cuda}, transformers {_version('transformers')})\n")
    print(f"Preset `{args.preset}` ({params / 1e6:.1f} M parameters), {len(train_ex)} training examples of "
          f"catalogue-page text (3-10 product titles of one of {len(json.load(open(os.path.join(data, 'manifest.json'))).get('labels', [])) or '?'} "
          f"categories; mean {mean_tokens:.0f} tokens, max 128), batch {args.batch_size}, {args.epochs} epochs, "
          f"AdamW lr {args.lr:g} with {args.warmup_ratio:g} linear warmup then linear decay, weight decay 0.01, "
          f"clipping 1.0, identical initial weights. Rates: median of {LOG_EVERY}-step intervals after the first; "
          f"tokens/s = samples/s x mean tokens per example. MFU: {flops_per_token / 1e9:.2f} GFLOP per token "
          f"against the measured bf16 peak of {peak:.0f} TFLOP/s. Memory: device-wide peak during the run.\n")
    print("| trainer | samples/s | tokens/s | MFU | peak GPU memory | train time | last dev accuracy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rates = {}
    for key, (label, result) in results.items():
        if "error" in result:
            print(f"| {label} | failed: {result['error'].replace('|', '/')[:200]} | | | | | |")
            continue
        sps = steady_rate(result["intervals"])
        if not sps == sps:  # no logging intervals: the whole training time instead
            sps = result["steps"] * args.batch_size / result["train_seconds"]
            label += " (end-to-end rate)"
        rates[key] = sps
        tps = sps * mean_tokens
        mfu = tps * flops_per_token / (peak * 1e12)
        memory = f"{result['peak_memory'] / 2**30:.1f} GiB" if result.get("peak_memory") is not None else "?"
        acc = result.get("dev_accuracy")
        print(f"| {label} | {sps:,.0f} | {tps:,.0f} | {mfu:.1%} | {memory} | {result['train_seconds']:.1f} s "
              f"({result['steps']} steps) | {acc if acc is None else f'{acc:.4f}'} |")
    if "recmodel" in rates and "hf" in rates:
        ratio = rates["recmodel"] / rates["hf"]
        print(f"\nrecmodel / Hugging Face Trainer: {ratio:.2f}x samples/s (target >= 1.3x at equal dev accuracy)")
    if "recmodel" in rates and "torch" in rates:
        print(f"recmodel / plain PyTorch loop: {rates['recmodel'] / rates['torch']:.2f}x samples/s")
    for key, (label, result) in results.items():
        extra = {k: result[k] for k in ("optim", "attention", "dropped_args", "best_dev_accuracy",
                                        "own_tokens_per_second", "torch_peak_allocated", "wall_seconds")
                 if k in result}
        if extra:
            print(f"- {label}: {json.dumps(extra)}")

    if "predict" in only and trained:
        log("predict on the GPU")
        try:
            rows = predict_bench(args, trained, texts[:args.predict_texts], work)
            print(f"\n### GPU predict throughput ({len(texts[:args.predict_texts])} texts of up to 128 tokens, batch 64)\n")
            print("| predictor | texts/s | texts/s incl. start-up |\n| --- | --- | --- |")
            for label, rate, with_start in rows:
                fmt = lambda v: "?" if v is None else f"{v:,.0f}"
                print(f"| {label} | {fmt(rate)} | {fmt(with_start) if with_start else ''} |")
        except Exception as e:  # noqa: BLE001
            print(f"\npredict benchmark failed: {e}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all("error" not in r for _, r in results.values()) else 1


def _version(name):
    try:
        return __import__(name).__version__
    except ImportError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
