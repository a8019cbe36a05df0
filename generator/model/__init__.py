"""The model side: architecture specs and the zoo, CF-n quantizers, the PyTorch network,
checkpoints, datasets, float evaluation, training and QONNX import/export. Imports only
generator.core."""
