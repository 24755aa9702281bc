"""``policywatch classify`` and ``policywatch reclassify``, run as real processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.test_cli import ROOT, cli_env, policywatch


def classify(lines: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policywatch", "classify", *args],
        cwd=ROOT,
        env=env,
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_classify_prints_one_object_per_line_in_order(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/unused.db")
    lines = "\n".join(
        json.dumps(r, ensure_ascii=False)
        for r in [
            {"title": "US adds 140 Chinese entities to the Entity List"},
            {"title": "Ernie Els wins Senior Open"},
            {"title": "國家網信辦發布生成式人工智慧服務管理暫行辦法", "summary": ""},
            {"title": "DeepSeek trains its new model on Huawei Ascend chips"},
        ]
    )
    result = classify(lines + "\n", env=env)
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["themes"] for o in out[:3]] == [["export-controls"], [], ["china-ai-rules"]]
    assert set(out[3]["themes"]) == {"china-llms", "chip-self-sufficiency"}
    ec = out[0]["matches"][0]
    assert ec["slug"] == "export-controls"
    assert {"term": "Entity List", "field": "title"} in ec["terms"]


def test_classify_reads_a_file_and_another_themes_file(tmp_path: Path) -> None:
    themes = tmp_path / "themes.yaml"
    themes.write_text(
        "themes:\n  - slug: telecom\n    title: Telecom\n    watchlist:\n      - [ZTE, 中兴]\n",
        encoding="utf-8",
    )
    items = tmp_path / "items.jsonl"
    items.write_text('{"title": "中興通訊發布5G"}\n\n{"title": "Huawei"}\n', encoding="utf-8")
    env = cli_env(f"sqlite:///{tmp_path}/unused.db")
    result = policywatch("classify", str(items), "--themes", str(themes), env=env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["themes"] for x in result.stdout.splitlines()] == [["telecom"], []]


def test_classify_reports_bad_lines_and_keeps_going(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/unused.db")
    result = classify(
        'not json\n[1]\n{"title": 5}\n'
        '{"title": "SMIC expands domestic chipmaking capacity in Shanghai"}\n',
        env=env,
    )
    assert result.returncode == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("error", "")[:6] for o in out[:3]] == ["line 1", "line 2", "line 3"]
    assert out[3]["themes"] == ["chip-self-sufficiency"]
    assert "line 1: not JSON" in result.stderr


def test_classify_refuses_a_themes_file_with_a_broken_rule(tmp_path: Path) -> None:
    themes = tmp_path / "themes.yaml"
    themes.write_text(
        'themes:\n  - slug: t\n    title: T\n    watchlist:\n      - \'"华为" "Huawei"\'\n',
        encoding="utf-8",
    )
    result = classify("{}\n", "--themes", str(themes), env=cli_env("sqlite:///x.db"))
    assert result.returncode == 2
    assert "themes (t).watchlist" in result.stderr
    assert "without an operator" in result.stderr


def test_reclassify_stores_matches_for_recent_items(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    env = cli_env(f"sqlite:///{db}")
    assert policywatch("migrate", env=env).returncode == 0
    assert policywatch("seed", env=env).returncode == 0
    with sqlite3.connect(db) as conn:
        source_id = conn.execute("SELECT id FROM sources LIMIT 1").fetchone()[0]
        for n, (title, age) in enumerate(
            [
                ("US adds Chinese firms to the Entity List", "-1 day"),
                ("Ford recalls", "-1 day"),
                ("SMIC expands", "-30 days"),
            ]
        ):
            conn.execute(
                "INSERT INTO items (source_id, external_id, title, summary, published_at, "
                "first_seen_at, content_hash, fields) VALUES (?, ?, ?, '', "
                "strftime('%Y-%m-%d %H:%M:%S.000000', 'now', ?), "
                "strftime('%Y-%m-%d %H:%M:%S.000000', 'now'), "
                "'h', '{}')",
                (source_id, f"x{n}", title, age),
            )
    result = policywatch("reclassify", "--since", "7d", env=env)
    assert result.returncode == 0, result.stderr
    assert "2 items" in result.stdout
    assert "1 matches added" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM item_themes").fetchone()[0] == 1
    again = policywatch("reclassify", "--since", "7d", env=env)
    assert "0 matches added, 0 removed, 1 kept" in again.stdout


def test_reclassify_rejects_a_bad_duration(tmp_path: Path) -> None:
    result = policywatch("reclassify", "--since", "soon", env=cli_env(f"sqlite:///{tmp_path}/p.db"))
    assert result.returncode == 2
    assert "--since" in result.stderr
