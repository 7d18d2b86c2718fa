"""The converter: a Hugging Face masked-LM directory (a pretrained model) -> the fused SPLADE ONNX graph the
library serves, with no torch. One Family per architecture (families/, listed in registry.py), shared graph
operations (graph.py), the build stages (build.py), the writer (writer.py) and the command line (cli.py).
Never shipped in the Lambda zip; ``make model`` and ``make convert`` run it through scripts/build_model.py."""
