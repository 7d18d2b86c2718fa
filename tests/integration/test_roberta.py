"""RoBERTa (byte-level BPE) and XLM-R (Unigram) models: the special tokens come from the model's own tokenizer
(framing, zeroed terms, padding, idf exclusions, the manifest), positions are RoBERTa's up to a full 512-token
window, and chunk spans stay exact on non-ASCII text."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from devkit.corpus import prose_paragraphs
from devkit.pretrained import Spec, write_pretrained
from devkit.reference import ReferenceSplade
from scripts import idf
from splade_convert import cli as convert_cli
from splade_expander.expander import Expander, window_starts

pytestmark = pytest.mark.integration  # conversions: seconds each, outside make test-unit's 30 s

NON_ASCII = "Café déjà vu — naïve façade, 東京 and ﬁne ligatures; 日本語のテキスト “quoted” — end. "
# The framing each family's tokenizer declares, by token: (prefix, suffix, pad, every zeroed token).
SPECIALS = {
    "bert": (["[CLS]"], ["[SEP]"], "[PAD]", {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}),
    "roberta": (["<s>"], ["</s>"], "<pad>", {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}),
    "xlm-roberta": (["<s>"], ["</s>"], "<pad>", {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}),
}


@pytest.fixture(scope="module", params=["roberta", "xlm-roberta"])
def converted(request, tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, fp32 model dir) of a small random RoBERTa / XLM-R."""
    root = tmp_path_factory.mktemp(request.param)
    src = write_pretrained(root / "src", Spec(request.param, seed=7))
    out = root / "out"
    assert convert_cli.main(["--source", str(src), "--out", str(out), "--manifest", "--precision", "fp32"]) == 0
    return src, out


@pytest.mark.parametrize("family", list(SPECIALS))
def test_the_manifest_records_the_tokenizers_own_special_tokens(tmp_path: Path, family: str) -> None:
    """[CLS]/[SEP] for BERT, <s>/</s> for RoBERTa and XLM-R (whose <mask> is its last id), each with its id, and
    the pad token from config.json's pad_token_id; the Expander frames and zeroes with exactly these."""
    src = write_pretrained(tmp_path / "src", Spec(family))
    assert (
        convert_cli.main(["--source", str(src), "--out", str(tmp_path / "out"), "--manifest", "--precision", "fp32"])
        == 0
    )
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    recorded = manifest["special_tokens"]
    prefix, suffix, pad, zeroed = SPECIALS[family]
    assert [t["token"] for t in recorded["prefix"]] == prefix and [t["token"] for t in recorded["suffix"]] == suffix
    assert recorded["pad"]["token"] == pad and {t["token"] for t in recorded["zeroed"]} == zeroed
    expander = Expander(tmp_path / "out", threads=1)
    by_name = {t["token"]: t["id"] for t in recorded["zeroed"]}
    assert expander.specials.prefix == tuple(by_name[t] for t in prefix)
    assert expander.specials.suffix == tuple(by_name[t] for t in suffix)
    assert expander.specials.pad == by_name[pad] and set(expander.special_ids.tolist()) == set(by_name.values())
    if family == "xlm-roberta":
        assert by_name["<mask>"] == expander.vocab_size - 1
    assert manifest["position_offset"] == (2 if family != "bert" else 0)


def test_windows_are_framed_padded_and_zeroed_with_the_models_tokens(converted) -> None:
    """Each window is <s> ... </s>; a run pads with <pad> (masked: a text's vector is the same alone and beside a
    longer one); no special token is ever an output term, even when the text spells it."""
    _, out = converted
    expander = Expander(out, threads=1)
    plan = expander._plan(["hello world", NON_ASCII * 3], one_window=False, chunks=False)
    for _, ids in plan.windows:
        assert ids[0] == expander.tokenizer.token_to_id("<s>") and ids[-1] == expander.tokenizer.token_to_id("</s>")
    alone = expander.expand(["hello world"])[0]
    beside = expander.expand(["hello world", NON_ASCII * 3])[0]
    assert np.array_equal(alone.indices, beside.indices) and np.allclose(alone.values, beside.values, atol=1e-6)
    spelled = expander.expand(["<s> a <mask> b </s> <pad> <unk> text"])[0]
    assert not set(spelled.indices.tolist()) & set(expander.special_ids.tolist())
    assert len(spelled) > 0


def test_a_full_512_token_window_uses_every_position_row(converted) -> None:
    """window_tokens=512 on a table of 514 rows (pad + 1 offset): the fp32 vector of a long text's first window
    equals the float64 reference, which numbers positions the transformers way (<= 1e-4)."""
    src, out = converted
    expander = Expander(out, threads=1, window_tokens=512)
    text = " ".join(prose_paragraphs()[:30])
    ids = expander.tokenizer.encode(text, add_special_tokens=False).ids[: expander.content_tokens]
    assert len(ids) == 510
    want = ReferenceSplade(src).splade(expander.specials.frame(ids))
    want[expander.special_ids] = 0.0
    got = expander.expand([text], truncate=True)[0].dense(expander.vocab_size)
    assert np.abs(got - want).max() <= 1e-4


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the character a token spells for each byte -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in table.items()}


def test_chunk_spans_stay_exact_on_non_ascii_text(converted) -> None:
    """16-token windows over text full of é, —, 東京 and ﬁ: each chunk's span runs from its first token's start to
    its last token's end, consecutive windows leave no character uncovered, and with byte-level BPE a window's
    own bytes sit inside its span with at most one split character at each edge (windows do cut characters)."""
    _, out = converted
    expander = Expander(out, threads=1, window_tokens=16, window_overlap=0)
    text = NON_ASCII * 4
    (vec,) = expander.expand([text], chunks=True)
    enc = expander.tokenizer.encode(text, add_special_tokens=False)
    starts, length = window_starts(len(enc.ids), expander.content_tokens, 0)
    assert len(vec.chunks) == len(starts) >= 8
    byte_level = json.loads(expander.tokenizer.to_str())["model"]["type"] == "BPE"
    decoder = _byte_decoder()
    split_chars = 0
    for chunk, s in zip(vec.chunks, starts, strict=True):
        window = range(s, min(s + length, len(enc.ids)))
        start, end = chunk.span
        assert (start, end) == (enc.offsets[window[0]][0], enc.offsets[window[-1]][1])
        assert all(start <= enc.offsets[k][0] <= enc.offsets[k][1] <= end for k in window)
        if byte_level:
            own = bytes(decoder[c] for k in window for c in enc.tokens[k])
            covered = text[start:end].encode()
            at = covered.find(own.lstrip(b" "))
            assert at >= 0, (own, covered)
            assert at < 4 and len(covered) - at - len(own.lstrip(b" ")) < 4
            split_chars += at > 0
    for a, b in itertools.pairwise(vec.chunks):
        assert b.span[0] <= a.span[1] or not text[a.span[1] : b.span[0]].strip()
    assert not text[: vec.chunks[0].span[0]].strip() and not text[vec.chunks[-1].span[1] :].strip()
    if byte_level:
        assert split_chars > 0  # the case this test is for happened


def test_idf_json_leaves_out_the_tokenizers_special_tokens(converted, tmp_path: Path) -> None:
    """make idf over a corpus that spells <s>, </s> and <mask>: none of the model's special tokens gets a weight,
    the other counted tokens do."""
    _, out = converted
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"<s> {t} <mask> </s>"}) + "\n" for t in prose_paragraphs()[:20]))
    model = tmp_path / "model"
    model.mkdir()
    (model / "tokenizer.json").write_bytes((out / "tokenizer.json").read_bytes())
    assert idf.main(["--data", str(corpus), "--out", str(model)]) == 0
    weights = json.loads((model / "idf.json").read_text())
    assert not {"<s>", "</s>", "<mask>", "<pad>", "<unk>"} & set(weights)
    assert len(weights) > 100


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("no tokenizer.json", "could not find tokenizer.json in"),
        ("no pad_token_id", "config.json has no 'pad_token_id'"),
        ("pad beyond the table", "pad_token_id 600 leaves no position rows"),
        ("another vocabulary size", "tokenizer.json has 4000 tokens, the model's vocabulary 4001"),
    ],
)
def test_a_roberta_checkpoint_that_cannot_convert_names_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, message: str
) -> None:
    """A RoBERTa checkpoint without its fast tokenizer, its pad_token_id (positions count from it) or a tokenizer
    of the model's size is refused with exit status 2 and one line naming what is missing."""
    src = write_pretrained(tmp_path / "src", Spec("roberta"))
    config = json.loads((src / "config.json").read_text())
    if edit == "no tokenizer.json":
        (src / "tokenizer.json").unlink()
    elif edit == "no pad_token_id":
        del config["pad_token_id"]
    elif edit == "pad beyond the table":
        config["pad_token_id"] = 600
    else:
        spec = json.loads((src / "tokenizer.json").read_text())
        config["vocab_size"] = len(spec["model"]["vocab"]) + 1
        tensors = load_file(str(src / "model.safetensors"))
        for name in ("roberta.embeddings.word_embeddings.weight", "lm_head.bias"):
            tensors[name] = np.concatenate([tensors[name], tensors[name][:1]])
        save_file(tensors, str(src / "model.safetensors"))
    (src / "config.json").write_text(json.dumps(config))
    assert convert_cli.main(["--source", str(src), "--out", str(tmp_path / "out"), "--manifest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("build_model: cannot convert") and message in err
