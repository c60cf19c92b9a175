"""The command line as a user meets it: one-line errors (traceback behind --debug), --version, --json."""
from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest
import torch

from seedzoo import __version__
from seedzoo.cli import describe_error, main
from seedzoo.data.fashion_mnist import available
from seedzoo.errors import SeedzooError
from seedzoo.zoo import list_entries

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA: nothing to refuse")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("seedzoo: error: ") and "Traceback" not in err
    return lines[0]


def test_version_names_seedzoo_and_the_libraries_it_runs_on(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"seedzoo {__version__} (torch {torch.__version__.split('+')[0]}") and "timm" in out


def test_missing_run_folder_for_plot_is_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "plot", str(tmp_path / "no_run"))
    line = _one_line_error(err)
    assert code == 2 and "metrics.jsonl not found" in line and "run folder" in line


@NO_CUDA
def test_eval_on_cuda_without_a_gpu_says_to_use_the_cpu(capsys):
    code, _, err = _run(capsys, "eval", "seed_r18", "--random-init", "--device", "cuda", "--limit", "8")
    line = _one_line_error(err)
    assert code == 2 and "no CUDA device" in line and "--device cpu" in line


@NO_CUDA
def test_train_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--preset", "smoke", "device=cuda", "--out", str(tmp_path / "run"))
    line = _one_line_error(err)
    assert code == 2 and "device=cpu" in line


@pytest.mark.parametrize("override, expected", [
    ("data.path={missing}", "not found in"),
    ("teacher.pretrained={missing}/teacher.safetensors", "teacher.safetensors"),
], ids=["missing data", "missing teacher weights"])
def test_train_with_a_missing_path_is_one_line_naming_it(tmp_path, capsys, override, expected):
    override = override.format(missing=tmp_path / "missing")
    code, _, err = _run(capsys, "train", "--preset", "smoke", "device=cpu", override, "--out", str(tmp_path / "run"))
    line = _one_line_error(err)
    assert code == 2 and expected in line and str(tmp_path / "missing") in line


def test_missing_teacher_weights_say_they_are_the_teachers_and_how_to_get_them(tmp_path, capsys):
    missing = tmp_path / "teacher.safetensors"
    code, _, err = _run(capsys, "train", "--preset", "smoke", "device=cpu", f"teacher.pretrained={missing}",
                        "teacher.entry=mocov2_r18.fmnist", "teacher.arch=seed_resnet18_lowres",
                        "--out", str(tmp_path / "run"))
    line = _one_line_error(err)
    assert code == 2 and f"teacher.pretrained='{missing}'" in line
    assert "seedzoo train mocov2_r18.fmnist" in line and "path of its weights" in line


def test_unknown_model_is_one_line_with_suggestions(capsys):
    code, _, err = _run(capsys, "info", "seed_mbv3_lrge")
    assert code == 2 and "seed_mbv3_large" in _one_line_error(err)


def test_debug_shows_the_traceback_before_or_after_the_command(tmp_path):
    for argv in (["--debug", "plot", str(tmp_path)], ["plot", str(tmp_path), "--debug"]):
        with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
            main(argv)


def test_an_unexpected_error_is_one_line_pointing_at_debug(capsys, monkeypatch):
    import seedzoo.cli.zoo as zoo_cli

    def broken(args):
        raise TypeError("an internal bug")

    monkeypatch.setattr(zoo_cli, "_cmd_list", broken)
    code, _, err = _run(capsys, "list")
    line = _one_line_error(err)
    assert code == 1 and "TypeError: an internal bug" in line and "--debug" in line


def test_error_descriptions_name_the_problem_and_the_fix():
    message, code = describe_error(PermissionError(errno.EACCES, "Permission denied", "/data/x"))
    assert code == 2 and message == "/data/x: permission denied; check its permissions or choose another path"
    message, code = describe_error(SeedzooError("a refusal\nover two lines"))
    assert (message, code) == ("a refusal over two lines", 2)
    message, code = describe_error(RuntimeError("Found no NVIDIA driver on your system. Please check ..."))
    assert code == 2 and "--device cpu" in message and "device=cpu" in message


@pytest.mark.slow
def test_the_console_command_exits_non_zero_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "seedzoo", "plot", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    _one_line_error(done.stderr)


# --- --json [FILE], `-` or no FILE meaning stdout ---------------------------------------------------------

def test_list_json_to_stdout_is_the_matching_records(capsys):
    code, out, _ = _run(capsys, "list", "seed_r34*", "--json", "-")
    records = json.loads(out)
    assert code == 0 and [r["name"] for r in records] == [e.name for e in list_entries("seed_r34*")]
    assert all(r["architecture"] == "seed_resnet34" for r in records)


def test_info_json_to_a_file_and_to_stdout(tmp_path, capsys):
    path = tmp_path / "info.json"
    code, out, _ = _run(capsys, "info", "seed_r18", "--json", str(path))
    assert code == 0 and out == ""
    assert json.loads(path.read_text())["name"] == "seed_r18.swav_r50w2_400ep"
    assert not (tmp_path / "-").exists()
    _, out, _ = _run(capsys, "info", "seed_r18", "--json")
    assert json.loads(out)["name"] == "seed_r18.swav_r50w2_400ep"


@pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")
def test_eval_json_dash_is_clean_json_on_stdout_with_the_table_on_stderr(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a file named '-' would land here
    code, out, err = _run(capsys, "eval", "seed_r18", "--random-init", "--limit", "40", "--input-size", "32",
                          "--device", "cpu", "--quiet", "--json", "-")
    result = json.loads(out)
    assert code == 0 and result["protocol"] == "knn" and result["settings"]["num_train"] == 40
    assert "knn20_top1" in err and not (tmp_path / "-").exists()


def test_offline_error_gives_the_by_hand_route_that_convert_writes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEEDZOO_OFFLINE", "1")
    name = "seed_r18.mocov2_r50_200ep"  # an official release, converted on first use: nothing cached here
    code, _, err = _run(capsys, "download", name, "--cache-dir", str(tmp_path))
    line = _one_line_error(err)
    assert code == 2 and f"seedzoo convert --entry {name} --src resnet18_distill" in line
    assert "pretrained=DIR" in line and "source.json" not in line


def test_a_misspelt_student_arch_suggests_timm_names_too(capsys):
    code, _, err = _run(capsys, "train", "--preset", "smoke", "student.arch=resnet_18", "--print-config")
    assert code == 2 and "'resnet18'" in err and "timm" in err  # a timm architecture, not only seed_*
    code, _, err = _run(capsys, "train", "--preset", "smoke", "student.arch=seed_resnt18", "--print-config")
    assert code == 2 and "'seed_resnet18'" in err


@pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")
def test_eval_progress_bars_have_short_labels_elapsed_time_and_eta(capsys):
    import re

    code, _, err = _run(capsys, "eval", "seed_r18", "--random-init", "--protocol", "linear_fast:epochs=2",
                        "--limit", "40", "--input-size", "32", "--batch-size", "20", "--device", "cpu")
    assert code == 0
    labels = {m.group(1) for m in re.finditer(r"(?:^|\r)([^\r\n:|]+):\s+\d+%", err)}
    assert {"Fashion-MNIST train features", "Fashion-MNIST test features", "linear probe (cached features)"} <= labels
    assert all(len(label) < 40 for label in labels)  # a label, not a cache key
    # elapsed < remaining, as tqdm writes them ('?' until its first refresh, which a fast run may never reach)
    assert re.search(r"\[\d\d:\d\d<(?:\d\d:\d\d|\?)", err)


def test_train_takes_overrides_after_its_options(capsys, tmp_path):
    # argparse alone rejects `key=val` after `--out X`; the printed config shows the overrides took effect.
    code, out, err = _run(capsys, "train", "--preset", "smoke", "--out", str(tmp_path), "epochs=5",
                          "--print-config", "seed=7")
    assert code == 0, err
    assert "epochs: 5" in out and "seed: 7" in out
    with pytest.raises(SystemExit):  # an unknown option is still refused
        main(["train", "--preset", "smoke", "--out", str(tmp_path), "epochs=5", "--no-such-flag"])


# --- a command line that answers at once: no torch, no timm outside the commands that build networks ---

def _heavy_imports(*argv: str) -> set[str]:
    """torch and timm among what `python -X importtime -m seedzoo ARGV` imported (it lists every module)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "seedzoo", *argv], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    return imported & {"torch", "timm"}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["list"], ["info", "seed_mbv3_large"],
                                  ["cards", "--check"]], ids=" ".join)
def test_lookups_import_neither_torch_nor_timm(argv):
    assert _heavy_imports(*argv) == set()


def test_every_command_module_imports_without_torch_or_timm():
    from seedzoo.cli import _COMMAND_MODULES

    code = ("import importlib, sys\n"
            f"for name in {_COMMAND_MODULES!r}:\n"
            "    importlib.import_module('seedzoo.cli.' + name)\n"
            "print(sorted({'torch', 'timm'} & set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]", "a command module imports torch or timm at its top: import it in its func"


def test_importing_timm_after_seedzoo_registers_the_architectures_and_tags():
    code = ("import sys, seedzoo; assert 'timm' not in sys.modules; import timm; "
            "print(timm.is_model('seed_mobilenetv3_large'), ','.join(timm.list_pretrained('seed_*.*')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    registered, tags = run.stdout.split()
    assert registered == "True" and set(tags.split(",")) == {e.timm_name for e in list_entries(pretrained=True)}


def test_an_eval_choice_list_is_checked_when_that_command_runs(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "seed_r18", "--protocol", "knearest:k=5"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "invalid choice: 'knearest:k=5'" in err and "'linear_fast'" in err
