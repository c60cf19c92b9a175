"""Weight resolution against real servers on 127.0.0.1: olah as the Hugging Face Hub, `python -m
http.server` as a mirror and as the official URL, and a proxy that damages bodies."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import load_file

import seedzoo
from seedzoo import zoo
from seedzoo.weights import hub
from seedzoo.weights.cache import DownloadError, cache_root, download_url, read_source_record
from seedzoo.weights.io import ChecksumError, sha256_file
from seedzoo.weights.network import NetworkSettingError
from seedzoo.weights.publish import convert_release
from seedzoo.zoo import OfficialSource, Weights, get_entry
from tests.conftest import rel_max_err
from tests.servers import damaging_proxy, free_port, git_mirror, http_file_server, olah_server, scripted_server

MBV3, EFFB0 = "seed_mbv3_large.mocov2_r50_200ep", "seed_effb0.swav_r50w2_800ep"
MOCO, SWAV = "mocov2_r50.in1k_200ep", "swav_r50.in1k_800ep"
ORG = "testorg"


# --- official-layout teacher files built here (random ResNet-50 with non-trivial BN statistics) -----------------

def _resnet50() -> torchvision.models.ResNet:
    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 2.0)
    net.fc = torch.nn.Identity()
    # Values exactly representable in fp16, so that the files can be stored in half precision: the layout
    # (keys, shapes) is the official one, and half the bytes keep the servers in these tests quick.
    return net.half().float().eval()


def _half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _moco_checkpoint(net: torch.nn.Module) -> dict:
    encoder = dict(net.state_dict())
    encoder.update({"fc.0.weight": torch.randn(2048, 2048) * 0.02, "fc.0.bias": torch.zeros(2048),
                    "fc.2.weight": torch.randn(128, 2048) * 0.02, "fc.2.bias": torch.zeros(128)})
    state = {f"module.encoder_q.{k}": v for k, v in encoder.items()}
    state.update({f"module.encoder_k.{k}": v for k, v in encoder.items()})  # shared storage: saved once
    state.update({"module.queue": torch.randn(128, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)})
    return {"epoch": 200, "arch": "resnet50", "state_dict": _half(state),
            "optimizer": {"state": {}, "param_groups": []}}


def _swav_checkpoint(net: torch.nn.Module) -> dict:
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    head = {"0.weight": torch.randn(2048, 2048) * 0.02, "0.bias": torch.zeros(2048),
            "1.weight": torch.rand(2048) + 0.5, "1.bias": torch.zeros(2048),
            "1.running_mean": torch.randn(2048) * 0.1, "1.running_var": torch.rand(2048) + 0.5,
            "1.num_batches_tracked": torch.tensor(7), "3.weight": torch.randn(128, 2048) * 0.02,
            "3.bias": torch.zeros(128)}
    state.update({f"module.projection_head.{k}": v for k, v in head.items()})
    state["module.prototypes.weight"] = torch.randn(3000, 128)
    return _half(state)


@dataclasses.dataclass
class Case:
    entry: str
    repo: str
    folder: Path
    input: torch.Tensor
    features: torch.Tensor
    commit: str = ""


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mirrors")


@pytest.fixture(scope="module")
def olah(mirrors, tmp_path_factory) -> str:
    """One olah per module; it reads the git repos under `mirrors` at request time."""
    with olah_server(mirrors, tmp_path_factory.mktemp("olah")) as url:
        yield url


def _publish(case: Case, mirrors: Path) -> Case:
    case.commit = git_mirror(mirrors, f"{ORG}/{case.repo}", case.folder)
    return case


@pytest.fixture(scope="module")
def students(golden_dir, mirrors, tmp_path_factory) -> dict[str, Case]:
    """Model folders converted from the golden student files, each committed as testorg/<repo>."""
    root = tmp_path_factory.mktemp("students")
    out = {}
    for entry, stem in ((MBV3, "seed_mbv3_large"), (EFFB0, "seed_effb0")):
        expected = load_file(str(golden_dir / f"{stem}.expected.safetensors"))
        folder = convert_release(get_entry(entry), golden_dir / f"{stem}.pth.tar", root / stem)
        out[entry] = _publish(Case(entry, stem, folder, expected["input_224"], expected["features_224"]), mirrors)
    return out


@pytest.fixture(scope="module")
def teachers(mirrors, tmp_path_factory) -> dict[str, Case]:
    """Model folders converted from a MoCo-v2 and a SwAV file built in the official layouts."""
    root = tmp_path_factory.mktemp("teachers")
    net = _resnet50()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = net(x)
    out = {}
    for entry, checkpoint in ((MOCO, _moco_checkpoint(net)), (SWAV, _swav_checkpoint(net))):
        src = root / f"{entry}.pth"
        torch.save(checkpoint, src)
        folder = convert_release(get_entry(entry), src, root / entry, fingerprint=False)
        src.unlink()
        out[entry] = _publish(Case(entry, entry.split(".")[0], folder, x, reference), mirrors)
    return out


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf_cache")


def _point_hub_at(monkeypatch, endpoint: str, hf_cache: Path) -> None:
    """huggingface_hub reads HF_ENDPOINT at import: patch the constants it derives from it."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_ENDPOINT", endpoint)


@pytest.fixture
def online(olah, hf_cache, monkeypatch) -> str:
    _point_hub_at(monkeypatch, olah, hf_cache)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SEEDZOO_OFFLINE", raising=False)
    return olah


def _dead_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: any request would fail


def _features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


# --- Hugging Face Hub through olah -------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", [MBV3, EFFB0, MOCO, SWAV])
def test_hf_hub_name_loads_verified_weights(entry, request, online):
    case = request.getfixturevalue("teachers" if entry in (MOCO, SWAV) else "students")[entry]
    spec = f"hf-hub:{ORG}/{case.repo}@{case.commit}"
    model = seedzoo.create_model(spec, pretrained=True, num_classes=0)
    assert rel_max_err(_features(model, case.input), case.features) < 1e-4
    # timm alone (after `import seedzoo` registered the architecture) reads the same folder; it does not
    # check the sha256 - seedzoo's resolver does.
    model = timm.create_model(spec, pretrained=True, num_classes=0)
    assert rel_max_err(_features(model, case.input), case.features) < 1e-4


def test_an_hf_hub_id_stands_where_a_path_may(teachers, online):
    """`pretrained="hf-hub:ORG/NAME"` (e.g. a run's `teacher.pretrained`) is the folder the id names."""
    case = teachers[MOCO]
    spec = f"hf-hub:{ORG}/{case.repo}@{case.commit}"
    architecture = get_entry(MOCO).architecture
    model = seedzoo.create_model(architecture, pretrained=spec, num_classes=0)
    assert rel_max_err(_features(model, case.input), case.features) < 1e-4
    head = seedzoo.load_projection_head(architecture, pretrained=spec)  # the teacher's head, as training reads it
    assert isinstance(head, torch.nn.Module)


def test_cached_copy_loads_with_server_gone_and_offline(students, online, hf_cache, monkeypatch):
    case = students[MBV3]
    spec = f"hf-hub:{ORG}/{case.repo}@{case.commit}"
    folder = hub.resolve_hf_hub(spec)
    _point_hub_at(monkeypatch, _dead_endpoint(), hf_cache)
    # A pinned commit in the cache needs no request at all, even without the offline switch.
    assert hub.resolve_hf_hub(spec) == folder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = seedzoo.create_model(spec, pretrained=True, num_classes=0)
    assert rel_max_err(_features(model, case.input), case.features) < 1e-4


def _flip_cached_weights(folder: Path) -> Path:
    blob = (folder / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    return blob


def test_damaged_cached_blob_is_fetched_again(students, online):
    case = students[MBV3]
    spec = f"hf-hub:{ORG}/{case.repo}@{case.commit}"
    folder = hub.resolve_hf_hub(spec)
    sha = json.loads((folder / "config.json").read_text())["seedzoo"]["sha256"]
    _flip_cached_weights(folder)
    folder = hub.resolve_hf_hub(spec)
    assert sha256_file(folder / "model.safetensors") == sha
    model = seedzoo.create_model(spec, pretrained=True, num_classes=0)
    assert rel_max_err(_features(model, case.input), case.features) < 1e-4


def test_damaged_cached_blob_never_loads_offline(students, online, hf_cache, monkeypatch):
    case = students[EFFB0]
    spec = f"hf-hub:{ORG}/{case.repo}@{case.commit}"
    folder = hub.resolve_hf_hub(spec)
    _flip_cached_weights(folder)
    _point_hub_at(monkeypatch, _dead_endpoint(), hf_cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises((ChecksumError, hub.WeightsNotFoundError)):
        seedzoo.create_model(spec, pretrained=True, num_classes=0)
    # The damaged copy was deleted, not kept for the next call.
    assert not (folder / "model.safetensors").exists()


def test_missing_repo_and_missing_file_give_one_clear_message(students, online):
    with pytest.raises(hub.WeightsNotFoundError, match="repository, revision or file not found"):
        hub.resolve_hf_hub(f"hf-hub:{ORG}/no_such_repo@{students[MBV3].commit}")
    entry = dataclasses.replace(get_entry(MBV3), source=None, weights=Weights(
        hf_repo=f"{ORG}/{students[MBV3].repo}", revision=students[MBV3].commit, filename="absent.safetensors",
        sha256="0" * 64))
    with pytest.raises(hub.WeightsNotFoundError, match="absent.safetensors.*repository, revision or file not found"):
        hub.resolve_weights(entry, progress=False)


def test_pretrained_true_resolves_a_registry_entry_from_the_hub(students, online, monkeypatch):
    case = students[MBV3]
    pinned = dataclasses.replace(get_entry(MBV3), weights=Weights(
        hf_repo=f"{ORG}/{case.repo}", revision=case.commit,
        sha256=sha256_file(case.folder / "model.safetensors")))
    monkeypatch.setitem(zoo._ENTRIES, MBV3, pinned)
    model = seedzoo.create_model(MBV3, pretrained=True, num_classes=0)
    assert rel_max_err(_features(model, case.input), case.features) < 1e-4


# --- HTTP mirrors and the official URL ---------------------------------------------------------------------------

@pytest.fixture
def seedzoo_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEEDZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEEDZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def served(students, golden_dir, tmp_path) -> Path:
    """A directory for http.server: the converted MobileNetV3 weights and its official release file."""
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(students[MBV3].folder / "model.safetensors", www / "model.safetensors")
    shutil.copy(golden_dir / "seed_mbv3_large.pth.tar", www / "release.pth.tar")
    return www


def _register(monkeypatch, **changes) -> zoo.ZooEntry:
    entry = dataclasses.replace(get_entry(MBV3), **changes)
    monkeypatch.setitem(zoo._ENTRIES, MBV3, entry)
    return entry


def test_http_mirror(students, served, seedzoo_cache, monkeypatch):
    sha = sha256_file(served / "model.safetensors")
    with http_file_server(served) as url:
        _register(monkeypatch, source=None, weights=Weights(mirrors=(f"{url}/model.safetensors",), sha256=sha))
        model = seedzoo.create_model(MBV3, pretrained=True, num_classes=0)
    assert rel_max_err(_features(model, students[MBV3].input), students[MBV3].features) < 1e-4
    cached = next(seedzoo_cache.rglob("model.safetensors"))
    assert sha256_file(cached) == sha
    umask = os.umask(0)
    os.umask(umask)
    assert cached.stat().st_mode & 0o777 == 0o666 & ~umask  # a shared cache is readable by others


def test_a_fresh_mirror_download_is_hashed_as_it_streams_and_a_cached_one_on_each_load(served, seedzoo_cache,
                                                                                      monkeypatch):
    sha = sha256_file(served / "model.safetensors")
    reads = []
    monkeypatch.setattr(hub, "sha256_file", lambda path: reads.append(path) or sha256_file(path))
    with http_file_server(served) as url:
        entry = _register(monkeypatch, source=None, weights=Weights(mirrors=(f"{url}/model.safetensors",), sha256=sha))
        path = hub.resolve_weights(entry, progress=False)
        assert reads == []  # download_url checked the bytes on the way in: no second read of 1 file
        assert hub.resolve_weights(entry, progress=False) == path
    assert reads == [path]


def test_cli_download_fetches_into_the_cache(served, seedzoo_cache, monkeypatch, capsys):
    from seedzoo.cli import main as cli

    sha = sha256_file(served / "model.safetensors")
    with http_file_server(served) as url:
        _register(monkeypatch, source=None, weights=Weights(mirrors=(f"{url}/model.safetensors",), sha256=sha))
        assert cli(["download", MBV3]) == 0
    out = capsys.readouterr().out
    assert str(seedzoo_cache) in out and sha in out


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_download_is_rejected_and_not_cached(damage, served, seedzoo_cache, monkeypatch):
    sha = sha256_file(served / "model.safetensors")
    with http_file_server(served) as url, damaging_proxy(url, damage) as proxy:
        entry = _register(monkeypatch, source=None,
                          weights=Weights(mirrors=(f"{proxy}/model.safetensors",), sha256=sha))
        with pytest.raises(hub.WeightsNotFoundError, match="truncated" if damage == "truncate" else "sha256"):
            hub.resolve_weights(entry, progress=False)
    assert not any(p.is_file() for p in seedzoo_cache.rglob("*"))


def test_damaged_mirror_falls_back_to_the_official_url(students, served, seedzoo_cache, monkeypatch):
    sha = sha256_file(served / "model.safetensors")
    with http_file_server(served) as url, damaging_proxy(url, "flip") as proxy:
        entry = _register(monkeypatch, weights=Weights(mirrors=(f"{proxy}/model.safetensors",), sha256=sha),
                          source=OfficialSource(url=f"{url}/release.pth.tar?sig=secret", layout="seed_student"))
        path = hub.resolve_weights(entry, progress=False)
    assert path.parent.name == MBV3 and path.parent.parent.name == "converted"
    model = seedzoo.create_model(MBV3, pretrained=str(path.parent), num_classes=0)
    assert rel_max_err(_features(model, students[MBV3].input), students[MBV3].features) < 1e-4


def test_official_url_is_converted_once_and_its_source_recorded(students, served, golden_dir, seedzoo_cache,
                                                                monkeypatch):
    with http_file_server(served) as url:
        entry = _register(monkeypatch, weights=Weights(),
                          source=OfficialSource(url=f"{url}/release.pth.tar?sig=secret", layout="seed_student"))
        path = hub.resolve_weights(entry, progress=False)
    record = read_source_record(path.parent)
    assert record.source_sha256 == sha256_file(golden_dir / "seed_mbv3_large.pth.tar")
    assert record.sha256 == sha256_file(path) and "secret" not in (path.parent / "source.json").read_text()
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in path.parent.iterdir()} == {0o666 & ~umask}  # shared caches
    assert not list(seedzoo_cache.rglob("*.pth.tar"))  # the release file is not kept
    # A load publishes nothing: no card, no config.json, no fingerprint; the weights and their record only.
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors", "source.json"]

    # The server is gone: the converted copy is verified and used without any request.
    model = seedzoo.create_model(MBV3, pretrained=True, num_classes=0)
    assert rel_max_err(_features(model, students[MBV3].input), students[MBV3].features) < 1e-4


def test_official_url_serving_other_bytes_is_refused(served, golden_dir, seedzoo_cache, monkeypatch):
    with http_file_server(served) as url:
        entry = _register(monkeypatch, weights=Weights(),
                          source=OfficialSource(url=f"{url}/release.pth.tar", layout="seed_student"))
        path = hub.resolve_weights(entry, progress=False)
        # Upstream changes its file, and the converted copy is damaged: the recorded source hash refuses it.
        shutil.copy(golden_dir / "seed_effb0.pth.tar", served / "release.pth.tar")
        path.write_bytes(b"damaged")
        with pytest.raises(hub.WeightsNotFoundError, match="sha256"):
            hub.resolve_weights(entry, progress=False)


def test_offline_with_nothing_cached_says_where_to_put_the_file(seedzoo_cache, monkeypatch):
    entry = _register(monkeypatch, weights=Weights(hf_repo=f"{ORG}/x", revision="a" * 40, sha256="b" * 64,
                                                   mirrors=("http://127.0.0.1:9/model.safetensors",)))
    monkeypatch.setenv("SEEDZOO_OFFLINE", "1")
    with pytest.raises(hub.WeightsNotFoundError) as info:
        hub.resolve_weights(entry, progress=False)
    message = str(info.value)
    assert "model.safetensors" in message and "network access off" in message
    assert f"{ORG}/x" in message and "127.0.0.1:9/model.safetensors" in message
    assert str(seedzoo_cache / "weights" / MBV3 / ("b" * 64) / "model.safetensors") in message
    assert "pretrained=PATH" in message


def test_registry_revision_must_be_a_commit(seedzoo_cache, monkeypatch):
    entry = _register(monkeypatch, source=None, weights=Weights(hf_repo=f"{ORG}/x", revision="main", sha256="b" * 64))
    with pytest.raises(hub.WeightsNotFoundError, match="not a commit hash"):
        hub.resolve_weights(entry, progress=False)


def test_recipe_entry_has_no_weights():
    with pytest.raises(hub.WeightsNotFoundError, match="recipe"):
        hub.resolve_weights(get_entry("seed_r34.mocov2_r50_200ep"))


def test_cache_dir_precedence(tmp_path, monkeypatch):
    for var in ("SEEDZOO_CACHE", "TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "seedzoo"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "seedzoo"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert cache_root() == tmp_path / "torch" / "seedzoo"
    monkeypatch.setenv("SEEDZOO_CACHE", str(tmp_path / "sz"))
    assert cache_root() == tmp_path / "sz"
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_hub_names_parse():
    assert hub.parse_hf_hub("hf-hub:org/repo@abc") == hub.HubSpec("org/repo", "abc")
    assert hub.parse_hf_hub("hf-hub:org/repo.v1") == hub.HubSpec("org/repo.v1", None)
    with pytest.raises(ValueError, match="hf-hub:ORG/REPO"):
        hub.parse_hf_hub("hf-hub:just-a-name")


# --- slow, stalled and odd servers --------------------------------------------------------------------------------

@pytest.fixture
def short_limits(monkeypatch) -> None:
    """Limits short enough for tests: a stalled source is given up after half a second."""
    monkeypatch.setenv("SEEDZOO_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("SEEDZOO_READ_TIMEOUT", "0.5")
    monkeypatch.delenv("SEEDZOO_MIN_SPEED", raising=False)


@pytest.mark.parametrize("behaviour, message", [("drip", "stalled: less than 1024 bytes/s over 0.5 s"),
                                                ("hang", "stalled|sent nothing for 0.5 s")])
def test_stalled_download_ends_by_the_low_speed_limit(behaviour, message, short_limits, tmp_path):
    # One byte every 0.2 s never trips a per-read timeout; the low-speed limit ends it.
    with scripted_server(behaviour, interval=0.2) as server:
        with pytest.raises(DownloadError, match=message):
            download_url(f"{server.url}/model.safetensors", tmp_path / "model.safetensors", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_slow_download_passes_when_the_limit_allows_it(short_limits, monkeypatch, tmp_path):
    monkeypatch.setenv("SEEDZOO_MIN_SPEED", "0")  # only a silent window ends a transfer
    with scripted_server("drip", interval=0.05, length=20) as server:
        download_url(f"{server.url}/f", tmp_path / "f", progress=False)
    assert (tmp_path / "f").read_bytes() == bytes(20)


def test_stalled_mirror_is_left_for_the_next_source(students, served, seedzoo_cache, short_limits, monkeypatch):
    sha = sha256_file(served / "model.safetensors")
    with scripted_server("hang") as hanging, scripted_server("drip", interval=0.2) as dripping, \
            http_file_server(served) as url:
        entry = _register(monkeypatch, source=None, weights=Weights(
            mirrors=(f"{hanging.url}/model.safetensors", f"{dripping.url}/model.safetensors",
                     f"{url}/model.safetensors"), sha256=sha))
        path = hub.resolve_weights(entry, progress=False)
    assert sha256_file(path) == sha
    assert len(hanging.requests) == len(dripping.requests) == 1


def _hub_entry(endpoint_case: Case, **weights) -> dict:
    return dict(source=None, weights=Weights(hf_repo=f"{ORG}/{endpoint_case.repo}", revision=endpoint_case.commit,
                                             sha256=sha256_file(endpoint_case.folder / "model.safetensors"),
                                             **weights))


def test_hanging_hub_is_left_for_a_working_mirror_after_one_request(students, served, seedzoo_cache, tmp_path,
                                                                    short_limits, monkeypatch):
    case = students[MBV3]
    with scripted_server("hang") as hanging, http_file_server(served) as url:
        _point_hub_at(monkeypatch, hanging.url, tmp_path / "hf")  # nothing cached: the Hub must be asked
        entry = _register(monkeypatch, **_hub_entry(case, mirrors=(f"{url}/model.safetensors",)))
        path = hub.resolve_weights(entry, progress=False)
    assert path.is_relative_to(seedzoo_cache)
    # huggingface_hub would retry six times with a 60 s timeout; seedzoo sends the request once.
    assert [r for r in hanging.requests if "/resolve/" in r] == [f"HEAD /{ORG}/{case.repo}/resolve/{case.commit}/"
                                                                 "model.safetensors"]


@pytest.mark.parametrize("behaviour, answer", [
    ("answer-500", "HTTP 500"),
    ("answer-html", r"answered HTTP 200 \(text/html\) without a Hub's X-Repo-Commit header"),
    ("drip", "stalled: less than 1024 bytes/s"),
    ("closed", "Connection refused"),
])
def test_hub_failure_says_what_the_endpoint_answered(behaviour, answer, students, seedzoo_cache, tmp_path,
                                                     short_limits, monkeypatch):
    case = students[EFFB0]
    kind, _, variant = behaviour.partition("-")
    settings = {"status": 500 if variant == "500" else 200, "interval": 0.2,
                "headers": {"X-Repo-Commit": case.commit, "ETag": '"e"'} if kind == "drip" else None}
    with (scripted_server(kind, **settings) if kind != "closed" else _nothing()) as server:
        _point_hub_at(monkeypatch, server.url if server else _dead_endpoint(), tmp_path / "hf")
        entry = _register(monkeypatch, **_hub_entry(case))
        with pytest.raises(hub.WeightsNotFoundError, match=answer) as info:
            hub.resolve_weights(entry, progress=False)
    assert "network access" not in str(info.value)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        pass


def test_unknown_commit_says_what_the_endpoint_answered(students, online):
    # olah answers a commit it does not hold with a 500 (the Hub: 404, 'revision not found').
    with pytest.raises(hub.WeightsNotFoundError, match=f"{'0' * 40}/config.json.*HTTP 500") as info:
        hub.resolve_hf_hub(f"hf-hub:{ORG}/{students[MBV3].repo}@{'0' * 40}")
    assert "network access" not in str(info.value)


@pytest.mark.parametrize("variable, value", [("SEEDZOO_OFFLINE", "maybe"), ("HF_HUB_OFFLINE", "2"),
                                             ("SEEDZOO_READ_TIMEOUT", "soon"), ("SEEDZOO_CONNECT_TIMEOUT", "0"),
                                             ("SEEDZOO_MIN_SPEED", "-1")])
def test_unreadable_network_setting_is_refused_in_one_line(variable, value, served, seedzoo_cache, monkeypatch,
                                                          capsys):
    from seedzoo.cli import main as cli

    sha = sha256_file(served / "model.safetensors")
    _register(monkeypatch, source=None, weights=Weights(mirrors=("http://127.0.0.1:9/model.safetensors",),
                                                        sha256=sha))
    monkeypatch.setenv(variable, value)
    with pytest.raises(NetworkSettingError, match=f"{variable}="):
        seedzoo.create_model(MBV3, pretrained=True)
    assert cli(["download", MBV3]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seedzoo: error:") and variable in err and "\n" not in err
