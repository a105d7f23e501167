"""A run's report: PNG plots (loss curves, confusion matrix, per-class F1) and one HTML page
with CHFEN next to its baselines (95 % bootstrap intervals, the paired difference and a verdict
against the best baseline), the dataset it saw and the config it ran with."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LOSS_PNG = "loss.png"
CONFUSION_PNG = "confusion.png"
PER_CLASS_PNG = "per_class_f1.png"
INDEX_HTML = "index.html"


def plot_losses(epochs: Sequence[Mapping[str, Any]], best_epoch: int, path: Path) -> Path:
    """Train and validation loss per epoch, validation weighted F1 on a second axis."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    x = [e["epoch"] for e in epochs]
    ax.plot(x, [e["train_loss"] for e in epochs], label="train loss")
    if any("val_loss" in e for e in epochs):
        ax.plot(x, [e.get("val_loss", np.nan) for e in epochs], label="validation loss")
        f1 = ax.twinx()
        f1.plot(
            x, [e.get("val_weighted_f1", np.nan) for e in epochs], "g:", label="val weighted F1"
        )
        f1.set_ylabel("validation weighted F1")
        f1.set_ylim(0, 1)
        f1.legend(loc="upper right")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label="kept epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("soft-label cross-entropy (class-weighted)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> Path:
    """Rows = annotators' label, columns = prediction; colour = row share, text = count."""
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                colour = "white" if share[i, j] > 0.5 else "black"
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("annotators' label (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_per_class_f1(
    per_model: Mapping[str, Mapping[str, float | None]], labels: Sequence[str], path: Path
) -> Path:
    """Grouped bars: F1 per class for CHFEN and the baselines shown."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / max(len(per_model), 1)
    x = np.arange(len(labels))
    for k, (name, f1) in enumerate(per_model.items()):
        values = [f1.get(label) or 0.0 for label in labels]
        ax.bar(x + (k - (len(per_model) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel("F1 (test)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else html.escape("—" if v is None else str(v))


def _ci(value: Any, ci: Sequence[float] | None, signed: bool = False) -> str:
    """ "0.512 [0.40, 0.63]" (or "+0.05 [-0.08, +0.17]" for a difference)."""
    if not isinstance(value, float):
        return "—"
    if signed:
        text = f"{value:+.3f}"
        return text + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
    return f"{value:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def results_rows(
    metrics: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    comparison: Mapping[str, Any] | None,
) -> list[list[str]]:
    """CHFEN, majority, the best baseline, then every other baseline: accuracy, weighted and
    macro F1 with intervals, and CHFEN − this model in weighted F1 (paired interval)."""
    best = comparison.get("best_baseline") if comparison else None
    versus = comparison.get("versus", {}) if comparison else {}
    order = ["majority"] if "majority" in baselines else []
    if best and best not in order:
        order.append(best)
    order += [k for k in baselines if k not in order]
    rows = [
        [
            "CHFEN",
            _fmt(metrics.get("accuracy")),
            _ci(metrics.get("weighted_f1"), metrics.get("weighted_f1_ci")),
            _ci(metrics.get("macro_f1"), metrics.get("macro_f1_ci")),
            "",
        ]
    ]
    for name in order:
        b = baselines[name]
        diff = versus.get(name, {}).get("weighted_f1", {})
        rows.append(
            [
                name + (" (best baseline)" if name == best else ""),
                _fmt(b.get("accuracy")),
                _ci(b.get("weighted_f1"), b.get("weighted_f1_ci")),
                _ci(b.get("macro_f1"), b.get("macro_f1_ci")),
                _ci(diff.get("difference"), diff.get("ci"), signed=True),
            ]
        )
    return rows


def _verdict_html(comparison: Mapping[str, Any] | None, n_test: Any) -> str:
    if not comparison:
        return (
            f'<p class="verdict">No comparison: no baselines were run or no test videos '
            f"({_fmt(n_test)} test videos).</p>"
        )
    colour = {"above": "#e6f4ea", "below": "#fce8e6"}.get(comparison.get("outcome"), "#fef7e0")
    note = comparison.get("note")
    return (
        f'<p class="verdict" style="background: {colour}">'
        f"<strong>{html.escape(comparison['verdict'])}</strong></p>"
        + (f'<p class="note">{html.escape(note)}</p>' if note else "")
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _selection_html(history: Mapping[str, Any]) -> str:
    """How the number of epochs was chosen, and how much each expert counts in the mix."""
    sel = history.get("selection") or {}
    parts = []
    if sel.get("method") == "grouped_cv":
        curve = sel.get("cv_loss_per_epoch") or []
        shown = ", ".join(f"{v:.3f}" for v in curve[:12]) + (" …" if len(curve) > 12 else "")
        parts.append(
            f"<p>The validation split was too small to stop on, so it joined training and the "
            f"epochs were chosen by {sel.get('folds')}-fold cross-validation over the training "
            f"uploaders (fold sizes {html.escape(str(sel.get('fold_sizes')))}): "
            f"<b>{sel.get('epochs')}</b> epochs, where the network's pooled held-out loss is "
            f"lowest ({_fmt(sel.get('cv_loss'))}; per epoch: {shown}). The model above is the "
            "refit on every training video for that many epochs; the test split was not used."
            "</p>"
        )
        if sel.get("folds_by") == "video" and sel.get("one_uploader", True):
            parts.append(
                "<p><b>Every training video comes from one uploader</b>, so the folds held out "
                "videos of that uploader, not uploaders: they cannot show how the fused network "
                "carries over to other uploaders, and the final prediction is the mixture of "
                "the modality heads only (the network's weight is 0). Label videos of more "
                "uploaders to let the network take part.</p>"
            )
    elif sel.get("method") == "validation":
        parts.append(
            f"<p>Epochs chosen on the validation split: the best validation loss was at epoch "
            f"{sel.get('epochs')}.</p>"
        )
    elif sel.get("method"):
        parts.append(f"<p>Epochs: {html.escape(json.dumps(sel))}.</p>")
    l2 = sel.get("head_l2") or {}
    if l2:
        cells = ", ".join(f"{html.escape(k)} {v:g}" for k, v in l2.items())
        parts.append(
            "<p>L2 strength of each modality head, the candidate with the lowest held-out loss "
            f"(<code>train.head_l2_grid</code>): {cells}. A head pushed to the strongest "
            "penalty found little to learn in its modality.</p>"
        )
    weights = history.get("mixing_weights") or {}
    if weights:
        cells = ", ".join(f"{html.escape(k)} {v:.2f}" for k, v in weights.items())
        parts.append(
            "<p>Weight of each expert in the final prediction (the fused network and one "
            f"logistic-regression head per modality, fit on held-out videos): {cells}. A "
            "modality that carries nothing should weigh little.</p>"
        )
    return "\n".join(parts)


# Said by the run's summary and on the report page when `train.split_by` is video.
SPLIT_BY_VIDEO = (
    "split by video (train.split_by: video): the test videos share their uploaders with the "
    "training videos, so the figures say how the model does on new videos of the same people, "
    "not on new people (speaker-dependent)"
)


def write_report(
    out_dir: Path,
    *,
    run_id: str,
    metrics: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    history: Mapping[str, Any],
    comparison: Mapping[str, Any] | None = None,
    dataset: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Path:
    """Write the plots and index.html into out_dir; returns the HTML path.

    `metrics` and `baselines` may carry `weighted_f1_ci` / `macro_f1_ci`; `comparison` is
    `chfen.train.evaluation.evaluate`'s (its verdict heads the page).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = metrics.get("labels", [])
    plot_losses(history["epochs"], history.get("best_epoch", 0), out_dir / LOSS_PNG)
    if "confusion" in metrics:
        plot_confusion(metrics["confusion"], labels, out_dir / CONFUSION_PNG)
    shown = {"CHFEN": metrics.get("per_class_f1", {})}
    if "majority" in baselines:
        shown["majority"] = baselines["majority"].get("per_class_f1", {})
    singles = {k: v for k, v in baselines.items() if k.startswith("logreg:") and k != "logreg:all"}
    if singles:
        best = max(singles, key=lambda k: singles[k].get("weighted_f1") or 0.0)
        shown[f"best single modality ({best})"] = singles[best].get("per_class_f1", {})
    if labels:
        plot_per_class_f1(shown, labels, out_dir / PER_CLASS_PNG)

    results = _table(
        [
            "model",
            "accuracy",
            "weighted F1 [95 % CI]",
            "macro F1 [95 % CI]",
            "CHFEN − model, weighted F1 [95 % CI]",
        ],
        results_rows(metrics, baselines, comparison),
    )
    resamples = comparison.get("resamples") if comparison else None
    split_rows = [
        [name, dataset["sizes"].get(name), len(dataset["uploaders"].get(name, ()))]
        for name in ("train", "val", "test")
    ]
    epochs = history["epochs"]
    by_video = config.get("split_by") == "video"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>CHFEN run {html.escape(run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
.verdict {{ font-size: 1.15em; padding: 0.6em 0.8em; border-radius: 4px; }}
</style></head><body>
<h1>CHFEN run <code>{html.escape(run_id)}</code></h1>
<h2>Held-out {"videos" if by_video else "uploaders"} (test)</h2>
{_verdict_html(comparison, metrics.get("n"))}
{f"<p><b>{html.escape(SPLIT_BY_VIDEO.capitalize())}.</b></p>" if by_video else ""}
{results}
<p>{_fmt(metrics.get("n"))} test videos. Intervals: percentile bootstrap over the test videos
({_fmt(resamples)} resamples, seeded); a difference is paired (CHFEN and the baseline on the
same resamples) and is noise when its interval holds 0. Videos of one uploader are not
independent, so with few test uploaders the real uncertainty is larger still.
Baselines are fit on the training and validation videos and scored on the same test videos
(a test video without the modality gets the majority label).</p>
<h2>Training</h2>
<p>{len(epochs)} epochs, kept epoch {history.get("best_epoch")}
{"(stopped early)" if history.get("stopped_early") else ""};
{_fmt(history.get("seconds"))} s, {_fmt(history.get("samples_per_s"))} samples/s.</p>
{_selection_html(history)}
<img src="{LOSS_PNG}" alt="loss curves">
<h2>Confusion matrix (test)</h2>
<img src="{CONFUSION_PNG}" alt="confusion matrix">
<h2>F1 per class (test)</h2>
<img src="{PER_CLASS_PNG}" alt="per-class F1">
<h2>Dataset</h2>
{_table(["split", "videos", "uploaders"], split_rows)}
<p>Dropped before the split: {html.escape(json.dumps(dataset.get("dropped", {})))}.
Modality coverage (videos): {html.escape(json.dumps(dataset.get("coverage", {})))}.</p>
<p>Table versions read: {html.escape(json.dumps(dataset.get("versions", {})))}.
Encoders: {html.escape(json.dumps(dataset.get("encoder_keys", {})))}.</p>
<h2>Config</h2>
<pre>{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre>
</body></html>
"""
    path = out_dir / INDEX_HTML
    path.write_text(page, encoding="utf-8")
    return path
