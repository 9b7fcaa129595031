#!/usr/bin/env python3
"""Writes the CLIP tokenizer fixtures (dev-only; needs the venv from scripts/setup-dev-venv.sh).

The reference is clip-anytorch's `clip.tokenize` and its SimpleTokenizer, run on the official
vocabulary file that ships inside the package. Two fixtures come out:

- Tests/BlendModelsTests/Fixtures/clip_tokenizer.json
    Prompts, the reference's cleaned text, `encode` ids and `clip.tokenize(..., truncate=True)`
    ids (trailing padding dropped), whether `clip.tokenize` raises without truncation; cleaner-only
    cases; and a SPARSE merge table: only the merges that win a BPE step for these prompts,
    with their official ranks. BPE always applies the present pair of lowest rank, so a merge
    that never is that pair can be dropped without changing any result; this script checks the
    claim by re-running its own BPE over the sparse table for every prompt.
    The full vocabulary (1.36 MB) is never committed.

- Tests/BlendModelsTests/Fixtures/clip_vocab_head.txt.gz
    The official file format (header line, merge lines) cut to its first HEAD_MERGES merges,
    to test loading the gzip file; the JSON holds encodings computed with that cut table.

Swift does not reproduce ftfy's mojibake repair (`fix_encoding` and the steps under it); every
other ftfy step is reproduced. Prompts whose reference ids depend on that repair go to a separate
"divergent" list holding both the reference's ids and those of the reference run with
`ftfy.fix_text(text, fix_encoding=False)`, which is what Swift must produce.

    .venv/bin/python scripts/make-tokenizer-fixtures.py
"""
import gzip
import html
import html.entities
import io
import json
import os
import random
import sys

import ftfy
import clip
from clip import simple_tokenizer as st

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "BlendModelsTests", "Fixtures")
HEAD_MERGES = 2000
CONTEXT = 77

tok = clip.clip._tokenizer
REF_CLEAN = st.basic_clean


def clean_without_encoding_repair(text):
    text = ftfy.fix_text(text, fix_encoding=False)
    text = html.unescape(html.unescape(text))
    return text.strip()


def cleaned(text, basic_clean=REF_CLEAN):
    return st.whitespace_clean(basic_clean(text)).lower()


def encode_with(text, basic_clean):
    st.basic_clean = basic_clean
    try:
        return tok.encode(text)
    finally:
        st.basic_clean = REF_CLEAN


def reference(text):
    """(encode ids, tokenize(truncate=True) ids without padding, raises without truncate)."""
    ids = tok.encode(text)
    row = clip.tokenize(text, context_length=CONTEXT, truncate=True)[0].tolist()
    used = min(len(ids) + 2, CONTEXT)
    assert all(v == 0 for v in row[used:]), text
    try:
        clip.tokenize(text, context_length=CONTEXT)
        raises = False
    except RuntimeError:
        raises = True
    assert raises == (len(ids) + 2 > CONTEXT)
    return ids, row[:used], raises


# ---------------------------------------------------------------------------------------------
# Prompts

HANDWRITTEN = [
    # everyday prompts
    "a red ball", "a stone wall", "a photo of a dog", "A cat sitting on a sofa",
    "a bowl of fruit on a wooden table", "snow-covered mountains at sunset",
    "an oil painting of a lighthouse in a storm", "a vintage car, 1960s, photorealistic",
    "a cup of coffee", "green grass", "a field of sunflowers under a blue sky",
    # punctuation
    "hello, world!", "what?!...", "wait... what?", "(parentheses) [brackets] {braces}",
    "a--b---c", "50% off!!!", "C++ & C# & F#", "e-mail: someone@example.com",
    "#hashtag @user", "http://example.com/path?x=1&y=2", "~/.config/blend", "3:30 p.m.",
    "\"double\" 'single' `back`", "a/b\\c|d", "$100 + €50 = ?", "***stars***", "!!!",
    "semi;colon: and, commas.", "under_score and snake_case_names", "dash - en – em —",
    # unicode letters and accents
    "café", "naïve façade", "Ångström", "crème brûlée", "Zürich", "São Paulo", "Łódź",
    "İstanbul", "ΟΔΟΣ ΠΡΟΣ ΣΑΣ", "Ελληνικά γράμματα", "русский текст", "Ünïcödé",
    "עברית", "العربية", "हिन्दी", "ไทย", "Tiếng Việt", "cafe\u0301 (decomposed)",
    "A\u030angstro\u0308m decomposed", "straße", "ǅemal", "ΣΑΣ.", "ŉ",
    # CJK, kana, hangul, width forms
    "東京タワー", "一只猫在睡觉", "한국어 문장입니다", "ｳｰﾀｰ ｶﾞﾝ", "ＬＯＵＤ　ＮＯＩＳＥＳ",
    "ｈｅｌｌｏ　ｗｏｒｌｄ！", "日本語とEnglishの混在", "カタカナ ひらがな 漢字", "中文，标点。",
    # digits and numbers
    "1234567890", "3.14159", "year 2024", "٣٤٥ arabic-indic", "①②③", "½ cup of sugar",
    "Ⅻ o'clock", "E = mc²", "x² + y² = z²", "0.001", "1,000,000", "10x zoom", "4k 8k 16k",
    # emoji and symbols
    "🐶🐱", "👍🏽 thumbs", "👨\u200d👩\u200d👧 family", "🇫🇷 flag", "❤️ love", "a dog 🐕 running",
    "∑ ∫ √ ∞", "α-β-γ", "©®™", "♠♣♥♦", "→ ← ↑ ↓", "★☆", "°C and °F",
    # HTML entities
    "&amp;", "&lt;b&gt;bold&lt;/b&gt;", "Tom &amp; Jerry", "&#39;quoted&#39;", "it&#x27;s",
    "&quot;hi&quot;", "&nbsp;space", "&copy 2020", "this&not that", "&amp;amp;amp;amp;",
    "<b>&amp;amp;</b>", "&EACUTE;COLE", "P&eacute;rez", "wait&hellip;", "a &mdash; b",
    "&#128512; smile", "&#0; null", "&#x110000; too big", "&#59; semicolon", "&bigstar;",
    "a &amp;amp; b\n<tag> &amp;amp; c", "a &amp;amp;\nb &amp;amp;", "&unknownentity;",
    "&#65&#66&#67", "&#x41;&#X42;", "AT&T", "R&D", "fish&chips", "&copyright", "&amp",
    "&ltx", "&#x1F600;", "&NewLine;", "&Tab;x", "&SZLIG;", "&nTILDE; &NTILDE;",
    "&fjlig; &ThickSpace;", "&#128;", "&#150;", "&#xD800;", "&#1;&#11;&#127;", "&#65534;",
    # contractions
    "it's", "don't", "we're", "they've", "I'm", "you'll", "he'd", "IT'S DON'T", "don’t stop",
    "rock'n'roll", "'stop'", "o'clock", "y'all'd've", "''s", "it'ſ", "'S 'T 'RE",
    # empty and whitespace
    "", " ", "   ", "\t\n", "\u3000", "\u00a0", "\u2028\u2029", "  padded  ", "a    b\t\tc",
    "\n\nline\n\n",
    # mixed case and repeats
    "HeLLo WoRLD", "NASA JPL", "iPhone and macOS", "dog dog dog dog", "aaaaaaaaaaaaaaaaaaaa",
    "lol " * 30, "the the the", "Mississippi", "abababababababab", "zzzzzz", "ha" * 40,
    # special tokens typed by the user
    "<|startoftext|>", "a <|endoftext|> b", "<|ſtartoftext|>", "!<|endoftext|>",
    "<|STARTOFTEXT|>", "<|endoftext|><|endoftext|>", "<|endoftext",
    # control characters, invisible characters
    "a\x00b", "\x1b[31mred\x1b[0m", "\x1b[1;32mgreen", "a\u200bb", "\ufeffBOM", "co\xadop",
    "x\u0345y", "q\u0301", "\U00020041\u0301", "\U00021f01\u0345 ok", "a\u206ab", "tab\there", "\x7fdel", "a\ufffcb",
    # ligatures, quotes, line breaks, C1 controls
    "ﬁne ﬂower", "ĳsselmeer", "ﬀ ﬃ ﬄ ﬅ ﬆ", "“quoted”", "‘single’ ‛x‟", "line1\r\nline2",
    "a\rb", "a\u2028b", "a\x85b", "price \x80 5",
    # long prompts (more than 77 tokens)
    "a photo of " + "a very " * 40 + "large dog",
    " ".join(["word%d" % i for i in range(60)]),
    "The quick brown fox jumps over the lazy dog. " * 8,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat.",
    "🐶" * 40,
    "東京" * 60,
    "supercalifragilisticexpialidocious " * 10,
    # exactly at the limit: 75 single-token words
    "a " * 75, "a " * 76,
]

# Mojibake: the reference's ftfy repairs it, Swift does not.
MOJIBAKE = [
    "cafÃ©", "Ã©tÃ© Ã  Paris", "â€œquotedâ€\x9d", "SÃ£o Paulo", "Ã¼ber", "doesnâ€™t",
    "âœ” No problems", "voilÃ le travail",
]

WORDS = ("dog cat house tree river mountain castle robot garden flower ocean bridge city night "
         "painting portrait watercolor neon glowing ancient futuristic tiny giant wooden golden "
         "rusty shiny fluffy sleepy happy broken frozen burning floating hidden").split()
EXTRAS = ["é", "ü", "ñ", "ø", "ß", "ç", "日", "猫", "🙂", "🔥", "—", "…", "’", "&amp;", "&lt;",
          "&gt;", "&quot;", "&#39;", "123", "7", "½", "²", "!", "?", ",", ".", ":", "-", "(", ")",
          "'s", "'ll", "n't", "  ", "\t", "Ｘ", "ﬁ", "ǆ", "Ω", "ж", "ש", "ع", "क", "ก"]


def generated(count, seed=1234):
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 14)):
            r = rng.random()
            word = rng.choice(WORDS)
            if r < 0.15:
                word = word.upper()
            elif r < 0.3:
                word = word.capitalize()
            parts.append(word)
            if rng.random() < 0.35:
                parts.append(rng.choice(EXTRAS))
        sep = rng.choice([" ", " ", " ", "", "  "])
        prompts.append(sep.join(parts))
    return prompts


# ---------------------------------------------------------------------------------------------
# Cleaner-only cases: long strings that exercise whole tables at once.

def cleaner_cases():
    html5 = html.entities.html5
    named = [n for n in html5 if n.endswith(";")]
    upper = [n.upper() for n in named if n == n.lower()]
    legacy = [n for n in html5 if not n.endswith(";")]
    cases = [
        " ".join("&" + n for n in named),
        " ".join("&" + n for n in upper),
        " ".join("&" + n + "x" for n in legacy),
        " ".join("&" + n for n in legacy),
        "<" + " ".join("&" + n for n in legacy),
        " ".join(chr(c) for c in range(0xFF01, 0xFFF0)) + " \u3000x",
        " ".join(chr(c) for c in range(0x20, 0x250)),
        "".join(chr(c) for c in range(0, 0x20)) + "\x7f" + "".join(chr(c) for c in range(0x80, 0xA0)),
        "".join(chr(c) for c in range(0x2000, 0x2070)) + "\ufeff\ufff9\ufffa\ufffb\ufffc\ufffd",
        " ".join("&#%d;&#%d&#x%x;&#X%X" % (c, c, c, c) for c in
                 [0, 1, 9, 10, 11, 12, 13, 31, 32, 38, 59, 60, 127, 128, 129, 141, 150, 159, 160,
                  0xD7FF, 0xD800, 0xDFFF, 0xE000, 0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE,
                  0x10FFFF, 0x110000, 99999999999999999999]),
        "&#0000000065; &#x0000041; &#; &#x; &#xg; &# ; &&amp; &;amp; &amp;&amp;&amp",
        "a\x1b[31;1mb\x1b[mc\x1b[٣mdd\x1b[9e\x1b]0;title\x07",
        "ΣΑΣ ΣΑ Σ. AΣ'Σ AΣ\u0301 Σ\u0301A aΣ1 ς Σς",
        "\u0130\u0049\u0131 \u1e9e\u00df \u01c5\u01c8 \u2126\u212a\u212b",
        "&amp;lt;b&amp;gt; &amp;amp;lt; &lt;",
        # NFC: composition, reordering, exclusions, singletons, Hangul, supplementary planes
        # (U+20041 U+0301 stays as it is: Foundation's NFC on Linux gets this wrong).
        "e\u0301 a\u0323\u0302 a\u0302\u0323 \u0958 \u2126 \u212b \u1100\u1161\u11a8 \U0002f800 "
        "\U00011099\U000110ba \U0001d15e \U00020041\u0301 \U00021f01\u0345 \U00010000\u0308 "
        "\u1f01\u0345 \u0344 \u0f73 q\u0307\u0323",
        "line one &amp;amp;\nline two <b> &amp;amp;\nline three &amp;amp;",
    ]
    return cases


# ---------------------------------------------------------------------------------------------
# BPE written for this script, to check the sparse table and to encode with the cut head table.

def bpe_symbols(token, ranks, fired=None):
    word = list(token[:-1]) + [token[-1] + "</w>"]
    while len(word) > 1:
        best = None
        for pair in zip(word, word[1:]):
            rank = ranks.get(pair)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, pair)
        if best is None:
            break
        if fired is not None:
            fired[best[1]] = best[0]
        first, second = best[1]
        merged, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


BYTE_SYMBOLS = list(st.bytes_to_unicode().values())
BASE_IDS = {s: i for i, s in enumerate(BYTE_SYMBOLS)}
BASE_IDS.update({s + "</w>": 256 + i for i, s in enumerate(BYTE_SYMBOLS)})
SPECIALS = ("<|startoftext|>", "<|endoftext|>")


def my_encode(text, ranks, merge_count, basic_clean=REF_CLEAN, fired=None):
    ids = {**BASE_IDS, **{a + b: 512 + r for (a, b), r in ranks.items()}}
    ids[SPECIALS[0]] = 512 + merge_count
    ids[SPECIALS[1]] = 513 + merge_count
    out = []
    byte_encoder = st.bytes_to_unicode()
    for piece in tok.pat.findall(cleaned(text, basic_clean)):
        if piece in SPECIALS:
            out.append(ids[piece])
            continue
        symbols = "".join(byte_encoder[b] for b in piece.encode("utf-8"))
        out.extend(ids[s] for s in bpe_symbols(symbols, ranks, fired))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    full_ranks = tok.bpe_ranks
    merge_count = len(full_ranks)
    assert merge_count == 48894 and tok.encoder["<|startoftext|>"] == 49406

    candidates = HANDWRITTEN + generated(120)
    prompts, divergent = [], []
    for text in candidates + MOJIBAKE:
        ids, row, raises = reference(text)
        ours = encode_with(text, clean_without_encoding_repair)
        if ours == ids:
            prompts.append(dict(text=text, cleaned=cleaned(text), encoded=ids, tokens=row, raises=raises,
                                decoded=tok.decode(ids)))
        else:
            divergent.append(dict(text=text, cleaned=cleaned(text, clean_without_encoding_repair),
                                  encoded=ours, reference_encoded=ids, decoded=tok.decode(ours)))
    assert all(p["text"] in MOJIBAKE for p in divergent), [p["text"] for p in divergent]
    assert len(prompts) >= 200, len(prompts)
    assert sum(p["raises"] for p in prompts) >= 5

    # The sparse merge table: every pair that won a BPE step, with its official rank.
    fired = {}
    for p in prompts + divergent:
        basic = REF_CLEAN if "reference_encoded" not in p else clean_without_encoding_repair
        assert my_encode(p["text"], full_ranks, merge_count, basic, fired) == p["encoded"]
    sparse = dict(fired)
    for p in prompts + divergent:
        basic = REF_CLEAN if "reference_encoded" not in p else clean_without_encoding_repair
        assert my_encode(p["text"], sparse, merge_count, basic) == p["encoded"], p["text"]

    # The head of the official file, in its own format, gzip'd reproducibly.
    with gzip.open(st.default_bpe()) as f:
        lines = f.read().decode("utf-8").split("\n")
    head_text = "\n".join(lines[: HEAD_MERGES + 1]) + "\n"
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as f:
        f.write(head_text.encode("utf-8"))
    head_path = os.path.join(OUT, "clip_vocab_head.txt.gz")
    with open(head_path, "wb") as f:
        f.write(buffer.getvalue())
    head_ranks = {tuple(l.split()): r for r, l in enumerate(lines[1: HEAD_MERGES + 1])}
    head_prompts = ["a red ball", "a photo of a dog", "Tom &amp; Jerry's café", "internationalization",
                    "東京 🐶 123", "supercalifragilisticexpialidocious", "the the the", ""]
    head_cases = [dict(text=t, encoded=my_encode(t, head_ranks, HEAD_MERGES)) for t in head_prompts]
    # With all merges present, the script's BPE must agree with the reference.
    for t in head_prompts:
        assert my_encode(t, full_ranks, merge_count) == tok.encode(t)

    # Cleaner cases hold what Swift must produce; some are long enough for ftfy's mojibake
    # detector to act on, so each also says whether the reference agrees.
    cleaner = [dict(text=t, cleaned=cleaned(t, clean_without_encoding_repair),
                    same_as_reference=cleaned(t) == cleaned(t, clean_without_encoding_repair))
               for t in cleaner_cases()]

    # Decoding: partial UTF-8 sequences (the reference replaces them with U+FFFD), special
    # tokens and padding, a byte token alone.
    byte_id = {b: i for i, b in enumerate(st.bytes_to_unicode())}
    tokyo = [byte_id[b] for b in "東京".encode("utf-8")]
    decode_ids = [
        tokyo, tokyo[:2], tokyo[1:], tokyo[:-1] + [tokyo[-1] + 256], [tokyo[0] + 256, tokyo[1]],
        [byte_id[0xFF], byte_id[0xC3], byte_id[0xA9] + 256], [49406, 320, 49407, 0, 0],
        [byte_id[ord("<")], byte_id[ord("/")], byte_id[ord("w")], byte_id[ord(">")] + 256],
    ]
    decode_cases = [dict(ids=ids, text=tok.decode(ids)) for ids in decode_ids]

    fixture = dict(
        merge_count=merge_count,
        context_length=CONTEXT,
        merges=sorted([r, a, b] for (a, b), r in sparse.items()),
        prompts=prompts,
        divergent=divergent,
        cleaner=cleaner,
        decode=decode_cases,
        head_vocab=dict(file="clip_vocab_head.txt.gz", merge_count=HEAD_MERGES, cases=head_cases),
    )
    path = os.path.join(OUT, "clip_tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(path)
    assert size < 300_000, size
    print(f"{len(prompts)} prompts ({sum(p['raises'] for p in prompts)} too long without truncation), "
          f"{len(divergent)} divergent, {len(cleaner)} cleaner cases, {len(sparse)} merges; "
          f"{size} bytes JSON, {os.path.getsize(head_path)} bytes head vocabulary", file=sys.stderr)


if __name__ == "__main__":
    main()
