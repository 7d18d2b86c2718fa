"""The reference a user would otherwise deploy: transformers + torch CPU on the same weights.

    python scripts/bench_reference.py <checkpoint dir> [log1p_relu | log1p_log1p_relu]

Any BertForMaskedLM / DistilBertForMaskedLM checkpoint (AutoModelForMaskedLM). Run by ``scripts/bench.py`` and
the ``reference`` tests with the interpreter of ``make bench-reference``'s virtualenv. It reads one JSON
command per line on stdin and answers one JSON line on stdout, so the benchmark can interleave it with the
ONNX systems in the same run:

    {"op": "throughput", "texts": [...], "threads": 1, "batch": 16}  -> {"docs_per_s": ...}
    {"op": "latency", "texts": [...], "threads": 1, "reps": 60}      -> {"p50_ms": ..., "p95_ms": ...}
    {"op": "vectors", "texts": [...]}                                -> {"vectors": [[...30522 floats]]}
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer


def main() -> int:
    source = sys.argv[1]
    twice = len(sys.argv) > 2 and sys.argv[2] == "log1p_log1p_relu"
    torch.set_grad_enabled(False)
    model = AutoModelForMaskedLM.from_pretrained(source).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)

    def splade(texts: list[str]) -> torch.Tensor:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        weights = torch.log1p(torch.relu(logits)) * batch["attention_mask"].unsqueeze(-1)
        pooled = weights.max(dim=1).values
        return torch.log1p(pooled) if twice else pooled

    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        texts = cmd["texts"]
        torch.set_num_threads(int(cmd.get("threads", 1)))
        if cmd["op"] == "throughput":
            b = int(cmd["batch"])
            splade(texts[:b])  # warm-up
            start = time.perf_counter()
            for i in range(0, len(texts), b):
                splade(texts[i : i + b])
            result = {"docs_per_s": len(texts) / (time.perf_counter() - start)}
        elif cmd["op"] == "latency":
            times = []
            splade(texts[:1])
            for r in range(int(cmd["reps"])):
                start = time.perf_counter()
                splade([texts[r % len(texts)]])
                times.append(time.perf_counter() - start)
            result = {"p50_ms": float(np.percentile(times, 50) * 1e3), "p95_ms": float(np.percentile(times, 95) * 1e3)}
        elif cmd["op"] == "vectors":
            result = {"vectors": splade(texts).numpy().tolist()}
        else:
            result = {"error": f"unknown op {cmd['op']}"}  # type: ignore[dict-item]
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
