"""Model cards' examples fit the model they describe (issue 24, item 6): class labels the model has, image
shapes it takes; and the hub's YAML front matter."""

from __future__ import annotations

from types import SimpleNamespace

from fsq.inference.export import example_settings, front_matter
from fsq.stages import get_stage


def test_a_two_class_maskgit_example_samples_classes_0_and_1():
    assert example_settings(num_classes=2)["labels"] == [0, 1]
    assert example_settings(num_classes=10)["labels"] == [0, 1, 2]
    code = get_stage("maskgit").usage.format(ref='"m"', **example_settings(num_classes=0))
    assert "pipeline.sample(None, 4)  # 4 unconditional images" in code  # an unconditional model


def test_tokenizer_example_uses_the_models_channels_and_size():
    code = get_stage("tokenizer").usage.format(ref='"t"', **example_settings(channels=3, size=64))
    assert "torch.rand(4, 3, 64, 64)" in code
    video = example_settings(channels=3, size=16, shape=[5, 16, 16])
    assert "torch.rand(4, 3, 5, 16, 16)" in get_stage("tokenizer").usage.format(ref='"t"', **video)


def test_front_matter_names_license_library_tags_and_builtin_datasets():
    cfg = SimpleNamespace(stage="tokenizer", data=SimpleNamespace(source="fashion"))
    lines = front_matter(cfg, get_stage("tokenizer").card_tags)
    assert lines[:3] == ["---", "license: apache-2.0", "library_name: fsq"]
    assert "- image-tokenizer" in lines and lines[-3:] == ["- fashion_mnist", "---", ""]
    folder = SimpleNamespace(stage="maskgit", data=SimpleNamespace(tokenizer="runs/x"))
    assert not any(
        line.startswith("datasets") for line in front_matter(folder, ("maskgit",), tokenizer_source="/my/images")
    )


def test_a_card_lists_a_residual_codecs_rows_per_depth():
    from fsq.inference.export import _metrics

    lines = _metrics({"mel_distance": 6.0, "depths": [{"depth": 1, "bits_per_second": 1857.5, "mel_distance": 6.5}]})
    assert "| mel_distance | 6 |" in lines
    assert "| depth | bits_per_second | mel_distance |" in lines and "| 1 | 1858 | 6.5 |" in lines
