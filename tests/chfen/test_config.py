"""Layered config: extends chains, env and --set precedence, provenance, shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chfen.config import (
    ConfigError,
    Settings,
    config_chain,
    flatten,
    load_settings,
    origin_of,
    shipped_configs,
)


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def three_levels(tmp_path: Path) -> Path:
    write(
        tmp_path / "base" / "base.yaml",
        {
            "data_root": "/srv/base",
            "crawl": {"retries": 1, "max_duration_s": 60},
            "train": {"lr": 0.1},
        },
    )
    write(
        tmp_path / "base" / "mid.yaml",
        {"extends": "base.yaml", "crawl": {"retries": 2}, "train": {"epochs": 7}},
    )
    # the top file lives elsewhere: `extends` is relative to the file that says it
    return write(
        tmp_path / "exp" / "top.yaml",
        {"extends": "../base/mid.yaml", "crawl": {"socket_timeout_s": 3}, "train": {"epochs": 9}},
    )


def test_three_level_inheritance(three_levels: Path) -> None:
    chain = config_chain(three_levels)
    assert [p.name for p, _ in chain] == ["base.yaml", "mid.yaml", "top.yaml"]
    s, prov = load_settings(three_levels, environ={})
    assert s.data_root == "/srv/base"
    assert s.crawl.retries == 2  # mid over base
    assert s.crawl.max_duration_s == 60  # kept from base
    assert s.crawl.socket_timeout_s == 3
    assert s.train.epochs == 9  # top over mid
    assert s.train.lr == 0.1
    assert s.asr.model == "tiny.en"  # default
    assert origin_of("crawl.retries", prov).endswith("mid.yaml")
    assert origin_of("train.epochs", prov).endswith("top.yaml")
    assert origin_of("asr.model", prov) == "default"


def test_precedence_file_then_env_then_set(three_levels: Path) -> None:
    env = {
        "CHFEN_CRAWL__RETRIES": "5",
        "CHFEN_TRAIN__EPOCHS": "11",
        "CHFEN_LABELSTUDIO__TOKEN": "s3cret-token",
        "CHFEN_CONFIG": "ignored-here.yaml",  # names the file, not a setting
        "OTHER": "x",
    }
    s, prov = load_settings(three_levels, ["train.epochs=12", "train.lr=1e-4"], environ=env)
    assert s.crawl.retries == 5 and origin_of("crawl.retries", prov) == "env:CHFEN_CRAWL__RETRIES"
    assert s.train.epochs == 12 and origin_of("train.epochs", prov) == "--set train.epochs"
    assert s.train.lr == pytest.approx(1e-4)
    assert s.labelstudio.token.get_secret_value() == "s3cret-token"
    # secrets never leave as text
    assert "s3cret-token" not in str(flatten(s)) and "s3cret-token" not in str(
        s.model_dump(mode="json")
    )
    # later --set wins over earlier --set
    s2, _ = load_settings(three_levels, ["train.epochs=1", "train.epochs=2"], environ=env)
    assert s2.train.epochs == 2


def test_config_env_var_picks_the_file(three_levels: Path) -> None:
    s, _ = load_settings(None, environ={"CHFEN_CONFIG": str(three_levels)})
    assert s.train.epochs == 9


def test_lists_and_sources_from_set(tmp_path: Path) -> None:
    f = write(tmp_path / "c.yaml", {"sources": [{"name": "a", "url": "http://127.0.0.1/feed.xml"}]})
    s, prov = load_settings(f, environ={})
    assert s.sources[0].name == "a" and s.sources[0].enabled
    assert origin_of("sources.0.url", prov).endswith("c.yaml")
    s, _ = load_settings(f, ["sources=[]"], environ={})
    assert s.sources == []


@pytest.mark.parametrize(
    ("data", "overrides", "env", "message"),
    [
        ({"crawl": {"retriez": 1}}, [], {}, "crawl.retriez"),
        ({}, ["crawl.retries=many"], {}, "--set crawl.retries"),
        ({}, [], {"CHFEN_TRAIN__LR": "-1"}, "env:CHFEN_TRAIN__LR"),
        ({}, ["novalue"], {}, "section.key=value"),
        ({"extends": ["a", "b"]}, [], {}, "'extends' must be one file"),
    ],
)
def test_bad_settings_say_what_and_where(
    tmp_path: Path, data: dict, overrides: list[str], env: dict, message: str
) -> None:
    f = write(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_settings(f, overrides, environ=env)


def test_extends_cycle_and_missing_file(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"extends": "b.yaml"})
    write(tmp_path / "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_settings(tmp_path / "a.yaml", environ={})
    write(tmp_path / "c.yaml", {"extends": "nowhere.yaml"})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "c.yaml", environ={})


def test_every_shipped_config_validates() -> None:
    files = shipped_configs()
    assert {f.name for f in files} >= {"default.yaml", "small.yaml"}
    for f in files:
        s, _ = load_settings(f, environ={})
        assert isinstance(s, Settings)


def test_train_config_is_a_standalone_model() -> None:
    # The Prefect train deployment takes TrainConfig as its parameter form.
    schema = Settings.model_fields["train"].annotation.model_json_schema()
    assert "lr" in schema["properties"] and "description" in schema["properties"]["min_agreement"]


def test_a_local_folder_source(tmp_path: Path) -> None:
    settings, _ = load_settings(
        None,
        [
            f"data_root={tmp_path}",
            "sources=[{name: mine, path: /data/clips, labels: /data/labels.csv, "
            "columns: {file: clip}}, {name: feed, url: http://x/rss}]",
        ],
        environ={},
    )
    folder, feed = settings.sources
    assert folder.is_folder and folder.labels == "/data/labels.csv"
    assert folder.columns == {"file": "clip"} and not feed.is_folder
    bad = {
        "neither url nor path": "{name: a}",
        "both url and path": "{name: a, url: http://x, path: /p}",
        "labels with a url": "{name: a, url: http://x, labels: l.csv}",
        "labels and a preset": "{name: a, path: /p, labels: l.csv, preset: ravdess}",
    }
    for case, item in bad.items():
        with pytest.raises(ConfigError, match="source 'a'"):
            load_settings(None, [f"sources=[{item}]"], environ={})
            pytest.fail(case)
