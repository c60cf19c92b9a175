"""`seedzoo list` and `seedzoo info`, through the real command-line entry point."""
from __future__ import annotations

import json

import pytest

from seedzoo.cli import main
from seedzoo.cli.zoo import param_count, weights_available, zoo_table
from seedzoo.zoo import get_entry, list_entries


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_every_entry_with_its_columns(capsys):
    code, out, _ = _run(capsys, "list")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "architecture", "teacher"]
    assert len(lines) == 2 + len(list_entries())
    row = next(line for line in lines if line.startswith("seed_r18.mocov2_r50_200ep "))
    assert "seed_resnet18" in row and "mocov2_r50.in1k_200ep" in row and "57.6" in row and "official" in row
    assert f"{param_count('seed_resnet18') / 1e6:.1f}" in row


def test_params_match_a_real_model():
    import timm

    expected = sum(p.numel() for p in timm.create_model("seed_resnet18", num_classes=0).parameters())
    assert param_count("seed_resnet18") == expected
    assert param_count("not_an_architecture") is None


def test_list_filters(capsys):
    _, out, _ = _run(capsys, "list", "--pretrained")
    assert "recipe only" not in out and "seed_mbv3_large.mocov2_r50_200ep" in out
    _, out, _ = _run(capsys, "list", "seed_r34*")
    names = [line.split()[0] for line in out.strip().splitlines()[2:]]
    assert names and all(n.startswith("seed_r34.") for n in names)
    _, out, _ = _run(capsys, "list", "--teacher", "swav_r50w2*")
    names = [line.split()[0] for line in out.strip().splitlines()[2:]]
    assert set(names) == {e.name for e in list_entries(teacher="swav_r50w2*")} and names
    code, _, err = _run(capsys, "list", "nothing_like_this*")
    assert code == 1 and "no entries" in err


def test_weights_column():
    assert weights_available(get_entry("seed_r34.mocov2_r50_200ep")) == "recipe only"
    assert weights_available(get_entry("seed_r18.mocov2_r50_200ep")) == "official"


def test_markdown_table():
    table = zoo_table([get_entry("seed_mbv3_large")], markdown=True)
    header, rule, row = table.splitlines()
    assert header.count("|") == rule.count("|") == row.count("|")
    assert "`seed_mbv3_large.mocov2_r50_200ep`" in row


def test_info_readable_and_json(capsys):
    code, out, _ = _run(capsys, "info", "seed_mbv3_large")
    assert code == 0
    assert out.startswith("seed_mbv3_large.mocov2_r50_200ep")
    assert "MoCo-v2 ResNet-50" in out and "55.2" in out and "mobilenetv3_large_distill" in out
    code, out, _ = _run(capsys, "info", "swav_r50w5.in1k_400ep", "--json")
    record = json.loads(out)
    assert record["name"] == "swav_r50w5.in1k_400ep" and record["head"]["batch_norm"] is False


def test_info_unknown_name_suggests(capsys):
    code, _, err = _run(capsys, "info", "seed_mbv3_lrge")
    assert code == 2 and "seed_mbv3_large" in err


@pytest.mark.parametrize("argv", [["list", "--help"], ["info", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0


def test_sigterm_stops_a_command_like_ctrl_c_and_its_cleanup_runs(capsys, monkeypatch):
    import os
    import signal
    import time

    import seedzoo.cli.zoo as zoo_cli

    cleaned = []

    def long_command(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # interrupted by the handler, long before this ends
            return 0
        finally:
            cleaned.append(True)

    monkeypatch.setattr(zoo_cli, "_cmd_list", long_command)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = _run(capsys, "list")
    assert code == 128 + signal.SIGTERM and "interrupted by SIGTERM" in err and cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is before  # restored for whoever called main()
