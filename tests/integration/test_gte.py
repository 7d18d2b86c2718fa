"""GTE v1.5 (``model_type: new``, OpenSearch doc-v3-gte's backbone): random NewForMaskedLM checkpoints with the
official file's tensor names convert to graphs within 1e-4 of the float64 reference in devkit/gte.py, for every
setting the converter implements (NTK fixed and mixed, packed or separate qkv, LayerNorm or RMSNorm, the log-n
scale, token types, absolute positions, untied decoder); the reference itself is cross-checked; settings not
implemented are refused by name."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from devkit.corpus import fidelity_texts, prose_paragraphs
from devkit.gte import DOC_V3_GTE, SMALL, GteReference, write_gte
from devkit.reference import ReferenceSplade, window_fidelity
from splade_convert import cli as convert_cli
from splade_convert import graph as convert_graph
from splade_convert.families import gte as gte_family
from splade_convert.pretrained import load_pretrained
from splade_expander.expander import Expander

pytestmark = pytest.mark.integration  # conversions: seconds each, outside make test-unit's 30 s

TEXTS = fidelity_texts()[:8]
VARIANTS: dict[str, dict[str, Any]] = {
    "doc-v3-gte (NTK x2, theta 500k)": {},
    "mixed NTK (mixed_b 0.9, x4)": {"rope_scaling": {"type": "ntk", "factor": 4.0, "mixed_b": 0.9}},
    "no scaling, theta 10k": {"rope_scaling": None, "rope_theta": 10000.0},
    "separate q/k/v, RMSNorm": {"pack_qkv": False, "layer_norm_type": "rms_norm"},
    "log-n scale without clip": {"logn_attention_scale": True, "max_position_embeddings": 2048},
    "log-n scale, clip 1, token types": {
        "logn_attention_scale": True, "logn_attention_clip1": True, "type_vocab_size": 1,
    },
    "absolute positions": {"position_embedding_type": "absolute", "max_position_embeddings": 512, "rope_scaling": None},
}  # fmt: skip


def config(**overrides: Any) -> dict[str, Any]:
    return {**DOC_V3_GTE, **SMALL, **overrides}


def convert(src: Path, out: Path, *args: str) -> Expander:
    assert convert_cli.main(["--source", str(src), "--out", str(out), "--manifest", *args]) == 0
    return Expander(out, threads=1)


def compare(expander: Expander, reference: ReferenceSplade, texts: list[str] = TEXTS) -> dict[str, float]:
    return window_fidelity(expander, reference, texts)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fp32_graph_matches_the_reference(tmp_path: Path, variant: str) -> None:
    """Each implemented setting, fp32: max abs diff <= 1e-4 against the float64 reference; the manifest records
    the architecture's settings."""
    src = write_gte(tmp_path / "src", config(**VARIANTS[variant]), seed=3)
    expander = convert(src, tmp_path / "out", "--precision", "fp32")
    assert compare(expander, ReferenceSplade(src))["max_abs"] <= 1e-4
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (
        manifest["model_type"] == "new"
        and manifest["architecture"]["pack_qkv"] == config(**VARIANTS[variant])["pack_qkv"]
    )


def test_ntk_scaling_changes_even_short_windows(tmp_path: Path) -> None:
    """NTK factor 2 turns every position at other frequencies, so a short window's vector differs from the
    unscaled model's on the same weights, and each graph matches its own reference."""
    vectors = []
    for name, scaling in (("ntk", {"type": "ntk", "factor": 2.0}), ("plain", None)):
        src = write_gte(tmp_path / name, config(rope_scaling=scaling), seed=5, qk_std=0.2)
        expander = convert(src, tmp_path / f"{name}-out", "--precision", "fp32")
        assert compare(expander, ReferenceSplade(src), TEXTS[:3])["max_abs"] <= 1e-4
        vectors.append(expander.expand([TEXTS[0]])[0].dense(expander.vocab_size))
    assert np.abs(vectors[0] - vectors[1]).max() > 1e-3


def test_a_full_512_token_window_matches(tmp_path: Path) -> None:
    """window_tokens=512: every row of the RoPE tables is used; fp32 within 1e-4 of the reference."""
    src = write_gte(tmp_path / "src", config(), seed=6)
    assert (
        convert_cli.main(["--source", str(src), "--out", str(tmp_path / "out"), "--manifest", "--precision", "fp32"])
        == 0
    )
    expander = Expander(tmp_path / "out", threads=1, window_tokens=512)
    text = " ".join(prose_paragraphs()[:30])
    ids = expander.tokenizer.encode(text, add_special_tokens=False).ids[: expander.content_tokens]
    assert len(ids) == 510
    want = ReferenceSplade(src).splade(expander.specials.frame(ids))
    want[expander.special_ids] = 0.0
    assert np.abs(expander.expand([text], truncate=True)[0].dense(expander.vocab_size) - want).max() <= 1e-4


def test_int8_encoder_with_outlier_channels_keeps_the_vector(tmp_path: Path) -> None:
    """int8 encoder and projection, 4 outlier channels: mean cosine >= 0.995 and min >= 0.98 against the
    float64 reference."""
    src = write_gte(tmp_path / "src", config(hidden_size=96, num_attention_heads=4, num_hidden_layers=3), outliers=4)
    expander = convert(src, tmp_path / "out", "--precision", "int8", "--layers", "int8")
    result = compare(expander, ReferenceSplade(src))
    assert result["mean_cos"] >= 0.995 and result["min_cos"] >= 0.98, result


def test_outlier_channels_stay_float_and_that_keeps_int8_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The float channels are exactly the norms' 20x outlier channels (4 <= 128 / 32), and keeping them out of
    the int8 scales cuts the int8 encoder's cosine error (fp32 projection, so only the encoder differs) by 30%+."""
    src = write_gte(tmp_path / "src", config(hidden_size=128, num_attention_heads=4, num_hidden_layers=3), outliers=4)
    ck = load_pretrained(src)
    for name in ("embeddings.LayerNorm", "encoder.layer.0.attn_ln", "encoder.layer.2.mlp_ln"):
        want = np.sort(np.argsort(-np.abs(ck.get(f"{name}.weight")))[:4])
        assert np.array_equal(gte_family.float_channels(ck, name), want)
        assert np.abs(ck.get(f"{name}.weight"))[want].min() > 15.0
    reference, args = ReferenceSplade(src), ("--precision", "fp32", "--layers", "int8")
    with_float = compare(convert(src, tmp_path / "float", *args), reference)
    monkeypatch.setattr(gte_family, "float_channels", lambda ck, prefix: np.zeros(0, dtype=np.int64))
    all_int8 = compare(convert(src, tmp_path / "int8", *args), reference)
    assert 1.0 - with_float["mean_cos"] <= 0.7 * (1.0 - all_int8["mean_cos"]), (with_float, all_int8)


def test_two_pass_activations_leave_only_the_weights_rounding() -> None:
    """On a heavy-tailed input (a gated product), the two-pass int8 linear's activation error is under 1/100 of the
    one-pass one: against the same int8 weights dequantized, what is left is float rounding."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((1, 6, 256)) * rng.standard_normal((1, 6, 256)) ** 3).astype(np.float32)
    weight, bias = (rng.standard_normal((32, 256)) * 0.05).astype(np.float32), np.zeros(32, dtype=np.float32)
    wq, w_scale = convert_graph.quantize_rows(weight)
    want = x.astype(np.float64) @ (wq * w_scale[:, None]).T.astype(np.float64)
    errors = {}
    for two_pass in (False, True):
        g = convert_graph.Graph()
        y = convert_graph.dense_int8(g, "x", weight, bias, "lin", two_pass=two_pass)
        graph = helper.make_graph(
            g.nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 256])],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], g.inits,
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", convert_graph.OPSET)])
        model.ir_version = convert_graph.IR_VERSION
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        errors[two_pass] = float(np.abs(session.run(None, {"x": x})[0] - want).max())
    assert errors[True] < errors[False] / 100, errors


def test_untied_decoder_and_separate_qkv_convert(tmp_path: Path) -> None:
    """An untied lm_head.decoder and q_proj/k_proj/v_proj (pack_qkv false) as that file names them."""
    src = write_gte(tmp_path / "src", config(pack_qkv=False), tied=False, seed=8)
    expander = convert(src, tmp_path / "out", "--precision", "fp32")
    assert compare(expander, ReferenceSplade(src))["max_abs"] <= 1e-4
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["tied_decoder"] is False


# --- the reference, cross-checked -----------------------------------------------------------------------------
def reference(**overrides: Any) -> GteReference:
    cfg = config(**overrides)
    return GteReference(cfg, {})


def test_rope_rotation_preserves_norms_and_is_identity_at_position_zero() -> None:
    """RoPE is a rotation per pair (x[j], x[j + d/2]): every head vector keeps its norm at every position, and
    position 0 is left as it is; with NTK the angles differ from the unscaled ones."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 4, 16))
    for scaling in ({"type": "ntk", "factor": 2.0}, {"type": "ntk", "factor": 3.0, "mixed_b": 0.8}, None):
        rotated = reference(rope_scaling=scaling).rotate(x)
        assert np.allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1), atol=1e-12)
        assert np.array_equal(rotated[0], x[0])
    plain = reference(rope_scaling=None).frequencies()
    scaled = reference(rope_scaling={"type": "ntk", "factor": 2.0}).frequencies()
    assert scaled[0] < plain[0] and np.all(scaled < plain)


def test_one_position_attention_is_the_value_path() -> None:
    """With one position, softmax has one entry (1.0): the attention output is v, whatever q and k are."""
    rng = np.random.default_rng(1)
    ref = reference()
    q, k, v = (rng.standard_normal((1, ref.heads, ref.head_dim)) * 10 for _ in range(3))
    assert np.allclose(ref.attention(q, k, v), v.reshape(1, -1), atol=1e-12)


def test_gated_ffn_matches_a_hand_computed_example() -> None:
    """x = (1, 2); up_gate = [[1, 0], [0, 1], [1, 1], [0, -1]] gives up = (1, 2), gate = (3, -2); gelu(3) =
    2.995950, gelu(-2) = -0.045500; gated = (2.995950, -0.091001); down [[1, 1], [0, 1]] + (0.5, 0) gives
    (3.404950, -0.091001)."""
    ref = GteReference(
        {**config(), "hidden_size": 2, "intermediate_size": 2, "num_attention_heads": 1},
        {
            "new.encoder.layer.0.mlp.up_gate_proj.weight": np.array([[1, 0], [0, 1], [1, 1], [0, -1]], np.float32),
            "new.encoder.layer.0.mlp.down_proj.weight": np.array([[1, 1], [0, 1]], np.float32),
            "new.encoder.layer.0.mlp.down_proj.bias": np.array([0.5, 0.0], np.float32),
        },
    )
    out = ref.gated_ffn(np.array([[1.0, 2.0]]), 0)
    assert np.allclose(out, [[3.404950, -0.091001]], atol=1e-6)
    assert math.isclose(3 * 0.5 * (1 + math.erf(3 / math.sqrt(2))), 2.995950, abs_tol=1e-6)


# --- refusals -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_scaling {'type': 'linear', 'factor': 2.0}"),
        ({"rope_scaling": {"type": "ntk", "factor": 2.0, "original_max": 1}}, "rope_scaling keys ['original_max']"),
        ({"hidden_act": "silu"}, "hidden_act 'silu' is not supported"),
        ({"layer_norm_type": "group_norm"}, "layer_norm_type 'group_norm' is not supported"),
        ({"position_embedding_type": "alibi"}, "position_embedding_type 'alibi' is not supported"),
        ({"hidden_size": 60, "num_attention_heads": 4}, "must give an even head size"),
    ],
)  # fmt: skip
def test_a_setting_not_implemented_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, Any], message: str
) -> None:
    """Exit status 2 and one line naming the setting; no graph."""
    src = write_gte(tmp_path / "src", config())
    (src / "config.json").write_text(json.dumps(config(**overrides)))
    assert convert_cli.main(["--source", str(src), "--out", str(tmp_path / "out"), "--manifest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("build_model: cannot convert") and message in err, err
    assert not (tmp_path / "out" / "model.onnx").exists()
