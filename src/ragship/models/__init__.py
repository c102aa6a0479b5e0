"""Model resolution: bundled and local models, hub ids, and the embedders' ONNX exports."""
