"""params.yaml is validated before any work, with messages naming key, value and what is allowed."""

from __future__ import annotations

import pytest

from pipeline.parallel import Engine
from pipeline.params import ParamsError, load_params, parse_params
from tests.conftest import REPO


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.ingest.source == "sample"
    assert params.run.n_workers() >= 1
    assert Engine.of(params.run) == Engine("local", None, "", 3600)


@pytest.mark.parametrize("address", ["", "auto", "ray://10.0.0.5:10001", "head.cluster:6379"])
def test_ray_addresses_accepted(address):
    engine = Engine.of(parse_params({"run": {"executor": "ray", "workers": 3, "ray": {"address": address}}}).run)
    assert (engine.kind, engine.workers, engine.ray_address) == ("ray", 3, address)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"split": {"max_duration_s": -5}}, ["'split.max_duration_s' = -5", "greater than 0"]),
        ({"ingest": {"source": "spotify"}}, ["'ingest.source' = 'spotify'", "'sample', 'lakh', 'music21' or 'dir'"]),
        ({"ingest": {"bogus": 1}}, ["unknown key 'ingest.bogus'", "allowed here: dedupe, limit, music21, path"]),
        (
            {"splt": {}},
            [
                "unknown key 'splt'",
                "allowed here: augment, clip, evaluate, finetune, ingest, metadata, mix, prompts, recordings, render, "
                "run, split, tag",
            ],
        ),
        ({"run": {"workers": 0}}, ["'run.workers' = 0", "'auto' or an integer >= 1"]),
        ({"run": {"workers": "many"}}, ["'run.workers' = 'many'", "Input should be 'auto'"]),
        ({"run": {"executor": "dask"}}, ["'run.executor' = 'dask'", "Input should be 'local' or 'ray'"]),
        ({"run": {"ray": {"address": "head-node"}}}, ["'run.ray.address' = 'head-node'", "'ray://host:port'"]),
        ({"run": {"ray": {"adress": "auto"}}}, ["unknown key 'run.ray.adress'", "allowed here: address"]),
        ({"run": {"item_timeout_s": -1}}, ["'run.item_timeout_s' = -1", "greater than or equal to 0"]),
        ({"ingest": {"music21": {"programs": [40, 200]}}}, ["'ingest.music21.programs' = [40, 200]", "0-127"]),
        ({"split": {"min_tempo_bpm": 500, "max_tempo_bpm": 400}}, ["min_tempo_bpm (500.0) must be below"]),
        ({"ingest": {"sample": {"songs": "lots"}}}, ["'ingest.sample.songs' = 'lots'", "valid integer"]),
    ],
)
def test_bad_params_name_key_value_and_rule(data, expected):
    with pytest.raises(ParamsError) as err:
        parse_params(data)
    for fragment in expected:
        assert fragment in str(err.value)


def test_not_a_mapping_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="expected a mapping"):
        parse_params([1, 2])
    bad = tmp_path / "params.yaml"
    bad.write_text("run: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_invalid_params_stop_the_stage_before_any_work(project, caplog):
    project.params(ingest={"source": "napster"})
    assert project.run("ingest") == 2
    assert "'ingest.source' = 'napster'" in caplog.text
    assert not project.out("ingest").dir.exists()


def test_invalid_params_do_not_delete_previous_outputs(project):
    assert project.run("ingest") == 0
    manifest = project.out("ingest").manifest.read_bytes()
    project.params(split={"max_duration_s": 0})
    assert project.run("ingest") == 2
    assert project.out("ingest").manifest.read_bytes() == manifest
