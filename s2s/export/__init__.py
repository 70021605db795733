"""Export to ONNX for the torch-free runtime (`s2s export`, `s2s-run`)."""
