"""Remote WebDataset shards (``https://``, ``pipe:``, fsspec URLs), served here by a local HTTP server on the
loopback address (no internet): the same samples, batches and exact resume as the local shards, each fetched once
into the shard cache, and every failure named (HTTP errors, failing commands, short or non-tar responses)."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
import torch
from streaming_sources import make_folder, make_shards

from fsq.data.datasets import open_items
from fsq.data.loader import StepLoader
from fsq.data.transforms import ItemTransform


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/short/NAME`` claims NAME's full length but sends half of it, then closes."""

    requests: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        if not self.path.startswith("/short/"):
            return super().do_GET()
        data = (self.directory + "/" + self.path.removeprefix("/short/")).encode()
        with open(data, "rb") as handle:
            body = handle.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    return make_shards(make_folder(root / "images"), root / "shards", per_shard=10)


@pytest.fixture(scope="module")
def server(shards):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(shards)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _same(items, reference):
    assert len(items) == len(reference) and items.skipped == []
    assert [items.label(i) for i in range(len(items))] == [reference.label(i) for i in range(len(reference))]
    assert all(torch.equal(items.read(i), reference.read(i)) for i in range(len(items)))


def test_http_brace_urls_stream_like_local_shards(shards, server, tmp_path):
    local = open_items(f"wds:{shards}/{{split}}-*.tar", "train")
    source = f"wds:{server}/{{split}}-{{000000..000002}}.tar"
    remote = open_items(source, "train", cache_dir=str(tmp_path / "cache"))
    _same(remote, local)
    assert remote.name(0) == "train-000000.tar:000000" and remote.shard_names[0] == f"{server}/train-000000.tar"

    def batches(items, workers, start):
        loader = StepLoader(items, ItemTransform("random", 16), global_batch=6, seed=1, stop=8, workers=workers)
        return [loader.batch(step)[0] for step in range(start, 8)]

    straight = batches(local, 0, 0)
    assert all(torch.equal(a, b) for a, b in zip(batches(remote, 2, 0), straight))  # workers read the cache
    assert all(torch.equal(a, b) for a, b in zip(batches(remote, 2, 5), straight[5:]))  # exact resume at step 5


def test_remote_shards_are_fetched_once(shards, server, tmp_path):
    _Handler.requests.clear()
    for _ in range(2):
        items = open_items(f"wds:{server}/test-000000.tar", "all", cache_dir=str(tmp_path))
    assert len(items) == 8 and _Handler.requests == ["/test-000000.tar"]
    assert [p.name for p in tmp_path.iterdir()] == [items.shards[0].name]  # no temporary files left


def test_pipe_and_fsspec_urls(shards, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    local = open_items(f"wds:{shards}/test-000000.tar", "all")
    _same(open_items(f"wds:pipe:cat {shards}/test-000000.tar", "all", cache_dir=str(tmp_path / "a")), local)
    with fsspec.open("memory://relia/test-000000.tar", "wb") as handle:
        handle.write((shards / "test-000000.tar").read_bytes())
    _same(open_items("wds:memory://relia/test-000000.tar", "all", cache_dir=str(tmp_path / "b")), local)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("{server}/train-{{000000..000003}}.tar", "HTTP Error 404"),  # one missing shard of four
        ("{server}/short/train-000000.tar", "the response ended after"),
        ("{server}/../streaming_sources.py", "HTTP Error 404"),
        ("pipe:echo not a tar", "not a readable tar file"),
        ("pipe:exit 3", "the command exited with status 3"),
        ("http://127.0.0.1:1/train.tar", "Connection refused"),
        ("nope://host/train.tar", "Protocol not known: nope"),
    ],
    ids=["404-in-braces", "short-response", "404", "not-a-tar", "failing-command", "refused", "unknown-scheme"],
)
def test_remote_failures_are_named_and_not_cached(url, reason, server, tmp_path):
    url = url.format(server=server)
    cache = tmp_path / "cache"
    if "{" in url:  # the other shards are used; the missing one is listed and logged
        items = open_items(f"wds:{url}", "train", cache_dir=str(cache))
        assert len(items) == 24 and [name for name, _ in items.skipped] == [f"{server}/train-000003.tar"]
        assert reason in items.skipped[0][1]
        with pytest.raises(ValueError, match=f"train-000003.tar: cannot fetch it: {reason}"):
            open_items(f"wds:{url}", "train", cache_dir=str(cache), on_error="raise")
        return
    with pytest.raises(ValueError, match=f"no WebDataset shards.*passed over: .*cannot fetch it: .*{reason}"):
        open_items(f"wds:{url}", "all", cache_dir=str(cache))
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-fetched is kept


@pytest.mark.integration
def test_training_on_http_shards_equals_training_on_the_local_shards(shards, server, tmp_path):
    """Two workers; the pattern names a 4th shard that does not exist: the same weights as the local shards, and
    the missing shard named in the run's skipped_files.json."""
    import json
    from pathlib import Path

    from fsq import app
    from fsq.checkpoint import load_safetensors
    from fsq.config import TokenizerExperiment, load_config

    smoke = Path(__file__).parents[2] / "configs" / "presets" / "smoke.yaml"
    common = ["data.image_size=16", "data.channels=3", "train.threads=1", "train.eval_at_end=false", "data.workers=2"]
    weights = {}
    for name, where in (("local", str(shards)), ("http", server)):
        source = f"data.source=wds:{where}/train-{{000000..000003}}.tar"
        cfg = load_config(TokenizerExperiment, [smoke], [source, f"data.cache_dir={tmp_path}", *common])
        app.train(cfg, tmp_path / name)
        weights[name] = load_safetensors(tmp_path / name / "checkpoints" / "step_000004" / "model.safetensors")
        skipped = json.loads((tmp_path / name / "skipped_files.json").read_text())["skipped"]
        assert [(e["path"], e["found"]) for e in skipped] == [(f"{where}/train-000003.tar", "listing")]
    assert all(torch.equal(weights["local"][k], weights["http"][k]) for k in weights["local"])


def test_shard_urls_pass_config_validation_and_unknown_prefixes_do_not():
    from fsq.config import ConfigError, TokenizerExperiment, load_config

    for source in ("https://h/train-{0000..0002}.tar", "s3://b/train.tar", "pipe:curl -s https://h/a.tar"):
        assert load_config(TokenizerExperiment, [], [f"data.source={source}"]).data.source == source
    with pytest.raises(ConfigError, match="unknown prefix 'ftp:'"):
        load_config(TokenizerExperiment, [], ["data.source=ftp:x"])
