"""The vector-quantize-pytorch drop-in: bit-identical to vector-quantize-pytorch 1.32's FSQ (the parity tests are
skipped when it is not installed; CI installs it), loads its state dicts, and imports without it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fsq import FSQ as ProjectFSQ
from fsq.compat import vector_quantize_pytorch as compat
from fsq.compat.vector_quantize_pytorch import FSQ, DropInError


@pytest.fixture(scope="module")
def vqp():
    return pytest.importorskip("vector_quantize_pytorch", reason="vector-quantize-pytorch not installed")


def bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bit pattern, so -0.0 vs 0.0 and NaN payloads count as differences."""
    return t.view({1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def assert_identical(ours: torch.Tensor | None, theirs: torch.Tensor | None) -> None:
    if theirs is None:
        assert ours is None
        return
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert torch.equal(bits(ours), bits(theirs))


def pair(vqp, **kwargs) -> tuple[FSQ, torch.nn.Module]:
    """(ours, theirs), ours loaded strictly from theirs' state dict."""
    theirs = vqp.FSQ(**kwargs)
    ours = FSQ(**kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


# (id, constructor kwargs, input shape, input dtype, module dtype)
CONFIGS = [
    ("8555", dict(levels=[8, 5, 5, 5]), (2, 600, 4), torch.float32, None),
    ("865-proj", dict(levels=[8, 6, 5], dim=16), (2, 300, 16), torch.float32, None),
    ("75555-c2-proj", dict(levels=[7, 5, 5, 5, 5], num_codebooks=2, dim=32), (2, 200, 32), torch.float32, None),
    ("8555-c4-image", dict(levels=[8, 5, 5, 5], num_codebooks=4), (2, 16, 6, 7), torch.float32, None),
    ("222-sym", dict(levels=[2, 2, 2], preserve_symmetry=True), (2, 400, 3), torch.float32, None),
    ("865-sym-noise", dict(levels=[8, 6, 5], preserve_symmetry=True, noise_dropout=0.5), (2, 400, 3), None, None),
    ("865-channel-first-3d", dict(levels=[8, 6, 5], channel_first=True), (2, 3, 400), torch.float32, None),
    ("865-channel-first-2d", dict(levels=[8, 6, 5], channel_first=True), (400, 3), torch.float32, None),
    ("8555-proj-video", dict(levels=[8, 5, 5, 5], dim=8), (2, 8, 3, 5, 6), torch.float32, None),
    ("8555-c2-video", dict(levels=[8, 5, 5, 5], num_codebooks=2), (2, 8, 2, 4, 5), torch.float32, None),
    ("8555-keep-c1", dict(levels=[8, 5, 5, 5], keep_num_codebooks_dim=True), (2, 300, 4), torch.float32, None),
    ("865-no-indices", dict(levels=[8, 6, 5], dim=7, return_indices=False), (2, 300, 7), torch.float32, None),
    ("865-no-bias", dict(levels=[8, 6, 5], dim=7, projection_has_bias=False), (2, 300, 7), torch.float32, None),
    ("865-hard-clamp", dict(levels=[8, 6, 5], bound_hard_clamp=True), (2, 400, 3), torch.float32, None),
    ("865-sym-hard", dict(levels=[8, 6, 5], preserve_symmetry=True, bound_hard_clamp=True), (2, 400, 3), None, None),
    ("5555-c2-rotation", dict(levels=[5, 5, 5, 5], num_codebooks=2, orthogonal_rotation=True), (2, 200, 8), None, None),
    ("8555-fp16", dict(levels=[8, 5, 5, 5]), (2, 400, 4), torch.float16, None),
    ("8555-bf16", dict(levels=[8, 5, 5, 5]), (2, 400, 4), torch.bfloat16, None),
    ("8555-fp64", dict(levels=[8, 5, 5, 5]), (2, 400, 4), torch.float64, None),
    ("865-sym-bf16", dict(levels=[8, 6, 5], preserve_symmetry=True), (2, 400, 3), torch.bfloat16, None),
    ("865-sym-fp64", dict(levels=[8, 6, 5], preserve_symmetry=True), (2, 400, 3), torch.float64, None),
    ("865-proj-bf16-module", dict(levels=[8, 6, 5], dim=8), (2, 200, 8), torch.bfloat16, torch.bfloat16),
    ("865-proj-fp16-module", dict(levels=[8, 6, 5], dim=8), (2, 200, 8), torch.float16, torch.float16),
    ("865-proj-fp64-module", dict(levels=[8, 6, 5], dim=8), (2, 200, 8), torch.float64, torch.float64),
    (
        "88865-sym-bf16-no-upcast",
        dict(levels=[8, 8, 8, 6, 5], preserve_symmetry=True, force_quantization_f32=False),
        (2, 400, 5),
        torch.bfloat16,
        None,
    ),
    (
        "865-sym-bf16-allowed",
        dict(levels=[8, 6, 5], preserve_symmetry=True, allowed_dtypes=(torch.float32, torch.bfloat16)),
        (2, 400, 3),
        torch.bfloat16,
        None,
    ),
    ("865-fp16-no-upcast", dict(levels=[8, 6, 5], force_quantization_f32=False), (2, 400, 3), torch.float16, None),
]


def run(module: torch.nn.Module, z: torch.Tensor, train: bool):
    """(out, indices, input grad, parameter grads) of one forward/backward, noise seeded identically."""
    module.train(train)
    z = z.clone().requires_grad_()
    torch.manual_seed(5)
    out, indices = module(z)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(out.dtype)
    (out * weight).sum().backward()
    return out, indices, z.grad, {name: p.grad for name, p in module.named_parameters()}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    ("kwargs", "shape", "dtype", "module_dtype"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS]
)
def test_forward_backward_bit_identical(vqp, kwargs, shape, dtype, module_dtype, train):
    torch.manual_seed(0)
    ours, theirs = pair(vqp, **kwargs)
    if module_dtype is not None:
        ours.to(module_dtype), theirs.to(module_dtype)
    z = (torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 2).to(dtype or torch.float32)
    out, indices, grad, param_grads = run(ours, z, train)
    their_out, their_indices, their_grad, their_param_grads = run(theirs, z, train)
    assert_identical(out, their_out)
    assert_identical(indices, their_indices)
    assert_identical(grad, their_grad)
    assert param_grads.keys() == their_param_grads.keys()
    for name, g in param_grads.items():
        assert_identical(g, their_param_grads[name])
    if indices is not None and module_dtype in (None, torch.float64):
        # bf16/fp16 modules with projections fail in theirs too (float32 codes into a low-precision Linear)
        ours.to(torch.float32), theirs.to(torch.float32)
        assert_identical(ours.indices_to_codes(indices), theirs.indices_to_codes(their_indices))


@pytest.mark.parametrize("levels", [[4], [7], [8], [10], [13]])
@pytest.mark.parametrize("symmetric", [False, True])
def test_rounding_boundaries_bit_identical(vqp, levels, symmetric):
    """Runs of consecutive floats around every decision boundary: the constants agree to the last bit (float64
    constants rounded to float32, as :class:`fsq.quantizers.FSQ` computes them, move some of these inputs)."""
    ours, theirs = pair(vqp, levels=levels, preserve_symmetry=symmetric)
    level = levels[0]
    half_l = (level - 1) * (1 + 1e-3) / 2
    offset = 0.5 if level % 2 == 0 else 0.0
    shift = 0.0 if symmetric else torch.tensor(offset / half_l, dtype=torch.float64).atanh().item()
    if symmetric:  # tanh(z) = 2 (k + 0.5) / (L - 1) - 1
        edges = [2 * (k + 0.5) / (level - 1) - 1 for k in range(level - 1)]
    else:  # tanh(z + shift) * half_l - offset = k + 0.5
        edges = [(k + 0.5 + offset) / half_l for k in range(-level, level)]
    centres = torch.tensor([e for e in edges if abs(e) < 1], dtype=torch.float64).atanh() - shift
    z = [centres.float()]
    for _ in range(300):  # the 300 floats on either side of each centre
        z = [torch.nextafter(z[0], torch.tensor(-9.0)), *z, torch.nextafter(z[-1], torch.tensor(9.0))]
    z = torch.stack(z, dim=-1).reshape(1, -1, 1)
    assert z.isfinite().all()
    out, indices = ours(z)
    their_out, their_indices = theirs(z)
    assert_identical(out, their_out)
    assert_identical(indices, their_indices)


def test_state_dicts_load_both_ways_strictly(vqp):
    for kwargs in [
        dict(levels=[8, 5, 5, 5]),
        dict(levels=[8, 6, 5], dim=64, num_codebooks=2),
        dict(levels=[8, 6, 5], dim=64, projection_has_bias=False),
        dict(levels=[5, 5, 5], orthogonal_rotation=True),
    ]:
        theirs = vqp.FSQ(**kwargs)
        ours = FSQ(**kwargs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(theirs.state_dict(), strict=True)
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value)
        theirs.load_state_dict(FSQ(**kwargs).state_dict(), strict=True)
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert FSQ([8, 5, 5, 5]).state_dict() == {}


def test_same_seed_same_parameters(vqp):
    """Construction draws from the RNG in their order: a seeded model gets the same projections and rotation."""
    kwargs = dict(levels=[5, 5, 5], dim=12, num_codebooks=2, orthogonal_rotation=True)
    torch.manual_seed(7)
    theirs = vqp.FSQ(**kwargs)
    torch.manual_seed(7)
    ours = FSQ(**kwargs)
    for (key, value), (their_key, their_value) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert key == their_key and torch.equal(value, their_value)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(levels=[8, 5, 5, 5]),
        dict(levels=[8, 6, 5], preserve_symmetry=True, num_codebooks=2, dim=10),
        dict(levels=[7, 5, 5, 5, 5], scale=10.0, channel_first=True),
        dict(levels=[8, 6, 5], return_indices=False),
    ],
)
def test_attributes_and_buffers_match(vqp, kwargs):
    ours, theirs = pair(vqp, **kwargs)
    names = [
        "dim", "codebook_dim", "effective_codebook_dim", "num_codebooks", "keep_num_codebooks_dim", "scale",
        "channel_first", "has_projections", "return_indices", "preserve_symmetry", "noise_dropout",
        "allowed_dtypes", "force_quantization_f32", "bound_hard_clamp", "orthogonal_rotation",
    ]  # fmt: skip
    for name in names:
        assert getattr(ours, name) == getattr(theirs, name), name
    for name in ["codebook_size", "implicit_codebook"]:
        assert hasattr(ours, name) == hasattr(theirs, name) == kwargs.get("return_indices", True)
    if theirs.return_indices:
        assert ours.codebook_size == theirs.codebook_size and isinstance(ours.codebook_size, int)
        assert_identical(ours.implicit_codebook, theirs.implicit_codebook)
    for name in ["_levels", "_basis"]:
        assert_identical(getattr(ours, name), getattr(theirs, name))
    assert type(ours.project_in) is type(theirs.project_in)
    ours.half(), theirs.half()  # converts the codebook, leaves the int32 buffers alone
    for name, buffer in theirs.named_buffers():
        assert_identical(dict(ours.named_buffers())[name], buffer)


@pytest.mark.parametrize(
    ("kwargs", "index_shape"),
    [
        (dict(levels=[8, 5, 5, 5]), (2, 9)),
        (dict(levels=[8, 5, 5, 5]), (2, 3, 4)),  # any 3-D index tensor comes back channel-first
        (dict(levels=[8, 5, 5, 5], dim=6), (2, 3, 4, 5)),
        (dict(levels=[8, 5, 5, 5]), (7,)),
        (dict(levels=[8, 5, 5, 5], channel_first=True, dim=6), (2, 9)),
        (dict(levels=[8, 6, 5], num_codebooks=2, preserve_symmetry=True), (2, 9, 2)),
        (dict(levels=[8, 6, 5], num_codebooks=2), (2, 3, 4, 2)),
        (dict(levels=[8, 6, 5], keep_num_codebooks_dim=True, dim=5), (2, 3, 4, 1)),
        (dict(levels=[5, 5, 5], orthogonal_rotation=True, num_codebooks=3), (4, 3)),
    ],
)
def test_indices_to_codes_matches(vqp, kwargs, index_shape):
    ours, theirs = pair(vqp, **kwargs)
    indices = torch.randint(0, ours.codebook_size, index_shape, generator=torch.Generator().manual_seed(0))
    for typed in (indices.int(), indices):
        assert_identical(ours.indices_to_codes(typed), theirs.indices_to_codes(typed))
        assert_identical(ours.indices_to_level_indices(typed), theirs.indices_to_level_indices(typed))


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_codes_to_indices_matches_even_off_grid(vqp, symmetric, dtype):
    ours, theirs = pair(vqp, levels=[8, 8, 8, 6, 5], preserve_symmetry=symmetric)
    grid = theirs.implicit_codebook.to(dtype)
    assert_identical(ours.codes_to_indices(grid), theirs.codes_to_indices(grid))
    off_grid = (torch.rand(4096, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(dtype)
    assert_identical(ours.codes_to_indices(off_grid), theirs.codes_to_indices(off_grid))


def test_cpu_autocast_matches(vqp):
    ours, theirs = pair(vqp, levels=[5, 5, 5], dim=8, orthogonal_rotation=True)
    z = torch.randn(2, 64, 8, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (out, indices), (their_out, their_indices) = ours(z), theirs(z)
    assert out.dtype == torch.bfloat16
    assert_identical(out, their_out)
    assert_identical(indices, their_indices)


def test_errors_where_theirs_fails(vqp):
    bad_kwargs = [
        dict(levels=[8, 2, 5]),
        dict(levels=[8, 5, 5], noise_dropout=0.1),
        dict(levels=[8, 5, 5], num_codebooks=2, keep_num_codebooks_dim=False),
    ]
    for kwargs in bad_kwargs:
        with pytest.raises(AssertionError):
            vqp.FSQ(**kwargs)
        with pytest.raises(AssertionError):  # DropInError: both an AssertionError and a ValueError
            FSQ(**kwargs)
        with pytest.raises(ValueError):
            FSQ(**kwargs)
    channel_last_image = torch.randn(2, 6, 7, 4)  # (b, h, w, d): read as channel-first, so 6 != 4 channels
    with pytest.raises(AssertionError, match="expected dimension of 4 but found dimension of 6"):
        vqp.FSQ([8, 5, 5, 5])(channel_last_image)
    with pytest.raises(DropInError, match="expected dimension of 4 but found dimension of 6"):
        FSQ([8, 5, 5, 5])(channel_last_image)
    with pytest.raises(ValueError, match="channel_first=True"):
        FSQ([8, 5, 5, 5])(torch.randn(3, 4))  # theirs: EinopsError
    with pytest.raises(NotImplementedError, match="int32"):
        FSQ([8] * 11)  # 2**33 codes
    assert FSQ([8] * 11, return_indices=False)(torch.randn(1, 2, 11))[1] is None


def test_grid_is_the_project_fsq_grid():
    """The drop-in's grids are :class:`fsq.quantizers.FSQ`'s ``atanh`` / ``symmetric`` grids, entry for entry."""
    for levels, symmetric in [([8, 5, 5, 5], False), ([7, 6, 4, 3], False), ([8, 6, 5], True), ([2, 3, 4], True)]:
        ours = FSQ(levels, preserve_symmetry=symmetric)
        project = ProjectFSQ(levels, variant="symmetric" if symmetric else "atanh")
        assert torch.equal(ours.implicit_codebook, project.codebook())


def test_project_fsq_refuses_their_buffers():
    """A state dict with their rotation (or their buffer names) would load into fsq.FSQ with other numerics."""
    rotated = FSQ([5, 5, 5], dim=8, orthogonal_rotation=True).state_dict()
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="fsq.compat.vector_quantize_pytorch.FSQ"):
            ProjectFSQ([5, 5, 5], dim=8, variant="atanh").load_state_dict(rotated, strict=strict)
    with pytest.raises(RuntimeError, match=r"quantizer\._levels"):
        torch.nn.ModuleDict({"quantizer": ProjectFSQ([8, 5, 5, 5])}).load_state_dict({"quantizer._levels": None})
    with pytest.raises(RuntimeError, match="state-dict version 1"):  # theirs without rotation: recognised too
        ProjectFSQ([8, 6, 5], dim=8).load_state_dict(FSQ([8, 6, 5], dim=8).state_dict())


def test_importable_without_vector_quantize_pytorch_or_einops():
    code = (
        "import sys\n"
        "for name in ('vector_quantize_pytorch', 'einops', 'einx'): sys.modules[name] = None\n"
        "import torch\n"
        "from fsq.compat.vector_quantize_pytorch import FSQ\n"
        "out, idx = FSQ([8, 5, 5, 5])(torch.zeros(1, 3, 4))\n"
        "assert idx.dtype == torch.int32 and idx.tolist() == [[500, 500, 500]]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compat_imports_only_torch_stdlib_and_quantizers():
    for path in sorted(Path(compat.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["fsq.compat"]
            for name in names:
                top = name.split(".")[0]
                ok = top in sys.stdlib_module_names or top in {"torch", "__future__"}
                assert ok or name.startswith(("fsq.quantizers", "fsq.compat")), f"{path.name} imports {name}"


def test_readme_section_runs():
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text.split("## Coming from vector-quantize-pytorch", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    exec(compile(block, "README.md", "exec"), {})
