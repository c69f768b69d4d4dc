"""The streaming data layer: folders, WebDataset shards and local HF datasets behind one map-style interface;
batches are a pure function of (seed, step) with any number of workers and ranks; transforms; unreadable files."""

from __future__ import annotations

import pytest
import torch
from streaming_sources import CLASSES, make_folder, make_hf_saved, make_shards

from fsq.data.datasets import FolderItems, MemoryItems, UnreadableItem, open_items, source_kind
from fsq.data.images import ImageSet
from fsq.data.loader import StepLoader, iterate_batches
from fsq.data.transforms import ItemTransform, center_crop, item_generator, random_crop_flip


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("images"))


def _all(items):
    return [items.read(i) for i in range(len(items))], [items.label(i) for i in range(len(items))]


def test_source_kinds():
    assert source_kind("mnist") == ("builtin", "mnist")
    assert source_kind("wds:/d/{split}-*.tar") == ("wds", "/d/{split}-*.tar")
    assert source_kind("/d/x.tar") == ("wds", "/d/x.tar")
    assert source_kind("hf:/d/ds") == ("hf", "/d/ds")
    assert source_kind("/d/images") == ("folder", "/d/images")
    assert source_kind("https://h/train-{0..9}.tar?x=1") == ("wds", "https://h/train-{0..9}.tar?x=1")
    assert source_kind("pipe:curl -s https://h/s") == ("wds", "pipe:curl -s https://h/s")


def test_folder_items_decode_lazily_with_class_labels(folder):
    items = open_items(str(folder), "train")
    assert isinstance(items, FolderItems) and len(items) == 24 and items.class_names == list(CLASSES)
    images, labels = _all(items)
    assert labels == [0] * 12 + [1] * 12
    assert all(im.dtype == torch.uint8 and im.shape[0] == 3 for im in images)
    assert len({tuple(im.shape) for im in images}) > 1  # sizes are kept: transforms crop later
    assert len(open_items(str(folder), "all")) == 32 and len(open_items(str(folder), "train", limit=5)) == 5


def test_shards_and_hf_hold_the_same_images_as_the_folder(folder, tmp_path):
    pytest.importorskip("datasets")
    reference, labels = _all(open_items(str(folder), "train"))
    shards = make_shards(folder, tmp_path / "shards", per_shard=10)
    saved = make_hf_saved(folder, tmp_path / "hf")
    for source in (f"wds:{shards}/{{split}}-*.tar", f"wds:{shards}", f"hf:{saved}", f"hf:{folder}"):
        items = open_items(source, "train", cache_dir=str(tmp_path / "hf_cache"))
        got, got_labels = _all(items)
        assert len(got) == 24 and items.has_labels, source
        if source.startswith("hf:") and not source.endswith("hf"):  # imagefolder: its own file order
            assert sorted(got_labels) == sorted(labels)
            continue
        assert got_labels == labels, source
        assert all(torch.equal(a, b) for a, b in zip(got, reference)), source
    assert len(open_items(f"wds:{shards}/train-000001.tar", "all")) == 10
    with pytest.raises(ValueError, match="no WebDataset shards"):
        open_items(f"wds:{shards}", "val")
    with pytest.raises(ValueError, match="splits"):
        open_items(f"hf:{saved}", "val")


def test_webdataset_shardwriter_output_is_read(folder, tmp_path):
    wds = pytest.importorskip("webdataset")
    files = sorted((folder / "test").rglob("*.png"))
    with wds.ShardWriter(str(tmp_path / "s-%06d.tar"), maxcount=3) as sink:
        for i, path in enumerate(files):
            sink.write({"__key__": f"{i:06d}", "png": path.read_bytes(), "cls": CLASSES.index(path.parent.name)})
    items = open_items(f"wds:{tmp_path}/s-*.tar", "all")
    assert len(items) == len(files) and len(items.shards) > 1
    assert [items.label(i) for i in range(len(items))] == [CLASSES.index(p.parent.name) for p in files]


def test_transforms_are_pure_functions_of_seed_step_position():
    image = torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8)
    a = random_crop_flip(image, 16, item_generator(1, 5, 7))
    assert torch.equal(a, random_crop_flip(image, 16, item_generator(1, 5, 7))) and a.shape == (3, 16, 16)
    crops = {random_crop_flip(image, 16, item_generator(1, 5, p)).sum().item() for p in range(20)}
    assert len(crops) > 5  # positions get different crops
    assert center_crop(image, 16).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="needs a generator"):
        ItemTransform("random", 16)(image)


def test_loader_batches_equal_with_0_or_2_workers_any_start_and_ranks(folder):
    items = open_items(str(folder), "train")
    transform = ItemTransform("random", 16)

    def loader(**kw):
        return StepLoader(items, transform, global_batch=8, seed=3, stop=8, **kw)

    straight = [loader().batch(s)[0] for s in range(8)]
    workers = loader(workers=2)
    assert all(torch.equal(workers.batch(s)[0], straight[s]) for s in range(8))
    resumed = loader(workers=2)
    assert torch.equal(resumed.batch(5)[0], straight[5]) and torch.equal(resumed.batch(6)[0], straight[6])
    ranks = [loader(rank=r, world_size=2) for r in range(2)]
    for step in range(4):
        parts = [ranks[r].batch(step)[0] for r in range(2)]
        assert torch.equal(torch.stack(parts, 1).reshape(straight[step].shape), straight[step])  # rank r: r::2
        keys = [{k[0] for k in ranks[r].keys(step)} for r in range(2)]
        assert not keys[0] & keys[1]


def test_memory_items_fast_path_is_plain_indexing():
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    items = MemoryItems(ImageSet(images, torch.arange(10), None, "x", "train"))
    loader = StepLoader(items, ItemTransform("none"), global_batch=4, seed=0, stop=3)
    assert loader.fast and torch.equal(loader.batch(2)[0], images[loader.sampler.indices(2)])
    out = list(iterate_batches(items, ItemTransform("none"), range(10), 4))
    assert torch.equal(torch.cat([o[1] for o in out]), images)


def test_unreadable_files_are_skipped_and_reported_or_raise(folder, tmp_path, caplog):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder / "test", copy)
    (copy / "cats" / "broken.png").write_bytes(b"not a png")
    (copy / "dogs" / "notes.txt").write_text("text")
    items = open_items(str(copy), "all")
    assert len(items) == 9 and any("notes.txt" in name for name, _ in items.skipped)
    with pytest.raises(UnreadableItem, match="broken.png"):
        items.read([items.name(i) for i in range(9)].index("cats/broken.png"))
    transform = ItemTransform("center", 16)
    with caplog.at_level("WARNING"):
        batches = list(iterate_batches(items, transform, range(9), 4))
    assert sum(int(b[3].sum()) for b in batches) == 8 and "broken.png" in caplog.text
    loader = StepLoader(items, ItemTransform("random", 16), global_batch=9, seed=0, stop=1)
    assert loader.batch(0)[0].shape == (9, 3, 16, 16) and list(loader.skipped) == ["cats/broken.png"]
    strict = StepLoader(items, ItemTransform("random", 16), global_batch=9, seed=0, stop=1, on_error="raise")
    with pytest.raises(ValueError, match="broken.png"):
        strict.batch(0)


def test_shard_files_read_before_workers_start_are_not_shared_with_them(folder, tmp_path):
    """Forked workers inherited the main process's open shard files, whose offsets they shared: garbage reads."""
    items = open_items(f"wds:{make_shards(folder, tmp_path / 'shards', per_shard=10)}", "train")
    reference = [items.read(i) for i in range(len(items))]  # opens the shard files in this process

    def loader(workers):
        return StepLoader(items, ItemTransform("center", 16), global_batch=8, seed=0, stop=6, workers=workers)

    plain, forked = loader(0), loader(2)
    assert all(torch.equal(plain.batch(s)[0], forked.batch(s)[0]) for s in range(6)) and not forked.skipped
    assert len(reference) == 24
