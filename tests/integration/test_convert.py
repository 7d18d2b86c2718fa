"""Bring-your-own checkpoints: BERT, DistilBERT, RoBERTa and XLM-R masked-LMs written as `save_pretrained` writes
them (numpy + safetensors, no torch) convert to graphs the Expander loads as is, within tolerance of the
independent numpy reference; a checkpoint that cannot convert gets an error naming the tensor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from safetensors.numpy import load_file, save_file

from devkit.corpus import fidelity_texts
from devkit.pretrained import Spec, write_pretrained
from devkit.reference import ReferenceSplade, window_fidelity
from splade_convert import cli as convert_cli
from splade_expander.expander import Expander

pytestmark = pytest.mark.integration  # conversions: seconds each, outside make test-unit's 30 s

TEXTS = fidelity_texts()[:8]


def convert(src: Path, out: Path, *args: str) -> Expander:
    assert convert_cli.main(["--source", str(src), "--out", str(out), "--manifest", *args]) == 0
    return Expander(out, threads=1)


def compare(expander: Expander, reference: ReferenceSplade) -> dict[str, float]:
    """Fidelity of the Expander's vectors (first window) against the reference's, special tokens zeroed."""
    return window_fidelity(expander, reference, TEXTS)


SPECS = {
    "bert": Spec("bert"),
    "distilbert": Spec("distilbert"),
    "bert-no-prefix-untied-no-bias-gamma-vocab.txt": Spec(
        "bert", prefix=False, tied=False, decoder_bias=False, legacy_layer_norm=True, tokenizer="vocab"
    ),
    "distilbert-no-prefix-untied-vocab.txt": Spec("distilbert", prefix=False, tied=False, tokenizer="vocab"),
    "roberta-bpe": Spec("roberta"),
    "roberta-no-prefix-untied": Spec("roberta", prefix=False, tied=False),
    "xlm-roberta-unigram": Spec("xlm-roberta"),
    "xlm-roberta-untied-no-bias": Spec("xlm-roberta", tied=False, decoder_bias=False),
}


@pytest.mark.parametrize("activation", ["log1p_relu", "log1p_log1p_relu"])
@pytest.mark.parametrize("name", list(SPECS))
def test_fp32_conversion_matches_the_reference(tmp_path: Path, name: str, activation: str) -> None:
    """Each family and naming variant, each activation, fp32: max abs diff <= 1e-4 against the numpy reference,
    and the manifest records what was built."""
    src = write_pretrained(tmp_path / "src", SPECS[name])
    expander = convert(src, tmp_path / "out", "--precision", "fp32", "--activation", activation)
    assert compare(expander, ReferenceSplade(src, activation))["max_abs"] <= 1e-4
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["model_type"], manifest["activation"], manifest["tied_decoder"]) == (
        SPECS[name].family,
        activation,
        SPECS[name].tied,
    )
    assert manifest["source"]["tokenizer_from"] == (
        "tokenizer.json" if SPECS[name].tokenizer == "json" else "vocab.txt"
    )


def test_the_second_log1p_changes_the_vector(tmp_path: Path) -> None:
    """log1p(log1p(relu)) is not log1p(relu): the two graphs of one checkpoint differ by exactly that function."""
    src = write_pretrained(tmp_path / "src", Spec("distilbert"))
    once = convert(src, tmp_path / "a", "--precision", "fp32").expand([TEXTS[0]])[0]
    twice = convert(src, tmp_path / "b", "--precision", "fp32", "--activation", "log1p_log1p_relu").expand([TEXTS[0]])[
        0
    ]
    assert np.array_equal(once.indices, twice.indices)
    assert np.allclose(twice.values, np.log1p(once.values), atol=1e-6) and twice.values.max() < once.values.max()


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "xlm-roberta"])
def test_int8_encoder_with_outlier_channels_keeps_the_vector(tmp_path: Path, family: str) -> None:
    """int8 encoder and projection on a checkpoint with 4 outlier channels (~20x LayerNorm gain): mean cosine
    >= 0.995, min >= 0.98, top-32 overlap >= 0.9 against the float64 reference."""
    src = write_pretrained(tmp_path / "src", Spec(family, layers=3, hidden=96, heads=4, outliers=4, seed=3))
    expander = convert(src, tmp_path / "out", "--precision", "int8", "--layers", "int8")
    result = compare(expander, ReferenceSplade(src))
    assert result["mean_cos"] >= 0.995 and result["min_cos"] >= 0.98 and result["top_overlap"] >= 0.9, result
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["encoder_precision"] == "int8"


def test_int8_encoder_vectors_do_not_depend_on_the_batch(tmp_path: Path) -> None:
    """Per-token activation scales: a text gives the same bytes alone, in a batch of short texts, and next to a
    long text with large activations."""
    src = write_pretrained(tmp_path / "src", Spec("bert", outliers=3))
    expander = convert(src, tmp_path / "out", "--precision", "int8", "--layers", "int8")
    alone = expander.expand([TEXTS[1]])[0]
    for batch in ([TEXTS[1], TEXTS[2], "a"], [TEXTS[3] * 3, TEXTS[1]]):
        (other,) = [v for t, v in zip(batch, expander.expand(batch, truncate=True), strict=True) if t == TEXTS[1]]
        assert np.array_equal(other.indices, alone.indices) and np.array_equal(other.values, alone.values)


@pytest.mark.parametrize(("hidden", "heads", "expected"), [(64, 4, "fp32"), (512, 8, "int8")])
def test_a_default_int8_build_quantizes_the_encoder_from_hidden_512(
    tmp_path: Path, hidden: int, heads: int, expected: str
) -> None:
    """``--precision int8`` with no ``--encoder`` (auto): build() keeps a small encoder fp32 (splade-tiny keeps its
    graph) and quantizes it from hidden size 512 up: the manifest says so and the graph has the encoder's integer
    GEMMs (one MatMulInteger per vocabulary chunk is the projection; an int8 encoder adds its linears)."""
    src = write_pretrained(tmp_path / "src", Spec("bert", layers=1, hidden=hidden, heads=heads))
    convert(src, tmp_path / "out", "--precision", "int8")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["encoder_precision"] == expected
    graph = onnx.load(str(tmp_path / "out" / "model.onnx"), load_external_data=False).graph
    integer_gemms = sum(node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for node in graph.node)
    projection_gemms = sum(node.op_type == "MatMulInteger" and "chunk" in " ".join(node.input) for node in graph.node)
    assert (integer_gemms > projection_gemms) == (expected == "int8"), (integer_gemms, projection_gemms)


def broken(tmp_path: Path, edit: str) -> Path:
    src = write_pretrained(tmp_path / "src", Spec("bert"))
    tensors = load_file(str(src / "model.safetensors"))
    config = json.loads((src / "config.json").read_text())
    if edit == "missing":
        del tensors["bert.encoder.layer.1.output.dense.weight"]
    elif edit == "unknown":
        tensors["bert.encoder.layer.0.attention.self.rotary.weight"] = np.zeros(4, np.float32)
    elif edit == "shape":
        tensors["bert.encoder.layer.0.intermediate.dense.bias"] = np.zeros(7, np.float32)
    elif edit == "model_type":
        config["model_type"] = "gpt2"
    elif edit == "activation":
        config["hidden_act"] = "relu"
    elif edit == "tokenizer":
        (src / "tokenizer.json").unlink()
    save_file(tensors, str(src / "model.safetensors"))
    (src / "config.json").write_text(json.dumps(config))
    return src


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("missing", "missing tensor 'encoder.layer.1.output.dense.weight'"),
        ("unknown", "unknown tensor 'bert.encoder.layer.0.attention.self.rotary.weight'"),
        ("shape", "tensor 'encoder.layer.0.intermediate.dense.bias' has shape (7,), expected (256,)"),
        ("model_type", "model_type 'gpt2' is not supported"),
        ("activation", "activation 'relu' is not supported"),
        ("tokenizer", "could not find tokenizer.json or vocab.txt"),
    ],
)
def test_a_checkpoint_that_cannot_convert_names_what_is_wrong(tmp_path: Path, capsys, edit: str, message: str) -> None:
    """Exit status 2, one line naming the tensor or setting, and no graph written."""
    src = broken(tmp_path, edit)
    status = convert_cli.main(["--source", str(src), "--out", str(tmp_path / "out"), "--manifest"])
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("build_model: cannot convert")
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_ignored_tensors_are_the_ones_an_mlm_never_reads(tmp_path: Path) -> None:
    """position_ids, a pooler and a next-sentence head (BertForPreTraining) convert; the graph is the same."""
    src = write_pretrained(tmp_path / "src", Spec("bert"))
    plain = convert(src, tmp_path / "plain", "--precision", "fp32").expand([TEXTS[0]])[0]
    tensors = load_file(str(src / "model.safetensors"))
    tensors["bert.embeddings.position_ids"] = np.arange(512, dtype=np.int64)[None]
    tensors["bert.pooler.dense.weight"] = np.zeros((64, 64), np.float32)
    tensors["cls.seq_relationship.weight"] = np.zeros((2, 64), np.float32)
    save_file(tensors, str(src / "model.safetensors"))
    extra = convert(src, tmp_path / "extra", "--precision", "fp32").expand([TEXTS[0]])[0]
    assert np.array_equal(plain.indices, extra.indices) and np.array_equal(plain.values, extra.values)


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("tied", [True, False])
def test_int8_vocabulary_tables_are_stored_once(tmp_path: Path, family: str, tied: bool) -> None:
    """The int8 graph holds each [vocab, hidden] table once: a tied model's word table only as the projection's
    chunks (the embedding gathers from them), an untied one's word table plus the decoder's chunks."""
    spec = Spec(family, tied=tied)
    src = write_pretrained(tmp_path / "src", spec)
    expander = convert(src, tmp_path / "out", "--precision", "int8")
    model = onnx.load(str(tmp_path / "out" / "model.onnx"))
    tables = [numpy_helper.to_array(i) for i in model.graph.initializer if i.data_type == onnx.TensorProto.UINT8]
    rows = sum(t.shape[0] for t in tables if t.ndim == 2 and t.shape[1] == spec.hidden)
    assert rows == expander.vocab_size * (1 if tied else 2)
