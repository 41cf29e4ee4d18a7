"""Stage `evaluate`: does the fine-tune follow tempo and key better than the base model?

Reads params `run.seed`, `evaluate`, the clip stage's manifest (the test split's mix
clips: templates of our prompt grid, and real audio measured against its labels) and
the fine-tune's export, models/finetune/model. Builds the prompt grid (the reference
protocol's tempo and key prompts plus our own), generates every prompt with each model
in the training environment (`.venv-train/bin/python -m pipeline.evaluate.generate`,
passed paths only), measures tempo and key of every generation and every test clip, and
writes data/evaluate/{manifest,failures}.jsonl (the index of the audio), audio/, plots/
and summary.json.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.evaluate import grid, measure, models, report
from pipeline.evaluate.boundary import GenerateResult
from pipeline.io.atomic import write_text
from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.records import Clip, Failure
from stages._runner import StageResult, run_stage

log = logging.getLogger("stages")
STAGE = "evaluate"
CODE = Path(__file__).resolve().parents[1]  # the generation process runs this same checkout's code


def check(params: Params, root: Path) -> None:
    """The fine-tune's export, the training environment and the estimators, before any output is removed."""
    model_dir = StageDir("finetune", root).model_out("model")
    if not (model_dir / models.BUNDLE_CONFIG).is_file():
        raise ConfigError(f"{model_dir.relative_to(root)}: no exported model (run the finetune stage first)")
    if not Path(root, params.evaluate.python).exists():
        raise ConfigError(f"evaluate.python: {params.evaluate.python} not found (build it: make train-env)")
    measure.plan_tempo(params.evaluate)  # deeprhythm weights that do not load stop here


def _generate(
    params: Params, out: StageDir, entries: list[models.ModelEntry], prompts: list[grid.EvalPrompt], clap: Path | None
) -> GenerateResult:
    p, root = params.evaluate, out.root
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        result = Path(tmp, "result.json")
        spec = models.spec(p, entries, prompts, out.out("audio"), result, root, clap)
        spec_path = Path(tmp, "spec.json")
        spec.write(spec_path)
        cmd = [str(Path(root, p.python)), "-m", "pipeline.evaluate.generate", "--spec", str(spec_path)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(CODE), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL)
        if proc.returncode != 0 or not result.exists():
            raise ConfigError(f"the generation process exited with {proc.returncode} (its error is above)")
        try:
            return GenerateResult.read(result)
        except ValidationError as exc:
            raise ConfigError(f"the generation process wrote a result this stage cannot read: {exc}") from None


def evaluate(params: Params, out: StageDir) -> StageResult:
    p, root = params.evaluate, out.root
    seed = params.run.seed if p.seed is None else p.seed
    plan = measure.plan_tempo(p)
    clips = list(read_manifest(StageDir("clip", root).manifest, Clip))
    prompts = grid.build_grid(p.grid, grid.template_clips(clips, p.grid.dataset_clips), p.seconds, seed)
    notes = [f"tempo estimator: {plan.description}"]
    entries = [models.ModelEntry(models.FINETUNE, "bundle", StageDir("finetune", root).model_out("model"))]
    other, note = models.comparison(p, root)
    if other is not None:
        entries.append(other)
    else:
        notes.append(note)
    log.info("evaluate: %d prompts x %d model(s), %s", len(prompts), len(entries), plan.description)

    clap, clap_note = models.clap_weights(p, root)
    if clap_note:
        notes.append(clap_note)
    generated = _generate(params, out, entries, prompts, clap)
    failures: list[Failure] = []
    jobs: list[report.Job] = []
    for entry in entries:
        info = generated.models[entry.name]
        if info.error is not None:
            failures.append(Failure(id=entry.name, stage=STAGE, reason=f"model did not load: {info.error}"))
            notes.append(f"{entry.name}: did not load ({info.error.splitlines()[0][:200]})")
            continue
        if info.clap_error is not None:
            notes.append(f"{entry.name}: CLAP score failed ({info.clap_error[:200]})")
        jobs += report.prompt_jobs(entry.name, prompts, out.rel(out.out("audio")))
    jobs += report.clip_jobs(clips)

    ctx = measure.MeasureContext(plan, p, root)
    pairs = [(j.id, j.audio) for j in jobs]
    outcomes = map_items(measure.measure_job, pairs, params.run, desc="evaluate: measure", unit="file", context=ctx)
    items = [j.item(o.value) for j, o in zip(jobs, outcomes, strict=True) if o.ok and o.value is not None]
    failures += [Failure(id=o.item_id, stage=STAGE, reason=o.error or "no measurement") for o in outcomes if not o.ok]
    names = [e.name for e in entries if generated.models[e.name].error is None]
    if models.FINETUNE not in names:
        log.error("evaluate: the fine-tune's model did not load; see %s", out.failures.relative_to(root))
        return StageResult([], failures, {"evaluated_models": names, "notes": notes}, inputs=len(jobs) or 1)
    tolerances = p.tempo.tolerances
    figures = report.summarize(items, names, plan.estimators, tolerances)
    _write_plots(out, items, entries, names, plan.estimators[0], tolerances[0])
    clap_scores = {n: generated.models[n].clap_score for n in names}
    summary = {
        "tempo_estimator": plan.description,
        "key_estimator": f"essentia KeyExtractor ({p.key_profile})",
        "tolerances": tolerances,
        "device": generated.device,
        "prompts": {g: sum(pr.group == g for pr in prompts) for g in grid.GROUPS},
        "generation": {"seconds": p.seconds, "steps": p.steps, "cfg_scale": p.cfg_scale, "batch_size": p.batch_size},
        "evaluated_models": names,
        "comparison": other.name if other is not None else None,
        **figures,
        "clap_score": clap_scores if clap is not None else None,
        "reference_protocol": report.REFERENCE_PROTOCOL,
        "notes": notes,
    }
    highlights = [*notes]
    for name, row in figures["table"].items():
        highlights.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return StageResult(items, failures, summary, highlights, inputs=len(jobs) or 1)


def _write_plots(out: StageDir, items: list, entries: list, names: list[str], estimator: str, tolerance: float) -> None:
    """tempo_<slot>.csv and keys_<slot>.csv for the fine-tune, the comparison and the test clips
    (fixed names for dvc.yaml; header only when that slot has no data), genre_tempo.csv and genre_key.csv."""
    plots = out.out("plots")
    plots.mkdir(parents=True, exist_ok=True)
    compare = entries[1].name if len(entries) > 1 else None
    for slot, model in (("finetune", models.FINETUNE), ("comparison", compare), ("test_clips", report.TEST_CLIPS)):
        mine = [i for i in items if i.model == model]
        write_text(plots / f"tempo_{slot}.csv", report.tempo_table(mine, estimator))
        write_text(plots / f"keys_{slot}.csv", report.key_table(mine))
    for name, text in report.genre_tables(items, [*names, report.TEST_CLIPS], estimator, tolerance).items():
        write_text(plots / f"genre_{name}.csv", text)


def main(root: Path | None = None) -> int:
    return run_stage(STAGE, evaluate, check=check, root=root)


if __name__ == "__main__":
    sys.exit(main())
