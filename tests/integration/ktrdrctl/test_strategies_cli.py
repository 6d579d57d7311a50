"""``ktrdrctl strategies validate|show`` as users run them: ``python -m ktrdrctl`` against a real ktrdrd.

Expected positions come from text the tests put into files; expected features and requirements
from the strategy library in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ktrdr.research.features import feature_spec
from ktrdr.strategy import data_requirements, load_strategy_file
from ktrdr.strategy.reader import MAX_ISSUES
from ktrdrctl.files import MAX_FILE_BYTES
from tests.support.paths import REPO

STRATEGY_DIR = REPO / "strategies"
NEURO = "strategies/neuro_mean_reversion.yaml"


def ktrdrctl(runtime_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    return subprocess.run(
        [sys.executable, "-m", "ktrdrctl", "--runtime-dir", str(runtime_dir), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_files(daemon, tmp_path: Path) -> None:
    files = sorted(str(p.relative_to(REPO)) for p in STRATEGY_DIR.glob("*.yaml"))
    ok = ktrdrctl(daemon.runtime_dir, "strategies", "validate", *files)
    assert ok.returncode == 0, ok.stderr
    summaries = [line for line in ok.stdout.splitlines() if ": valid (" in line]
    assert [line.split(": valid")[0] for line in summaries] == files
    neuro_warnings = load_strategy_file(REPO / NEURO).warnings
    for w in neuro_warnings:
        assert f"{NEURO}:{w.line}:{w.column}: warning: {w.path}: {w.message}" in ok.stdout
    quiet = ktrdrctl(daemon.runtime_dir, "strategies", "validate", "-q", *files)
    assert quiet.returncode == 0 and quiet.stdout == ""

    good_text = (STRATEGY_DIR / "rsi_bbands_single.yaml").read_text().rstrip("\n") + "\n"
    lines = good_text.count("\n")
    (tmp_path / "good.yaml").write_text(good_text)
    (tmp_path / "unknown.yaml").write_text(good_text + "indicatorz: []\n")
    (tmp_path / "syntax.yaml").write_text(good_text + "extra: [1, 2\n")
    (tmp_path / "empty.yaml").write_text("")
    names = [str(tmp_path / n) for n in ("good.yaml", "unknown.yaml", "syntax.yaml", "empty.yaml")]
    bad = ktrdrctl(daemon.runtime_dir, "strategies", "validate", *names)
    assert bad.returncode == 1, bad.stderr
    out = bad.stdout.splitlines()
    assert f"{names[0]}: valid (0 warnings)" in out
    assert any(
        line.startswith(
            f"{names[1]}:{lines + 1}:1: indicatorz: unknown key 'indicatorz' (did you mean 'indicators'?)"
        )
        for line in out
    )
    assert any(line.startswith(f"{names[2]}:{lines + 2}:1: YAML syntax error") for line in out)
    assert f"{names[3]}:1:1: the document is empty" in out
    assert [line for line in out if ": invalid (" in line] == [
        f"{names[1]}: invalid (1 error)",
        f"{names[2]}: invalid (1 error)",
        f"{names[3]}: invalid (1 error)",
    ]
    assert "3 of 4 strategy files invalid" in bad.stderr

    as_json = ktrdrctl(daemon.runtime_dir, "strategies", "validate", "--json", *names[:2])
    documents = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert as_json.returncode == 1 and [d["valid"] for d in documents] == [True, False]
    assert documents[1]["issues"][0]["suggestion"] == "indicators"

    missing = ktrdrctl(daemon.runtime_dir, "strategies", "validate", names[0], str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and f"cannot read {tmp_path / 'nope.yaml'}" in missing.stderr
    assert missing.stdout == ""  # nothing was validated


def test_show(daemon, tmp_path: Path) -> None:
    loaded = load_strategy_file(REPO / NEURO)
    features = feature_spec(loaded.strategy).names
    people = ktrdrctl(
        daemon.runtime_dir, "strategies", "show", NEURO, "--start", "2024-01-01", "--end", "2025-01-01"
    )
    assert people.returncode == 0, people.stderr
    text = people.stdout
    assert text.startswith("name: neuro_mean_reversion\n")
    assert "  symbols: [AAPL, MSFT, GOOGL]" in text and "    period: 14" in text
    assert f"warnings ({len(loaded.warnings)}):" in text
    assert "features (27, in model input order):" in text
    assert all(name in text for name in features)
    assert "data requirements for 2024-01-01T00:00:00Z .. 2025-01-01T00:00:00Z" in text
    for r in data_requirements(loaded.strategy, 1704067200 * 10**9, 1735689600 * 10**9):
        row = r.to_dict()
        assert any(
            line.split() == [r.symbol, r.timeframe, row["start"], row["end"], str(r.warmup_bars)]
            for line in text.splitlines()
        ), row

    as_json = ktrdrctl(
        daemon.runtime_dir, "strategies", "show", "--json", NEURO, "--start", "2024-01-01T00:00:00"
    )
    document = json.loads(as_json.stdout)
    assert document["featureNames"] == features
    assert document["period"] == {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-12-31T00:00:00Z"}
    assert len(document["dataRequirements"]) == 9

    (tmp_path / "bad.yaml").write_text(
        (REPO / NEURO).read_text().replace("period: 14", "perod: 14", 1) + "indicatorz: []\n"
    )
    bad = ktrdrctl(daemon.runtime_dir, "strategies", "show", str(tmp_path / "bad.yaml"))
    errors = [line for line in bad.stderr.splitlines() if line.startswith(f"{tmp_path / 'bad.yaml'}:")]
    assert bad.returncode == 1 and bad.stdout == ""
    assert len(errors) == 2 and "did you mean 'period'" in errors[0] and "indicatorz" in errors[1]
    assert "invalid strategy; nothing to show" in bad.stderr

    usage = ktrdrctl(daemon.runtime_dir, "strategies", "show", NEURO, "--start", "Jan 1")
    assert usage.returncode == 2 and "--start" in usage.stderr


def test_unreachable_daemon_exits_3(tmp_path: Path) -> None:
    proc = ktrdrctl(tmp_path, "strategies", "validate", NEURO)
    assert proc.returncode == 3 and "start it with" in proc.stderr


def unknown_key_flood(path: Path, keys: int) -> Path:
    """A valid strategy followed by ``keys`` unknown top-level keys (~27 bytes each)."""
    good = (STRATEGY_DIR / "rsi_bbands_single.yaml").read_text().rstrip("\n") + "\n"
    path.write_text(good + "".join(f"unknown_key_{n:07d}: {n}\n" for n in range(keys)))
    return path


def test_a_flood_of_unknown_keys_exits_1_with_bounded_output(daemon, tmp_path: Path) -> None:
    keys = 60_000
    big = str(unknown_key_flood(tmp_path / "big.yaml", keys))
    assert 1_500_000 < Path(big).stat().st_size <= MAX_FILE_BYTES
    proc = ktrdrctl(daemon.runtime_dir, "strategies", "validate", big)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == MAX_ISSUES + 2 and all(line.startswith(f"{big}:") for line in out)
    assert out[-2:] == [f"{big}: … and {keys - MAX_ISSUES} more issues", f"{big}: invalid ({keys} errors)"]
    quiet = ktrdrctl(daemon.runtime_dir, "strategies", "validate", "-q", big)
    assert quiet.returncode == 1 and quiet.stdout.splitlines()[-1] == out[-2]

    shown = ktrdrctl(daemon.runtime_dir, "strategies", "show", big)
    assert shown.returncode == 1 and shown.stdout == ""
    errors = [line for line in shown.stderr.splitlines() if line.startswith(f"{big}:")]
    assert len(errors) == MAX_ISSUES and f"... and {keys - MAX_ISSUES} more errors" in shown.stderr


def test_validate_refuses_what_is_not_a_regular_file_of_bounded_size(daemon, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # nobody writes: opening it for reading in the usual way would block forever
    over = tmp_path / "over.yaml"
    with open(over, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    expected = {
        "/dev/zero": "cannot read /dev/zero: it is a character device, not a regular file",
        str(fifo): f"cannot read {fifo}: it is a FIFO (named pipe), not a regular file",
        str(tmp_path): f"cannot read {tmp_path}: it is a directory, not a regular file",
        str(over): f"cannot read {over}: larger than the limit of {MAX_FILE_BYTES:,} bytes",
    }
    for name, message in expected.items():
        proc = ktrdrctl(daemon.runtime_dir, "strategies", "validate", name)
        assert proc.returncode == 2 and proc.stdout == "", (name, proc.stderr)
        assert message in proc.stderr
    proc = ktrdrctl(daemon.runtime_dir, "strategies", "show", str(fifo))
    assert proc.returncode == 2 and expected[str(fifo)] in proc.stderr


def test_non_ascii_text_is_sent_as_is_and_a_request_over_the_frame_cap_exits_2(
    daemon, tmp_path: Path
) -> None:
    # 700,000 non-ASCII characters: escaped as \uXXXX they would not fit the 4 MiB frame cap.
    wide = tmp_path / "wide.yaml"
    wide.write_text("name: x\n# " + "é€" * 350_000 + "\n", encoding="utf-8")  # 1.75 MB
    assert wide.stat().st_size <= MAX_FILE_BYTES
    proc = ktrdrctl(daemon.runtime_dir, "strategies", "validate", str(wide))
    assert proc.returncode == 1, proc.stderr  # answered (invalid strategy), not a crash
    assert "Traceback" not in proc.stderr and f"{wide}: invalid" in proc.stdout

    # Under the file cap, but every byte needs a JSON escape: the request cannot fit a frame.
    quotes = tmp_path / "quotes.yaml"
    quotes.write_text("# " + '"' * (MAX_FILE_BYTES - 4) + "\n")
    for command in ("validate", "show"):
        proc = ktrdrctl(daemon.runtime_dir, "strategies", command, str(quotes))
        assert proc.returncode == 2, proc.stderr
        assert "frame cap" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_and_show_with_set_overrides(daemon, tmp_path: Path) -> None:
    text = (REPO / NEURO).read_text()
    lines = text.splitlines()
    period_line = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("period: 14"))

    shown = ktrdrctl(
        daemon.runtime_dir, "strategies", "show", NEURO, "--set", "indicators[rsi].period=21", "--json"
    )
    assert shown.returncode == 0, shown.stderr
    rsi = next(i for i in json.loads(shown.stdout)["normalized"]["indicators"] if i["id"] == "rsi")
    assert rsi["params"]["period"] == 21

    wrong = ktrdrctl(daemon.runtime_dir, "strategies", "validate", NEURO, "--set", "indicators[0].period=abc")
    assert wrong.returncode == 1
    assert (
        f"{NEURO}:{period_line}:" in wrong.stdout and "(from --set indicators[0].period=abc)" in wrong.stdout
    )

    missing = ktrdrctl(daemon.runtime_dir, "strategies", "validate", NEURO, "--set", "indicators[9].period=3")
    assert missing.returncode == 1 and "no item 9 in indicators" in missing.stdout

    malformed = ktrdrctl(daemon.runtime_dir, "strategies", "validate", NEURO, "--set", "no-equals-sign")
    assert malformed.returncode == 2 and "expected PATH=VALUE" in malformed.stderr
