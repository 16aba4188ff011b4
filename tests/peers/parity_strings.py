#!/usr/bin/python3
"""Writes the inputs of the tokenizer parity test: JSONL objects {"text": ...} or {"text": ..., "pair": ...}.

Deterministic for a given --seed. The strings aim at every place where a BERT tokenizer can go wrong:
text cleaning (control and format characters, U+FFFD, Unicode spaces), CJK splitting, lower-casing and
accent stripping, punctuation by Unicode category, WordPiece (long words, ## continuations, [UNK]),
special tokens written in the text, and pair encoding. Product titles come from the sample-data
generator so that ordinary e-commerce text is covered as well.
"""

import argparse
import importlib.util
import json
import os
import random
import sys

ACCENTS = ["café", "naïve", "Ångström", "Crème brûlée", "Ñandú", "Smørrebrød", "Đà Nẵng", "Ærøskøbing",
           "İstanbul", "ǅemal", "ﬁnancial ﬂow", "Straße", "STRASSE ẞ", "façade", "jalapeño", "Zürich",
           "résumé", "São Paulo", "Łódź", "Dvořák", "Kraków", "Ōsaka", "Hawaiʻi", "cañón", "coöperate",
           "Pokémon", "Ça va? Très bien!", "ÉCOLE ÉLÉMENTAIRE", "Åland Øresund", "Ğ ğ Ş ş ı İ"]
GREEK = ["ΟΔΟΣ", "ΣΊΣΥΦΟΣ", "Σ", "ΑΣ.", "ΑΣ ΒΣ", "σοφός", "ΌΣΟΣ ΚΑΙ ΤΟΣΟΣ", "ὈΔΥΣΣΕΎΣ", "Ελληνικά",
         "ΜΆΘΗΜΑ ΤΗΣ ΓΛΏΣΣΑΣ", "λόγος", "ΣΣ", "ΑΣ1", "ΑΣ-ΒΣ", "Ωμέγα ΑΛΦΑ"]
CYRILLIC = ["Привет, мир!", "ЁЛКА и ёжик", "Ґанок", "Їжак", "Москва", "ЩУКА", "объявление", "Ўзбекистон",
            "Съешь же ещё этих мягких французских булок"]
ARABIC = ["مرحبا بالعالم", "مَرْحَبًا", "١٢٣ ٤٥٦", "كتاب، قلم", "العربيـــة", "هاتف ذكي ٦٤ جيجابايت",
          "؟", "لا إله", "ﻻ"]
HEBREW = ["שָׁלוֹם עוֹלָם", "עברית", "ספר״ים", "מחיר: ₪120"]
DEVANAGARI = ["नमस्ते दुनिया", "हिन्दी", "क्षत्रिय", "१२३ रुपये", "भारत।", "कृष्ण"]
THAI = ["สวัสดีครับ", "ภาษาไทย", "กรุงเทพมหานคร", "น้ำ ๑๒๓"]
CJK = ["你好世界", "東京タワー", "한국어 텍스트", "日本語のテキストです。", "𠀀𠀁𪜀", "豈更車", "⺀⺁", "ｶﾀｶﾅ",
       "〇々〆", "中文，标点。", "「引用」", "ㄅㄆㄇ", "ᄀᄁ", "무선 이어폰 블루투스", "高速充电器65W",
       "iPhone15手机壳", "㐀㐁", "𫝀𬺰", "の", "ー", "〜"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "1️⃣", "❤️", "©", "™", "®", "🔥🔥🔥", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
         "🧑🏿‍🚀", "☕️", "✅", "👩‍💻", "😂😂", "🎉", "⭐️⭐️⭐️⭐️⭐️"]
CONTROLS = [chr(c) for c in range(0x00, 0x20) if c not in (0x09, 0x0A)] + [
    "\x7f", "\x80", "\x9f", "\u0085", "\u00ad", "\u061c", "\u180e", "\u200b", "\u200c", "\u200d", "\u200e",
    "\u200f", "\u202a", "\u202e", "\u2060", "\u2066", "\u2069", "\ufeff", "\ufffd", "\ufff9", "\ue000",
    "\uf8ff", "\U0001d173", "\U000e0001", "\U000e0041", "\U000f0000"]
SPACES = [" ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u1680"] + [chr(c) for c in range(0x2000, 0x200B)] + [
    "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "  ", " \t \n "]
HTML = ["&amp;", "<br>", "<br/>", "&nbsp;", "&quot;quoted&quot;", "<b>bold</b>", "&#39;", "&lt;3",
        "<p class=\"x\">para</p>", "&eacute;", "<a href='https://example.com/p?id=1&x=2'>link</a>",
        "<!-- comment -->", "&#x1F600;", "</span></div>"]
NUMBERS = ["500ml", "500 ml", "1.5 L", "2x3", "3,5 kg", "12.000,50 €", "$19.99", "50%", "10-pack",
           "1/2 inch", "½", "m²", "①②", "Ⅻ", "٣٤", "१२३", "４５６", "1e-5", "0xFF", "15.6\"", "5'11\"",
           "-40°C", "24/7", "3.14159265358979", "1,000,000", "#1", "No.5", "100mAh", "A4", "USB3.0",
           "v2.1.0", "2024-01-31", "12:30pm", "+49 30 123456", "¥1,280", "£5", "₹499", "₩10,000"]
SPECIALS = ["[SEP]", "[CLS]", "[cls]", "[MASK]", "[UNK]", "[PAD]", "hello[SEP]world", "[SEP][SEP]",
            " [SEP] ", "[ SEP ]", "[SEP", "[[SEP]]", "＜SEP＞", "[MASK]ed", "[Sep]", "x[CLS]y[MASK]z",
            "[unused0]", "[UNK]nown", "##ing", "un##able", "##"]
PUNCTUATION = ["!!!???", "...", "—–-", "«»", "„“", "¿¡", "…", "•", "@#$%^&*()", "~`|\\", "''", "\"\"",
               "。、！？", "‘’", "§¶", "†‡", "¦", "·", "‰", "′″", "‼", "⁉", "_-_", "+=<>", "{}[]", "/\\//",
               "::;;", "¡Hola!", "??!!..", "(((nested)))"]
COMBINING = ["e\u0301", "a\u0308\u0301", "Z\u0324\u0354\u0367\u0311\u0313a\u0356\u032d\u0308\u0307l\u036e",
             "\u0301start", "a\u20dd", "o\u0338", "n\u0303", "A\u030a", "i\u0307", "\u0915\u094d\u0937",
             "e\u0301" * 3, "x\u0300\u0301\u0302\u0303\u0304"]
FULLWIDTH = ["ＡＢＣ", "ｆｕｌｌｗｉｄｔｈ", "！？", "（株）", "＄１００", "ＵＳＢ－Ｃ", "Ｈｅｌｌｏ，　Ｗｏｒｌｄ"]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "unbelievable", "tokenization",
         "wireless", "earbuds", "waterproof", "charger", "Bluetooth", "SAMSUNG", "iPhone", "MacBook",
         "e-commerce", "don't", "isn't", "O'Reilly", "rock'n'roll", "well-being", "state-of-the-art",
         "antidisestablishmentarianism", "pneumonoultramicroscopicsilicovolcanoconiosis", "HTTPS",
         "naïveté", "übermäßig", "Ünïcödé", "reconfigurable", "playstation5", "x86_64", "snake_case",
         "camelCaseWord", "ALLCAPS", "MiXeD", "a", "I", "ok"]
LONG_WORDS = ["a" * 99, "a" * 100, "a" * 101, "b" * 150, "supercalifragilistic" * 6,
              "https://www.example.com/products/" + "x" * 120 + "?ref=search&utm_source=mail",
              "é" * 100, "é" * 101, "e\u0301" * 60, "e\u0301" * 100, "日" * 120, "ab" * 60 + "!" + "cd" * 10,
              "𝐁𝐨𝐥𝐝𝐓𝐞𝐱𝐭" * 15, "ü" * 50 + "u" * 51, "1234567890" * 11, "İ" * 101, "ﬁ" * 101]

GROUPS = [ACCENTS, GREEK, CYRILLIC, ARABIC, HEBREW, DEVANAGARI, THAI, CJK, EMOJI, CONTROLS, SPACES, HTML,
          NUMBERS, SPECIALS, PUNCTUATION, COMBINING, FULLWIDTH, WORDS, LONG_WORDS]
GLUE = ["", " ", " ", " ", "-", ",", ", ", "/", "\u00a0", "\u3000", "\t", "\n", "\u200b", ".", "|"]


def load_sample_generator(source_dir):
    """Imports share/generate_sample_data.py for realistic titles, queries and reviews."""
    path = os.path.join(source_dir, "share", "generate_sample_data.py")
    spec = importlib.util.spec_from_file_location("generate_sample_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate(seed, source_dir):
    rng = random.Random(seed)
    items = []

    def add(text, pair=None):
        items.append({"text": text} if pair is None else {"text": text, "pair": pair})

    # Every fragment on its own, and embedded in ordinary words.
    for group in GROUPS:
        for fragment in group:
            add(fragment)
            add("Hello " + fragment + " world")
    for c in CONTROLS:
        add("a" + c + "b")
    for s in SPACES:
        add("a" + s + "b" + s)
    add("")

    sample = load_sample_generator(source_dir).Generator(seed, 1000)
    for _ in range(400):
        title, _ = sample.noisy_title()
        add(title)
    for intent in ["product", "support", "order_status", "deals", "category"]:
        for _ in range(20):
            add(sample.query(intent))
    for stars in range(1, 6):
        for _ in range(20):
            add(sample.review(stars))

    def mixture(low, high):
        parts = []
        for _ in range(rng.randint(low, high)):
            group = GROUPS[int(rng.random() * len(GROUPS))]
            parts.append(group[int(rng.random() * len(group))])
            parts.append(GLUE[int(rng.random() * len(GLUE))])
        text = "".join(parts)
        if rng.random() < 0.2:
            text = text.upper()
        elif rng.random() < 0.1:
            text = text.lower()
        return text

    while len(items) < 2400:
        add(mixture(1, 8))
    # Long inputs (well past 512 tokens) for truncation at the model's maximum.
    for _ in range(40):
        add(mixture(150, 400))
    # Pairs: query + product title, and random mixtures; the pair is never empty because
    # transformers.js reads an empty pair as "no pair".
    for _ in range(300):
        title, _ = sample.noisy_title()
        add(sample.query("product"), title)
    for _ in range(500):
        add(mixture(0, 6), mixture(1, 6) or "x")
    for _ in range(30):
        add(mixture(100, 300), mixture(100, 300))
        add(mixture(1, 3), mixture(150, 300))
        add(mixture(150, 300), mixture(1, 3))
    # Equal-length pairs that must be cut: which side gets the odd token is where truncation
    # implementations disagree.
    for n in range(5, 40):
        add(" ".join(["word"] * n), " ".join(["pair"] * n))
        add(" ".join(["word"] * n), " ".join(["pair"] * (n + 1)))
    return items


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", help="output file (default: stdout)")
    parser.add_argument("--source-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    args = parser.parse_args()
    items = generate(args.seed, args.source_dir)
    out = open(args.out, "w", encoding="utf-8", newline="\n") if args.out else sys.stdout
    for item in items:
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
    if args.out:
        out.close()
    print("%d inputs (%d pairs)" % (len(items), sum(1 for i in items if "pair" in i)), file=sys.stderr)


if __name__ == "__main__":
    main()
