"""Text views of the model registry's answers (pure functions of proto3 JSON; no I/O).

``version_detail``: what ``ktrdrctl models show`` prints: identity, per-split accuracy beside the
majority and persistence baselines, the skill verdict, the confusion matrix, the class
distribution per split, training, and the manifest (seed, versions, device, data digests,
timings). ``compare_table``: key metrics of several versions side by side. Tables come from
:func:`ktrdrctl.render.table`.
"""

from __future__ import annotations

from typing import Any

from ktrdrctl import render

SPLITS = ("train", "validation", "test")
#: Rows of ``models compare``: label, key of ModelVersion.metrics, format.
COMPARE_ROWS = (
    ("test accuracy", "test.accuracy", ".4f"),
    ("test majority baseline", "test.baseline_accuracy", ".4f"),
    ("test persistence baseline", "test.persistence_accuracy", ".4f"),
    ("test macro-F1", "test.macro_f1", ".4f"),
    ("test loss", "test.loss", ".4f"),
    ("test skill mean return", "test.skill.mean_return", "+.4%"),
    ("test skill significant", "test.skill.significant", "yesno"),
    ("test samples", "test.samples", ".0f"),
    ("validation accuracy", "validation.accuracy", ".4f"),
    ("validation majority baseline", "validation.baseline_accuracy", ".4f"),
    ("validation loss", "validation.loss", ".4f"),
    ("train accuracy", "train.accuracy", ".4f"),
    ("epochs trained", "training.epochs_trained", ".0f"),
    ("best epoch", "training.best_epoch", ".0f"),
)


def number(value: Any, spec: str = ".4f") -> str:
    """``value`` formatted with ``spec``; ``-`` when absent; ``yesno`` prints yes/no for 1/0."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if spec == "yesno":
        return "yes" if value else "no"
    return format(value, spec)


def plain(value: Any) -> str:
    """A JSON value as text; numbers that are whole (Struct numbers arrive as doubles) without ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(plain(v) for v in value) + "]"
    return "?" if value is None else str(value)


def short_name(version: dict[str, Any]) -> str:
    """``strategy/3`` (with ``@alias,…`` when aliases point at it)."""
    aliases = version.get("aliases") or []
    suffix = "@" + ",".join(aliases) if aliases else ""
    return f"{version.get('strategy', '')}/{render.as_int(version.get('version'))}{suffix}"


def size_text(size: Any) -> str:
    value = float(render.as_int(size))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def models_table(models: list[dict[str, Any]]) -> str:
    rows = [
        [
            m.get("strategy", ""),
            str(m.get("versionCount", 0)),
            m.get("latestVersion", "").rsplit("/", 1)[-1],
            ", ".join(f"{a}→{v.rsplit('/', 1)[-1]}" for a, v in sorted((m.get("aliases") or {}).items()))
            or "-",
            render.local_time(render.parse_timestamp(m.get("updateTime"))),
        ]
        for m in models
    ]
    return render.table(["STRATEGY", "VERSIONS", "LATEST", "ALIASES", "UPDATED"], rows)


def versions_table(versions: list[dict[str, Any]]) -> str:
    rows = []
    for v in versions:
        metrics = v.get("metrics") or {}
        rows.append(
            [
                str(v.get("version", "")),
                render.local_time(render.parse_timestamp(v.get("createTime"))),
                number(metrics.get("test.accuracy")),
                number(metrics.get("test.baseline_accuracy")),
                number(metrics.get("test.persistence_accuracy")),
                number(metrics.get("test.skill.significant"), "yesno"),
                ", ".join(v.get("aliases") or []) or "-",
                v.get("operation", "") or "-",
            ]
        )
    headers = [
        "VERSION",
        "CREATED",
        "TEST ACC",
        "MAJORITY",
        "PERSISTENCE",
        "SIGNIFICANT",
        "ALIASES",
        "OPERATION",
    ]
    return render.table(headers, rows)


def skill_text(skill: dict[str, Any]) -> str:
    """One line: significant or not, the mean forward return per decision and its interval."""
    if not skill or not skill.get("decisions"):
        return "no decisions to judge"
    verdict = "significant" if skill.get("significant") else "not significant"
    level = number(skill.get("level"), ".0%")
    return (
        f"{verdict}: mean forward return {number(skill.get('mean_return'), '+.4%')} per decision, "
        f"{level} interval [{number(skill.get('ci_low'), '+.4%')}, {number(skill.get('ci_high'), '+.4%')}] "
        f"({render.as_int(skill.get('decisions'))} decisions, {render.as_int(skill.get('horizon_bars'))}-bar horizon)"
    )


def split_table(evaluation: dict[str, Any]) -> list[str]:
    rows = []
    for split in SPLITS:
        r = evaluation.get(split) or {}
        baseline = f"{number(r.get('baseline_accuracy'))} ({r.get('baseline_class', '?')})"
        rows.append(
            [
                split,
                str(render.as_int(r.get("samples"))),
                number(r.get("accuracy")),
                baseline,
                number(r.get("persistence_accuracy")),
                number(r.get("macro_f1")),
                number(r.get("loss")),
            ]
        )
    headers = ["SPLIT", "SAMPLES", "ACCURACY", "MAJORITY BASELINE", "PERSISTENCE", "MACRO-F1", "LOSS"]
    return render.table(headers, rows).splitlines()


def confusion_lines(report: dict[str, Any], classes: list[str]) -> list[str]:
    matrix = report.get("confusion_matrix") or []
    if not classes or not matrix:
        return ["  (none)"]
    rows = [
        [f"true {cls}", *(str(render.as_int(n)) for n in row)]
        for cls, row in zip(classes, matrix, strict=False)
    ]
    return ["  " + line for line in render.table(["", *(f"pred {c}" for c in classes)], rows).splitlines()]


def distribution_lines(evaluation: dict[str, Any], classes: list[str]) -> list[str]:
    rows = []
    for split in SPLITS:
        d = (evaluation.get(split) or {}).get("distribution") or {}
        cells = [
            f"{render.as_int(d.get(f'{c}_count'))} ({number(d.get(f'{c}_pct'), '.1%')})" for c in classes
        ]
        rows.append([split, *cells, str(render.as_int(d.get("total")))])
    return [
        "  " + line
        for line in render.table(["SPLIT", *(c.upper() for c in classes), "TOTAL"], rows).splitlines()
    ]


def manifest_lines(manifest: dict[str, Any]) -> list[str]:
    versions = manifest.get("versions") or {}
    model = manifest.get("model") or {}
    lines = [
        f"  seed {plain(manifest.get('seed'))}, device {manifest.get('device', '?')}, "
        f"created {manifest.get('created_at', '?')}, format {manifest.get('format', '?')}",
        "  versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        f"  model: {model.get('type', '?')} {plain(model.get('hidden_layers', []))} {model.get('activation', '')}, "
        f"dropout {plain(model.get('dropout'))}, {plain(model.get('n_features'))} features, "
        f"{plain(model.get('parameters'))} parameters, symbols {', '.join(model.get('symbols') or [])}",
        "  data:",
    ]
    rows = [
        [
            d.get("symbol", ""),
            d.get("timeframe", ""),
            str(render.as_int(d.get("rows"))),
            f"{d.get('first', '?')} .. {d.get('last', '?')}",
            d.get("sha256", ""),
        ]
        for d in manifest.get("data") or []
    ]
    lines += [
        "    " + line for line in render.table(["SYMBOL", "TF", "ROWS", "BARS", "SHA256"], rows).splitlines()
    ]
    timings = manifest.get("timings") or {}
    if timings:
        lines.append("  timings: " + ", ".join(f"{k} {number(v, '.2f')} s" for k, v in timings.items()))
    return lines


def version_detail(version: dict[str, Any]) -> str:
    """The ``models show`` view of a ``ModelVersion`` (with its ``report``)."""
    report = version.get("report") or {}
    evaluation = report.get("evaluation") or {}
    training = report.get("training") or {}
    verdict_split = "test" if render.as_int((evaluation.get("test") or {}).get("samples")) else "validation"
    features = version.get("featureNames") or []
    classes = version.get("classNames") or []
    lines = [
        f"{version.get('name', '')}"
        + (f"  (aliases: {', '.join(version['aliases'])})" if version.get("aliases") else ""),
        f"created {render.local_time(render.parse_timestamp(version.get('createTime')))}, "
        f"{size_text(version.get('sizeBytes'))}, operation {version.get('operation') or '-'}",
        f"features ({len(features)}): {', '.join(features[:8])}{', …' if len(features) > 8 else ''}",
        "",
        "metrics (accuracy beside the always-majority and persistence baselines):",
        *("  " + line for line in split_table(evaluation)),
        "",
        f"skill ({verdict_split} split): {skill_text((evaluation.get(verdict_split) or {}).get('skill') or {})}",
        "",
        f"confusion matrix ({verdict_split} split; rows: true label, columns: predicted):",
        *confusion_lines(evaluation.get(verdict_split) or {}, classes),
        "",
        "class distribution:",
        *distribution_lines(evaluation, classes),
        "",
    ]
    if training:
        best = training.get("best_epoch")
        stopping = (
            f"best epoch {best}" + (", stopped early" if training.get("stopped_early") else "")
            if best is not None
            else "early stopping off: the last epoch's weights"
        )
        lines.append(
            f"training: {render.as_int(training.get('epochs_trained'))} epochs, {stopping}, "
            f"{number(training.get('samples_per_s'), '.0f')} samples/s"
        )
    lines += ["manifest:", *manifest_lines(version.get("manifest") or {})]
    return "\n".join(lines)


#: Rows of a version's latest backtest (``BacktestResult.metrics`` keys), shown when any has one.
BACKTEST_ROWS = (
    ("backtest total return", "total_return", "+.2%"),
    ("backtest buy-and-hold return", "buy_and_hold_return", "+.2%"),
    ("backtest sharpe", "sharpe", ".2f"),
    ("backtest max drawdown", "max_drawdown", ".2%"),
    ("backtest trades", "trades", ".0f"),
    ("backtest win rate", "win_rate", ".1%"),
    ("backtest permutation p", "uncertainty.permutation_p_value", ".3f"),
    ("backtest classifier accuracy", "classifier.accuracy", ".4f"),
)


def _period(result: dict[str, Any] | None) -> str:
    report = (result or {}).get("report") or {}
    symbols = report.get("symbols") or []
    if not symbols:
        return "-"
    span = report["per_symbol"][symbols[0]]["range"]
    return f"{symbols[0]} {span['first'][:10]}..{span['last'][:10]}"


def compare_table(versions: list[dict[str, Any]], backtests: dict[str, dict[str, Any]] | None = None) -> str:
    """Key metrics (rows) of several versions (columns) side by side; with ``backtests``
    (version name → its latest backtest's ``BacktestResult``), the backtest rows too."""
    rows = [
        [label, *(number((v.get("metrics") or {}).get(key), spec) for v in versions)]
        for label, key, spec in COMPARE_ROWS
    ]
    if backtests:
        found = [backtests.get(v.get("name", "")) for v in versions]
        rows.append(["backtest period", *(_period(r) for r in found)])
        rows += [
            [label, *(number(((r or {}).get("metrics") or {}).get(key), spec) for r in found)]
            for label, key, spec in BACKTEST_ROWS
        ]
    rows.append(["seed", *(plain((v.get("manifest") or {}).get("seed")) for v in versions)])
    rows.append(
        [
            "parameters",
            *(plain(((v.get("manifest") or {}).get("model") or {}).get("parameters")) for v in versions),
        ]
    )
    return render.table(["METRIC", *(short_name(v) for v in versions)], rows)


def deflated_line(versions: list[dict[str, Any]], deflated: dict[str, Any]) -> str:
    """The daemon's deflated Sharpe ratio (``DeflatedSharpe``) of the best backtested version among
    the compared ones as one line, or "" when fewer than two have a backtest (nothing was selected)."""
    trials = render.as_int(deflated.get("trials"))
    if trials < 2:
        return ""
    if deflated.get("unavailableReason"):
        return f"deflated Sharpe ratio: n/a ({deflated['unavailableReason']})"
    best = deflated.get("bestVersion", "")
    name = next((short_name(v) for v in versions if v.get("name") == best), best)
    return (
        f"deflated Sharpe ratio of the best, {name} (Sharpe {number(deflated.get('sharpe', 0.0), '.2f')} among "
        f"{trials} backtested versions; {trials} skill-less trials would reach "
        f"{number(deflated.get('expectedMaxSharpe', 0.0), '.2f')}): "
        f"{number(deflated.get('deflatedSharpeRatio', 0.0), '.3f')} (the probability that its true "
        "Sharpe ratio is above that)"
    )
