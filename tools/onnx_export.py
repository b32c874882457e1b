"""The one ONNX export both model makers use: transformers' (< 5) legacy exporter, opset 14,
dynamic batch and sequence axes — the graph form the Hub's onnx/ files have, which tract
optimises with symbolic shapes."""

import torch


def export_classifier(model, path):
    dummy = torch.ones((2, 7), dtype=torch.long)
    torch.onnx.export(
        model,
        (dummy, dummy),
        path,
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"},
        },
        opset_version=14,
        do_constant_folding=True,
        dynamo=False,
    )
