"""Deployment: prunegen-export, the compact file format, inference copies and timing, ONNX."""
