"""Write ``idf.json`` into a model directory, for inference-free queries (splade_expander/queries.py).

    python scripts/idf.py --data <corpus.jsonl[.gz] | BEIR dir> [--out model_assets]   # count a corpus
    python scripts/idf.py --merge <dir | s3://bucket/prefix> [--out model_assets]        # sum .df.json files

``--data`` tokenizes every document (``title`` + ``text`` when there is a title, every window) with the model
directory's tokenizer and counts document frequencies. ``--merge`` sums the per-object ``<key>.df.json`` files
that S3 ingest (``OUTPUT_DF=true``) or ``splade-expand --df`` wrote, so a corpus indexed once gives its idf
without a second pass. Either way: ``idf(t) = log(1 + (N - df + 0.5) / (df + 0.5))`` (splade_expander/docfreq.py).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from splade_expander.defaults import MODEL_DIR as PACKAGE_MODEL_DIR
from splade_expander.docfreq import DocFreq
from splade_expander.specials import special_tokens

BATCH = 256


def corpus_file(data: Path) -> Path:
    """A BEIR directory's corpus.jsonl, or the file itself."""
    return data / "corpus.jsonl" if data.is_dir() else data


def document_text(record: dict[str, Any], text_field: str = "text") -> str | None:
    """A corpus record's text: BEIR's ``title`` + ``text`` when there is a title; None without a string text."""
    text = record.get(text_field)
    if not isinstance(text, str):
        return None
    title = record.get("title")
    return f"{title} {text}" if isinstance(title, str) and title else text


def documents(path: Path, text_field: str = "text") -> Iterator[str]:
    """Document texts of a JSON Lines corpus (BEIR: ``title`` + ``text``); blank lines skipped."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            text = document_text(json.loads(line), text_field)
            if text is None:
                raise SystemExit(f"idf: {path}:{number}: no string {text_field!r} field")
            yield text


def count(texts: Iterator[str], tokenizer: Tokenizer) -> DocFreq:
    df = DocFreq(tokenizer.get_vocab_size(with_added_tokens=True))
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == BATCH:
            df.add(e.ids for e in tokenizer.encode_batch(batch, add_special_tokens=False))
            batch = []
    if batch:
        df.add(e.ids for e in tokenizer.encode_batch(batch, add_special_tokens=False))
    return df


def merged(source: str) -> tuple[DocFreq, int]:
    """The sum of every ``*.df.json`` under a local directory or an ``s3://bucket/prefix``; and how many."""
    blobs: list[bytes] = []
    if source.startswith("s3://"):
        import boto3

        bucket, _, prefix = source.removeprefix("s3://").partition("/")
        s3 = boto3.client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".df.json"):
                    blobs.append(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    else:
        blobs = [p.read_bytes() for p in sorted(Path(source).rglob("*.df.json"))]
    if not blobs:
        raise SystemExit(f"idf: no .df.json files under {source}")
    total: DocFreq | None = None
    for blob in blobs:
        part = DocFreq.from_json(json.loads(blob))
        if total is None:
            total = part
        else:
            total.merge(part)
    assert total is not None
    return total, len(blobs)


def write_idf(df: DocFreq, out: Path, tokenizer: Tokenizer) -> Path:
    vocab = [tokenizer.id_to_token(i) or "" for i in range(df.vocab_size)]
    special = special_tokens(tokenizer).zeroed  # the model's own (specials.py)
    path = out / "idf.json"
    path.write_text(json.dumps(df.idf(vocab, special), ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a corpus .jsonl (.gz) or a BEIR directory")
    source.add_argument("--merge", help="a directory or s3://bucket/prefix holding .df.json files")
    parser.add_argument("--out", type=Path, default=PACKAGE_MODEL_DIR, help="the model directory (its tokenizer)")
    parser.add_argument("--text-field", default="text")
    args = parser.parse_args(argv)
    tokenizer = Tokenizer.from_file(str(args.out / "tokenizer.json"))
    tokenizer.no_truncation()  # tokenizer.json may truncate at 512: every token of a document counts
    tokenizer.no_padding()
    if args.data is not None:
        df, what = count(documents(corpus_file(args.data), args.text_field), tokenizer), str(args.data)
    else:
        df, files = merged(args.merge)
        what = f"{files} .df.json files under {args.merge}"
        if df.vocab_size != tokenizer.get_vocab_size(with_added_tokens=True):
            raise SystemExit(f"idf: the counts are over {df.vocab_size} terms, {args.out}'s tokenizer has another size")
    path = write_idf(df, args.out, tokenizer)
    print(f"wrote {path}: idf of {df.documents} documents from {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
