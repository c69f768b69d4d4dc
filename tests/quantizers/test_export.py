"""torch.compile (fullgraph, no graph break), torch.export and ONNX (onnxruntime parity) for the quantizers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fsq import FSQ, ResidualFSQ


class _Encode(nn.Module):
    """Wrap a quantizer so exporters see plain tensor outputs."""

    def __init__(self, quantizer: nn.Module) -> None:
        super().__init__()
        self.quantizer = quantizer

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.quantizer(z)
        return out.quantized, out.indices


class _Decode(nn.Module):
    def __init__(self, quantizer: nn.Module) -> None:
        super().__init__()
        self.quantizer = quantizer

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.indices_to_codes(indices)


def test_dynamo_sees_no_graph_break():
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(FSQ([8, 5, 5, 5], channel_axis=1))(torch.randn(2, 4, 6, 6))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


@pytest.mark.integration
def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    q = FSQ([8, 5, 5, 5])
    compiled = torch.compile(q, fullgraph=True)
    z = torch.randn(2, 64, 4) * 2
    eager, fast = q(z), compiled(z)
    assert torch.equal(eager.quantized, fast.quantized) and torch.equal(eager.indices, fast.indices)
    # gradients agree (inductor may fuse the backward differently: allow float32 rounding)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    q(z1).quantized.square().sum().backward()
    compiled(z2).quantized.square().sum().backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-6, atol=1e-6)
    # inside a graph the non-finite check cannot raise: such positions get index -1 instead
    bad = z.clone()
    bad[0, 3, 1] = float("nan")
    assert compiled(bad).indices[0, 3].item() == -1


@pytest.mark.parametrize("module", [FSQ([8, 5, 5, 5]), FSQ([7, 5, 5, 5, 5], channel_axis=1), ResidualFSQ([8, 5, 5], 3)])
def test_torch_export_matches_eager(module):
    z = torch.randn(2, 5, 8, 8) if module.channel_axis == 1 else torch.randn(2, 16, module.dim)
    program = torch.export.export(_Encode(module), (z,))
    exported, eager = program.module()(z), _Encode(module)(z)
    assert torch.equal(exported[0], eager[0]) and torch.equal(exported[1], eager[1])


def _onnx_roundtrip(module: nn.Module, example: torch.Tensor, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install fsq-toolkit[dev])")
    pytest.importorskip("onnxscript", reason="onnxscript not installed (pip install fsq-toolkit[dev])")
    path = tmp_path / "model.onnx"
    torch.onnx.export(module.eval(), (example,), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: example.numpy()})


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")  # exporter internals
@pytest.mark.parametrize("variant", ["paper", "symmetric"])
def test_onnx_export_matches_onnxruntime(tmp_path, variant):
    q = FSQ([8, 5, 5, 5], variant=variant)
    z = torch.randn(4, 32, 4) * 2
    codes, indices = _onnx_roundtrip(_Encode(q), z, tmp_path)
    eager = q(z)
    assert indices.dtype.name == "int64"
    assert (indices == eager.indices.numpy()).all()
    assert (codes == eager.quantized.numpy()).all()
    decoded = _onnx_roundtrip(_Decode(q), eager.indices, tmp_path)[0]
    assert (decoded == q.indices_to_codes(eager.indices).numpy()).all()
