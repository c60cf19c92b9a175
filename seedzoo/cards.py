"""Documents generated from the zoo records: one `model_cards/<entry>.md` per entry, and the zoo table
(`seedzoo list`, the README).

The YAML metadata is built with huggingface_hub's `ModelCardData`/`EvalResult`, so the Hub reads the
licence, datasets and `model-index`; the body states the teacher, recipe, numbers (each marked
reported or measured, with its protocol and source), usage and limits. Output is deterministic (no
dates, stable order) so that `seedzoo cards --check` can compare it with the checked-in files.

Hub conventions, and why:
- `library_name: seedzoo`: the Hub's "use this model" snippet must load what it names, and timm alone
  cannot build seedzoo's architectures (`import seedzoo` registers them); the card's usage section
  gives the timm route with that import.
- `model-index` names datasets by their Hub id. scikit-learn's digits are not a Hub dataset, so their
  numbers stay in the card's results table and out of `model-index` rather than under a made-up id.
- `license: other` always comes with `license_name` and `license_link`.
- A student's `base_model` is its teacher's repository (`seedzoo/<teacher entry>`), the model it was
  distilled from. The Hub has no "distilled" relation, so none is declared.

`render_run_card` writes the card of a training run's export from its `config.json`, so that the
folder `seedzoo train` exports is complete for `conversion/publish.py`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from .files import write_atomic
from .zoo import Metric, ZooEntry, list_entries
from .zoo.architectures import BACKBONE_PARAMS
from .zoo.entries import SEED_CITATION

__all__ = ["GITHUB_REPO", "HF_ORG", "card_data", "check_cards", "default_cards_dir", "render_card", "render_run_card",
           "write_cards"]

# Where the project is published; set once when the repositories exist.
GITHUB_REPO = "seedzoo/seedzoo"
HF_ORG = "seedzoo"
LIBRARY_NAME = "seedzoo"
# Licences the Hub knows by id; anything else is `other` with a `license_name` and a `license_link`.
_HUB_LICENSES = {"cc-by-nc-4.0", "apache-2.0", "mit", "cc-by-4.0", "bsd-3-clause"}
# Where the SEED authors published their files (no licence file there): what an unstated licence links to.
SEED_CODE_URL = "https://github.com/jacobswan1/SEED"
_PROTOCOLS = {
    "linear_seed": "linear probe, SEED protocol (frozen backbone, SGD lr 30, 100 epochs, center crop 224)",
    "semi_finetune": "semi-supervised fine-tuning on the SimCLR label subsets",
    "knn": "weighted kNN on L2-normalised features (k=20/200, T=0.07)",
    "linear_fast": "linear probe on cached features: standardised, SGD lr 0.1, SEED's 100-epoch step schedule, "
                   "no augmentation",
    "linear_fast:fraction=0.01": "the same probe trained on a class-balanced 1% of the labels (seed 0)",
    "knn_monitor": "the trainer's kNN monitor: weighted kNN (k of monitor.knn_k) on subsets of the training "
                   "source's labelled images (monitor.knn_train / monitor.knn_test)",
}
# Display names of seedzoo's datasets -> their Hugging Face Hub ids (datasets without one are left out
# of `model-index`).
_HUB_DATASETS = {"ImageNet-1k": "ILSVRC/imagenet-1k", "Fashion-MNIST": "zalando-datasets/fashion_mnist"}
_TRAINING_SOURCES = {"fashion_mnist": "Fashion-MNIST"}  # `data.source` of a run -> display name


def default_cards_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "model_cards"


class _LicenseFields(TypedDict, total=False):
    license: str
    license_name: str
    license_link: str


def _license_fields(license: str) -> _LicenseFields:
    if license in _HUB_LICENSES:
        return {"license": license}
    if license.startswith("unknown"):  # the SEED release states none: link to where that can be checked
        return {"license": "other", "license_name": "seed-release-unstated", "license_link": SEED_CODE_URL}
    return {"license": "other", "license_name": license.lower().replace(" ", "-"),
            "license_link": f"https://github.com/{GITHUB_REPO}"}


def _hub_dataset(display: str) -> tuple[str, str | None] | None:
    """(Hub id, config) of a dataset's display name, e.g. "ImageNet-1k 1% labels" -> (ILSVRC/imagenet-1k,
    1%-labels); None for a dataset the Hub does not hold."""
    for name, hub_id in _HUB_DATASETS.items():
        if display == name or display.startswith(name + " "):
            rest = display[len(name):].strip()
            return hub_id, rest.replace(" ", "-") or None
    return None


def _teacher_repo(entry_name: str) -> str:
    """The Hub repository a zoo entry is published to (`conversion/publish.py`'s default)."""
    return f"{HF_ORG}/{entry_name}"


_PAPERS = {"SEED": "https://arxiv.org/abs/2101.04731", "MoCo-v2": "https://arxiv.org/abs/2003.04297",
           "SwAV": "https://arxiv.org/abs/2006.09882", "SimCLR": "https://arxiv.org/abs/2002.05709"}


def _source_url(m: Metric) -> str | None:
    if m.kind == "measured":
        return f"https://github.com/{GITHUB_REPO}"
    return next((url for name, url in _PAPERS.items() if m.source.startswith(name)), None)


def _metric_name(m: Metric) -> str:
    return f"{m.metric} ({m.protocol}, {m.kind})"


def _eval_results(metrics: Iterable[Metric]) -> list:
    """`model-index` rows of the metrics measured on Hub datasets."""
    from huggingface_hub import EvalResult

    results = []
    for m in metrics:
        hub = _hub_dataset(m.dataset)
        if hub is None:
            continue
        results.append(EvalResult(task_type="image-classification", dataset_type=hub[0], dataset_name=m.dataset,
                                  dataset_config=hub[1], metric_type="accuracy", metric_name=_metric_name(m),
                                  metric_value=m.value, source_name=m.source if _source_url(m) else None,
                                  source_url=_source_url(m), verified=False))
    return results


def card_data(entry: ZooEntry):
    """`ModelCardData` of an entry: licence, tags, datasets, model-index and seedzoo's own lineage key."""
    from huggingface_hub import ModelCardData

    lineage = entry.lineage_record()
    tags = ["image-feature-extraction", "self-supervised", "seed", entry.role, entry.arch_name]
    if entry.role == "student":
        tags.append("knowledge-distillation")
    train_data = _hub_dataset(entry.train_data)
    return ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag="image-feature-extraction",
        tags=tags,
        datasets=[train_data[0]] if train_data else None,
        base_model=_teacher_repo(entry.teacher.entry) if entry.teacher is not None and entry.teacher.entry else None,
        model_name=entry.name,
        eval_results=_eval_results(entry.metrics) or None,
        seedzoo_lineage=lineage,
        **_license_fields(entry.license),
    )


def _usage(entry: ZooEntry) -> str:
    w = entry.weights
    hub_id = f"{w.hf_repo}@{w.revision}" if w.hf_repo and w.revision else ""
    pretrained = "True" if entry.has_file else '"path/to/your/checkpoint"'
    lines = ["## Usage", "", "```python", "import seedzoo", "",
             f'model = seedzoo.create_model("{entry.name}", pretrained={pretrained}, num_classes=0)',
             *([(f'head = seedzoo.load_projection_head("{entry.name}", pretrained={pretrained})'
                f"  # projection head, {entry.head.out_dim}-d output")] if entry.weights.with_head else []),
             f'transform = seedzoo.get_transform("{entry.name}")',
             "```", "", "torch.hub (entry names use `__` for the dot):", "", "```python", "import torch", "",
             f'model = torch.hub.load("{GITHUB_REPO}", "{entry.name.replace(".", "__")}", pretrained={pretrained})',
             "```", ""]
    if hub_id:
        lines += [("timm (after `import seedzoo`, which registers the architecture; timm does not verify the "
                  "sha256, seedzoo does):"), "", "```python", "import seedzoo, timm", "",
                  f'model = timm.create_model("hf-hub:{hub_id}", pretrained=True, num_classes=0)', "```", ""]
    else:
        lines += [(f"timm: `timm.create_model(\"{entry.architecture}\")` builds the architecture after "
                  "`import seedzoo`; `hf-hub:` loading works once the weights are published on the Hub."), ""]
    if not entry.has_file:
        lines += [("No weights file exists for this entry yet: it is a reproduction recipe "
                  f"(`seedzoo train {entry.name}`)."), ""]
    return "\n".join(lines)


def _details(entry: ZooEntry) -> str:
    d, h = entry.data, entry.head
    head = h.describe()
    lines = ["## Model", "",
             (f"- Architecture: `{entry.architecture}` (registered with timm by seedzoo); "
             f"representation: {h.in_dim}-d"),
             f"- Projection head: {head}",
             (f"- Input: {d.input_size[1]}x{d.input_size[2]}, resize {round(d.input_size[1] / d.crop_pct)} + center "
             f"crop, {d.interpolation}; mean {list(d.normalization.mean)}, std {list(d.normalization.std)} "
             f"({d.normalization.note})"), ""]
    lines += ["## Teacher and recipe", ""]
    if entry.teacher is not None:
        lines.append(f"- Teacher: {entry.teacher.describe()}")
    lines.append(f"- Trained by: {entry.trained_by.method}"
                 + (f" {entry.trained_by.arch}" if entry.trained_by.arch else "")
                 + f", {entry.trained_by.epochs} epochs")
    r = entry.recipe
    if r is not None:
        lines.append(f"- Recipe: `{r.config}`: {r.settings()}")
    lines.append("")
    return "\n".join(lines)


def _results(entry: ZooEntry) -> str:
    lines = ["## Results", ""]
    if not entry.metrics:
        return "\n".join(lines + ["No number has been reported or measured for this entry.", ""])
    seeds = max(len(m.per_seed) for m in entry.metrics)
    spread = f" over {seeds} seeds: mean ± std (each seed) |" if seeds else ""
    lines += [f"| metric | dataset | protocol | value | kind | source |{spread}",
              "|---|---|---|---|---|---|" + ("---|" if seeds else "")]
    for m in entry.metrics:
        source = f"`{m.source}`" if m.kind == "measured" else m.source
        note = f" ({m.note})" if m.note else ""
        over = ""
        if seeds:
            over = (f" {m.seed_mean:.2f} ± {m.seed_std:.2f} ({', '.join(f'{v:g}' for v in m.per_seed)}) |"
                    if m.seed_std is not None else " trained once |")
        lines.append(f"| {m.metric} | {m.dataset} | {m.protocol} | {m.value:g} | {m.kind} | {source}{note} |{over}")
    lines.append("")
    if seeds:
        lines += [f"`value` is measured on the file that ships (the first seed's); the last column is the same "
                  f"recipe trained with each of {seeds} seeds.", ""]
    for p in sorted({m.protocol for m in entry.metrics}):
        lines.append(f"- `{p}`: {_PROTOCOLS.get(p, p)}")
    lines += ["", ("Reported numbers come from the papers named; measured numbers were produced by seedzoo "
              "with the command shown, and `seedzoo verify NAME --data ROOT` re-measures them.")]
    off_hub = sorted({m.dataset for m in entry.metrics if _hub_dataset(m.dataset) is None})
    if off_hub:
        lines.append(f"{', '.join(off_hub)} {'is' if len(off_hub) == 1 else 'are'} not on the Hugging Face Hub, "
                     "so these numbers are in this table but not in the card's `model-index` metadata.")
    lines.append("")
    return "\n".join(lines)


def _weights(entry: ZooEntry) -> str:
    w, lines = entry.weights, ["## Weights", ""]
    if w.hf_repo:
        lines.append(f"- Hugging Face Hub: `{w.hf_repo}` at commit `{w.revision or 'unpinned'}`")
    for url in w.mirrors:
        lines.append(f"- Mirror: {url}")
    if w.embedded:
        lines.append(f"- Shipped inside the package: `seedzoo/weights/embedded/{w.embedded}` (fp16; no network needed)")
    if w.sha256:
        lines.append(f"- `{w.filename}` sha256: `{w.sha256}`")
    if entry.source is not None:
        lines.append(f"- Official release ({entry.source.layout} layout): `{entry.source.filename}`"
                     + (f", sha256 `{entry.source.sha256}`" if entry.source.sha256 else
                        " (no checksum published; fixed by the first conversion)"))
    if len(lines) == 2:
        lines.append("- None yet (recipe only).")
    lines += ["", ("Every load verifies the sha256 of the safetensors file; official pickles are read only by the "
              "converter, with `weights_only=True`."), ""]
    return "\n".join(lines)


def _limits(entry: ZooEntry) -> str:
    lines = ["## Intended use and limitations", "",
             "- A label-free backbone for linear probing, kNN, fine-tuning or detection on downstream tasks.",
             f"- Trained on {entry.train_data} "
             + ("with its labels" if entry.role == "reference" else "without labels")
             + "; it inherits that dataset's biases and is not meant for decisions about people.",
             f"- Licence: {entry.license or 'not stated'}."
             + (" Non-commercial use only." if entry.license == "cc-by-nc-4.0" else "")]
    lines += [f"- {n}" for n in entry.notes]
    return "\n".join(lines + [""])


def render_card(entry: ZooEntry) -> str:
    """The full model card (YAML front matter + markdown) of an entry."""
    data = card_data(entry)
    body = "\n".join([f"# {entry.name}", "", entry.description + ".", "", _usage(entry), _details(entry),
                      _results(entry), _weights(entry), _limits(entry),
                      "## Citation", "", "```bibtex", entry.citation.strip(), "```", ""])
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


# --- the card of a training run's export ------------------------------------------------------

def _registered(name: str | None) -> ZooEntry | None:
    from .zoo import UnknownModelError, get_entry

    try:
        return get_entry(name) if name else None
    except UnknownModelError:
        return None


def _run_license(entry: ZooEntry | None, teacher: ZooEntry | None) -> tuple[str, str]:
    """(licence, why): a student inherits its teacher's licence (as the registry's students do); a run
    reproducing an entry takes the entry's; otherwise seedzoo's own weights' licence."""
    if teacher is not None and teacher.license:
        return teacher.license, f"inherited from the teacher `{teacher.name}`"
    if entry is not None and entry.license:
        return entry.license, f"the licence of the zoo entry `{entry.name}`"
    return "apache-2.0", "seedzoo's default for the weights it trains: set your own before publishing if it differs"


def _run_base_model(teacher: Mapping[str, Any], entry: ZooEntry | None) -> str | None:
    """The Hub repository of a run's teacher: its zoo entry's, or the `hf-hub:` name it was loaded from."""
    if entry is not None:
        return _teacher_repo(entry.name)
    pretrained = str(teacher.get("pretrained", ""))
    if pretrained.startswith(("hf-hub:", "hf_hub:")):
        return pretrained.split(":", 1)[1].split("@", 1)[0]
    return None


def render_run_card(config: Mapping[str, Any]) -> str:
    """The model card of a training run's export, from the `config.json` it writes beside the weights.

    It says what the run is (method, architecture, teacher, epochs and steps, recipe hash and command)
    and gives only the numbers the run itself measured; a run that follows a zoo entry's recipe names
    the entry without claiming its numbers.
    """
    from huggingface_hub import ModelCardData

    block = config.get("seedzoo") or {}
    architecture = config["architecture"]
    recipe = block.get("recipe") or {}
    settings = recipe.get("config") or {}
    trained = block.get("trained_by") or {}
    teacher = block.get("teacher") or {}
    method = trained.get("method", "")
    name = block.get("entry") or settings.get("name") or architecture
    entry, teacher_entry = _registered(name), _registered(teacher.get("entry"))
    source = (settings.get("data") or {}).get("source", "")
    train_data = _TRAINING_SOURCES.get(source, source)
    metrics = [Metric(m["value"], m["metric"], _TRAINING_SOURCES.get(m["dataset"], m["dataset"]), m["protocol"],
                      "measured", m.get("source", recipe.get("command", ""))) for m in block.get("measured") or ()]
    license, license_why = _run_license(entry, teacher_entry)
    role = "student" if teacher else "teacher"
    tags = ["image-feature-extraction", "self-supervised", "seed" if teacher else "moco", role, architecture]
    if teacher:
        tags.append("knowledge-distillation")
    hub_data = _hub_dataset(train_data)
    lineage = {"role": role, "architecture": architecture, "trained_by": dict(trained)}
    if teacher:
        lineage["teacher"] = dict(teacher)
    data = ModelCardData(
        library_name=LIBRARY_NAME, pipeline_tag="image-feature-extraction", tags=tags,
        datasets=[hub_data[0]] if hub_data else None,
        base_model=_run_base_model(teacher, teacher_entry),
        model_name=name, eval_results=_eval_results(metrics) or None, seedzoo_lineage=lineage,
        **_license_fields(license))

    steps = trained.get("steps")
    what = (f"`{architecture}` trained by `seedzoo train` with {method or 'an unrecorded method'} on "
            f"{train_data or 'an unrecorded dataset'}, {trained.get('epochs', '?')} epochs"
            + (f" ({steps} steps)" if steps is not None else ""))
    if teacher:
        what += (f", distilled from a `{teacher.get('arch', '?')}` teacher"
                 + (f" (zoo entry `{teacher_entry.name}`)" if teacher_entry is not None else "")
                 + f" with weights: {teacher.get('pretrained', 'not recorded')}")
    lines = [f"# {name}", "", what + ".", ""]
    if entry is not None:
        lines += [(f"The run follows the recipe of the zoo entry `{entry.name}`; that entry's numbers belong to "
                  "its own weights, not to this run's."), ""]
    pcfg = config.get("pretrained_cfg") or {}
    size = (pcfg.get("input_size") or [3, "?", "?"])[1:]
    lines += ["## Usage", "", "```python", "import seedzoo", "",
              f'model = seedzoo.create_model("{architecture}", pretrained="path/to/this/folder", num_classes=0)',
              "```", "",
              ("Once published: `seedzoo.create_model(\"hf-hub:ORG/REPO\", pretrained=True, num_classes=0)`, which "
              "checks the sha256 recorded in `config.json`; timm reads the folder too after `import seedzoo`."), "",
              "## Model", "", f"- Architecture: `{architecture}`; representation: {config.get('num_features', '?')}-d",
              (f"- Input: {size[0]}x{size[1]}, crop_pct {pcfg.get('crop_pct')}, {pcfg.get('interpolation')}; "
              f"mean {pcfg.get('mean')}, std {pcfg.get('std')}"), "",
              "## Recipe", "", (f"- Recipe hash `{recipe.get('config_hash', '?')}` (the full configuration is in "
              "`config.json`, `seedzoo.recipe.config`)")]
    if recipe.get("command"):
        lines.append(f"- Command: `{recipe['command']}`")
    distill, data_cfg = settings.get("distill") or {}, settings.get("data") or {}
    if teacher and distill:
        lines.append(f"- SEED: tau_S {distill.get('student_temperature')}, tau_T "
                     f"{teacher.get('teacher_temperature', distill.get('teacher_temperature'))}, "
                     f"queue {distill.get('queue_size')}")
    if settings:
        lines.append(f"- Global batch {settings.get('global_batch')}, base lr "
                     f"{(settings.get('optim') or {}).get('base_lr')}, images at {data_cfg.get('image_size')} px, "
                     f"{data_cfg.get('augmentation')} augmentation")
    lines += ["", "## Results", ""]
    if metrics:
        lines += ["| metric | dataset | protocol | value | kind |", "|---|---|---|---|---|"]
        lines += [f"| {m.metric} | {m.dataset} | {m.protocol} | {m.value:g} | measured |" for m in metrics]
        lines += ["", *(f"- `{p}`: {_PROTOCOLS.get(p, p)}" for p in sorted({m.protocol for m in metrics}))]
    else:
        lines.append("The run recorded no number; `seedzoo eval path/to/this/folder` measures one.")
    lines += ["", "## Weights", "", (f"- `{block.get('filename', 'model.safetensors')}` sha256: "
              f"`{block.get('sha256', '?')}`"), "", "## Intended use and limitations", "",
              ("- A label-free backbone for linear probing, kNN or fine-tuning; it inherits its training data's "
              "biases and is not meant for decisions about people.")]
    if teacher.get("pretrained") == "random init":
        lines.append("- The teacher was a random-init network: this run checks the training mechanics, not "
                     "accuracy.")
    lines += [f"- Licence: {license} ({license_why}).", "", "## Citation", "", "```bibtex", SEED_CITATION.strip(),
              "```", ""]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)


def write_cards(out_dir: str | Path | None = None, entries: list[ZooEntry] | None = None) -> list[Path]:
    """Write one card per entry; returns the paths written."""
    out = Path(out_dir) if out_dir is not None else default_cards_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in entries if entries is not None else list_entries():
        path = out / f"{entry.name}.md"
        write_atomic(path, render_card(entry))
        paths.append(path)
    return paths


def check_cards(cards_dir: str | Path | None = None, entries: list[ZooEntry] | None = None) -> list[str]:
    """Names of the cards that are missing, out of date, or of no entry (empty when all are in sync)."""
    folder = Path(cards_dir) if cards_dir is not None else default_cards_dir()
    entries = entries if entries is not None else list_entries()
    stale = []
    for entry in entries:
        path = folder / f"{entry.name}.md"
        if not path.is_file() or path.read_text(encoding="utf-8") != render_card(entry):
            stale.append(entry.name)
    known = {e.name for e in entries}
    stale += sorted(p.stem for p in folder.glob("*.md") if p.stem not in known)
    return stale


# --- the zoo table (`seedzoo list`, the README) ----------------------------------------------

_COLUMNS = ("name", "architecture", "teacher", "params (M)", "linear top-1 (%)", "weights")


def param_count(architecture: str) -> int | None:
    """Parameters of the backbone (`num_classes=0`), from the registry's record; None if not recorded."""
    return BACKBONE_PARAMS.get(architecture)


def weights_available(entry: ZooEntry) -> str:
    """Where the entry's weights come from: hub, embedded, official, or `recipe only`."""
    kinds = []
    if entry.weights.published and entry.weights.hf_repo:
        kinds.append("hub")
    if entry.weights.published and entry.weights.mirrors and not entry.weights.hf_repo:
        kinds.append("mirror")
    if entry.weights.embedded:
        kinds.append("embedded")
    if entry.source is not None:
        kinds.append("official")
    return "+".join(kinds) or "recipe only"


def _row(entry: ZooEntry) -> tuple[str, ...]:
    teacher = ""
    if entry.teacher is not None:
        teacher = entry.teacher.entry or f"{entry.teacher.method} {entry.teacher.arch}"
    elif entry.role == "teacher":
        teacher = f"({entry.trained_by.method} teacher)"
    params = param_count(entry.architecture)
    top1 = entry.metric("top1")
    acc = "" if top1 is None else f"{top1.value:.1f} ({top1.dataset}, {top1.kind})"
    return (entry.name, entry.architecture, teacher, "?" if params is None else f"{params / 1e6:.1f}", acc,
            weights_available(entry))


def zoo_table(entries: Iterable[ZooEntry], markdown: bool = False,
              on_machine: Mapping[str, str] | None = None) -> str:
    """A table of entries: name, architecture, teacher, backbone parameters, linear top-1 (with its
    dataset, reported or measured), and where the weights come from. `markdown=True` renders it for the
    README. `on_machine` (entry name -> `embedded`, `cached` or ``) adds a column saying which weights are
    already on this machine (`seedzoo list`)."""
    entries = list(entries)
    columns: tuple[str, ...] = _COLUMNS
    rows: list[tuple[str, ...]] = [_row(e) for e in entries]
    if on_machine is not None:
        columns = (*columns, "on this machine")
        rows = [(*r, on_machine.get(e.name, "") or "-") for r, e in zip(rows, entries)]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(r)) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    right = {3, 4}  # numbers line up on the right

    def fmt(cells: tuple[str, ...]) -> str:
        cols = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(cols).rstrip()
    return "\n".join([fmt(columns), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in rows)])


README_TABLE_MARKERS = ("<!-- zoo-table:start -->", "<!-- zoo-table:end -->")


def default_readme() -> Path:
    return default_cards_dir().parent / "README.md"


def readme_with_table(text: str, entries: list[ZooEntry] | None = None) -> str:
    """The README text with the zoo table between its markers replaced by the registry's."""
    start, end = README_TABLE_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"the README has no zoo table markers ({start} ... {end})")
    head, rest = text.split(start, 1)
    table = zoo_table(entries if entries is not None else list_entries(), markdown=True)
    return f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"
