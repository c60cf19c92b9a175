"""What a run reports: `metrics.jsonl` (the record), `metrics.csv`, TensorBoard when it is installed,
progress bars on a TTY (plain lines otherwise); the kNN monitor's numbers (`monitor.py`) are records too.

`metrics.jsonl` is the source of truth: one JSON object per line, appended and flushed as the run goes;
on resume it is cut back to the resume point, and the CSV is rewritten from what remains. Every record
holds `step` and `epoch`, the run's own values at the top (`images_per_s`, `data_wait`, `skipped`) and
each student's under `students.<name>` (`loss`, `lr`; `knn20_top1` in a kNN record), however many
students the run trains; `student_records` reads one student's series.
"""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..files import write_atomic

METRICS_FILE = "metrics.jsonl"
CSV_FILE = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of RUN_DIR/metrics.jsonl; a line a kill cut short (or any unreadable one) is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def truncate_metrics(run_dir: str | Path, step: int) -> list[dict[str, Any]]:
    """Keep the records up to `step` (a resume point: what follows is about to run again), in the JSONL
    and the CSV; returns them. With step 0 both files are removed."""
    run_dir = Path(run_dir)
    kept = [r for r in read_metrics(run_dir) if r["step"] <= step]
    for name, text in ((METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept)), (CSV_FILE, _csv_text(kept))):
        target = run_dir / name
        if kept:
            write_atomic(target, text)
        else:
            target.unlink(missing_ok=True)
    return kept


def student_records(records: list[dict[str, Any]], student: str) -> list[dict[str, Any]]:
    """One student's series: its values (`loss`, `lr`, `knn20_top1`, ...) beside each record's `step` and
    `epoch`, from the records that hold any."""
    return [{"step": r["step"], "epoch": r.get("epoch"), **r["students"][student]}
            for r in records if student in (r.get("students") or {})]


def last_knn(records: list[dict[str, Any]], k: int, student: str) -> tuple[int | None, float | None]:
    """(step, top-1) of the newest kNN-`k` record of `student`."""
    key = f"knn{k}_top1"
    for r in reversed(student_records(records, student)):
        if key in r:
            return r["step"], r[key]
    return None, None


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested records as flat columns: {"students": {"a": {"loss": 1}}} -> students.a.loss."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _csv_text(records: list[dict[str, Any]]) -> str:
    rows = [flatten(r) for r in records]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def format_duration(seconds: float) -> str:
    """0:42, 12:05, 1:02:33."""
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class _CsvLog:
    """RUN_DIR/metrics.csv, one row per record; a record with new columns rewrites the file once with the
    wider header (columns appear rarely: at the first kNN, for instance)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []
        if path.is_file():
            with open(path, newline="") as f:
                self.columns = next(csv.reader(f), [])

    def write(self, record: dict[str, Any]) -> None:
        row = flatten(record)
        new = [c for c in row if c not in self.columns]
        if new:
            old: list[dict[str, str]] = []
            if self.path.is_file():
                with open(self.path, newline="") as f:
                    old = list(csv.DictReader(f))
            self.columns += new
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, self.columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(old)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, lineterminator="\n").writerow(row)


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class MetricsLogger:
    """The run's reports, written by the main process only.

    Every record goes to metrics.jsonl and metrics.csv (and to TensorBoard's scalars under
    RUN_DIR/tensorboard when the `tensorboard` package is installed). Progress: on a TTY (or with
    `progress=True`) two bars, the whole run and the current epoch, each with elapsed time and ETA;
    otherwise a line every `log_every` steps with the same figures.
    """

    def __init__(self, run_dir: str | Path, enabled: bool, total_steps: int, start_step: int = 0,
                 log_every: int = 10, steps_per_epoch: int = 0, progress: bool | None = None) -> None:
        self.enabled, self.log_every = enabled, max(1, log_every)
        self.total, self.start, self.per_epoch = total_steps, start_step, max(steps_per_epoch, 0)
        self.epochs = -(-total_steps // self.per_epoch) if self.per_epoch else 0
        self.t0 = time.perf_counter()
        self.file = self.csv = self.tb = self.bar = self.epoch_bar = None
        self._epoch = -1
        if not enabled:
            return
        run_dir = Path(run_dir)
        self.file = open(run_dir / METRICS_FILE, "a")  # noqa: SIM115 (open for the run's duration)
        self.csv = _CsvLog(run_dir / CSV_FILE)
        if tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: events after the resume point, from the interrupted run, are dropped on load.
            self.tb = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=start_step or None)
        if progress if progress is not None else sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)
            if self.per_epoch:
                self.epoch_bar = tqdm(total=self.per_epoch, desc="epoch", unit="step", dynamic_ncols=True,
                                      position=1, leave=False)

    def write(self, record: dict[str, Any]) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.csv is not None:
            self.csv.write(record)
        if self.tb is not None:
            for key, value in flatten(record).items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tb.add_scalar(key.replace(".", "/"), value, record["step"])

    def step(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.write(record)
        step, epoch = record["step"], record["epoch"]
        students = record["students"]
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({f"{name} loss": f"{v['loss']:.4f}" for name, v in students.items()})
            if self.epoch_bar is not None:
                if epoch != self._epoch:  # a new epoch (or the first after a resume, mid-epoch)
                    self._epoch = epoch
                    self.epoch_bar.reset(total=self.per_epoch)
                    self.epoch_bar.update((step - 1) % self.per_epoch)
                    self.epoch_bar.set_description(f"epoch {epoch + 1}/{self.epochs}")
                self.epoch_bar.update(1)
        elif step % self.log_every == 0 or step == self.total:
            elapsed = time.perf_counter() - self.t0
            eta = elapsed / max(step - self.start, 1) * (self.total - step)
            epochs = f"/{self.epochs}" if self.epochs else ""
            each = "; ".join(f"{name} loss {v['loss']:.4f} lr {v['lr']:.4g}" for name, v in students.items())
            print(f"step {step}/{self.total} epoch {epoch + 1}{epochs} {each}; {record['images_per_s']:.1f} img/s "
                  f"data-wait {100 * record['data_wait']:.0f}% "
                  f"[{format_duration(elapsed)} < {format_duration(eta)}]", flush=True)

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        for bar in (self.epoch_bar, self.bar):
            if bar is not None:
                bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.file is not None:
            self.file.close()
