"""``policywatch classify`` reports which layer matched; ``policywatch model`` lists and rolls
back versions; a bad model file is refused with its name. Real processes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from models.learned import FeatureConfig, ThemeModel
from pipeline.learning import models_to_json
from tests.test_cli import cli_env, policywatch
from tests.test_cli_classify import classify

MISSED_BY_RULES = "Chinese startups rent overseas servers to keep using Claude and GPT-4o"


def test_classify_reports_the_layer_that_matched_each_theme(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/unused.db")
    lines = [
        {"title": "US adds 140 Chinese entities to the Entity List"},
        {"title": MISSED_BY_RULES},
        {"title": "Ernie Els wins Senior Open"},
    ]
    result = classify("\n".join(json.dumps(r) for r in lines) + "\n", env=env)
    assert result.returncode == 0, result.stderr
    entity, missed, golf = [json.loads(line) for line in result.stdout.splitlines()]
    assert entity["layers"]["export-controls"] == "both"
    assert missed["layers"]["foreign-model-dependence"] == "model"
    assert set(missed["layers"].values()) == {"model"}  # no rule matched it
    [match] = [m for m in missed["matches"] if m["slug"] == "foreign-model-dependence"]
    assert match["terms"] == []
    assert match["similar_to"]  # the nearest labelled headline
    assert 0 < match["probability"] <= 1
    assert golf == {"themes": [], "layers": {}, "matches": []}

    rules_only = classify(json.dumps(lines[1]) + "\n", "--no-model", env=env)
    assert json.loads(rules_only.stdout)["themes"] == []


def test_classify_uses_a_model_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path}/unused.db")
    always = ThemeModel("china-llms", FeatureConfig(), {}, 5.0, 0.5, ("Qwen 3 released",))
    models = tmp_path / "models.json"
    models.write_text(json.dumps(models_to_json([always])), encoding="utf-8")
    result = classify('{"title": "Ford recalls cars"}\n', "--models", str(models), env=env)
    assert json.loads(result.stdout)["layers"] == {"china-llms": "model"}

    models.write_text('{"models": [{"format": 1}]}', encoding="utf-8")
    broken = classify('{"title": "x"}\n', "--models", str(models), env=env)
    assert broken.returncode == 2
    assert f"{models}: not a model file" in broken.stderr


def test_model_list_and_rollback(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    env = cli_env(f"sqlite:///{db}")
    assert policywatch("migrate", env=env).returncode == 0
    assert policywatch("seed", env=env).returncode == 0
    listed = policywatch("model", "list", "china-llms", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "china-llms v1 shipped" in listed.stdout
    assert "ACTIVE" in listed.stdout
    with sqlite3.connect(db) as conn:  # a second version, as a training would store it
        conn.execute(
            "INSERT INTO theme_models (theme_id, version, origin, active, created_at, metrics, "
            "model) SELECT theme_id, 2, 'trained', 0, created_at, metrics, model "
            "FROM theme_models WHERE version = 1 AND theme_id = "
            "(SELECT id FROM themes WHERE slug = 'china-llms')"
        )
    listed = policywatch("model", "list", "china-llms", env=env)
    assert "china-llms v2 trained" in listed.stdout
    assert "newer, not in use (rollback --to uses it)" in listed.stdout.splitlines()[0]
    assert listed.stdout.splitlines()[1].endswith("ACTIVE")
    bad = policywatch("model", "rollback", "china-llms", "--to", "7", env=env)
    assert bad.returncode == 1
    assert "no such version" in bad.stderr
    ok = policywatch("model", "rollback", "china-llms", "--to", "2", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "version 2 is active" in ok.stdout
    back = policywatch("model", "rollback", "china-llms", env=env)
    assert "version 1 is active" in back.stdout
    unknown = policywatch("model", "rollback", "nope", env=env)
    assert unknown.returncode == 2
    assert "no theme 'nope'" in unknown.stderr


def test_train_stores_a_new_active_version_per_theme(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    # Without the sentence encoder: encoding the 4,800 shipped headlines takes minutes
    # (training with it is tested with a fake encoder in tests/test_encoder.py).
    env = cli_env(f"sqlite:///{db}", POLICYWATCH_ENCODER="off")
    assert policywatch("migrate", env=env).returncode == 0
    assert policywatch("seed", env=env).returncode == 0
    result = policywatch("train", env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "trained with 0 examples from feedback" in result.stdout
    # the same data and watchlists as the shipped default: it validates as well, so it is used
    assert result.stdout.count(": v2 activated; validation P") == 6, result.stdout
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT version, origin FROM theme_models WHERE active ORDER BY theme_id"
        ).fetchall()
    assert rows == [(2, "trained")] * 6
