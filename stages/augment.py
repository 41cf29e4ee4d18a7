"""Stage `augment`: key, BPM, FX and timbre variants of every clip, prompted, as the training dataset.

Reads params `run.seed`, `augment`, `prompts`, `render`, `mix`, `tag.timbre`,
`clip.window_s`, `clip.silence_lufs` and the clip and prompts manifests; writes
data/augment/{manifest,failures}.jsonl (a variant left near-silent is dropped:
in failures.jsonl with its reason, counted in the summary), dataset/ (WAV + JSON
sidecars per split and song), coverage/*.csv (DVC plots), shards/ (WebDataset
tars when enabled) and summary.json.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pipeline.augment.coverage import write_coverage
from pipeline.augment.dataset import remove_item, write_shards, write_sidecar
from pipeline.augment.fx import check_effects
from pipeline.augment.make import AugmentConfig, ItemJob, ItemResult, clip_phrases, make_item
from pipeline.augment.prompting import attach_prompts
from pipeline.augment.spec import ORIGINAL, cap_by_phrase, plan_clip
from pipeline.io.atomic import write_json
from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.parallel import map_items
from pipeline.params import Params
from pipeline.prompts.backends import open_backend
from pipeline.prompts.writer import PromptWriter
from pipeline.records import Clip, Failure, Prompt, Variant, hours_by_source
from stages._runner import StageResult, run_stage


def augment(params: Params, out: StageDir) -> StageResult:
    p, root = params.augment, out.root
    check_effects(p.fx)
    thresholds = params.tag.timbre  # validated with params (opposites never both hold)
    clips = list(read_manifest(StageDir("clip", root).manifest, Clip))
    prompts = {q.id: q for q in read_manifest(StageDir("prompts", root).manifest, Prompt)}
    cfg = AugmentConfig(root, out.out("dataset"), root / p.cache_dir, p, params.render, params.mix, thresholds,
                        params.run.seed, params.clip.silence_lufs)  # fmt: skip

    phrases = clip_phrases(root, clips)
    plans = [q for c in clips for q in plan_clip(c, p, params.render, params.run.seed, params.clip.window_s,
                                                 c.midi is not None and (root / c.midi).is_file())]  # fmt: skip
    plans, capped = cap_by_phrase(plans, phrases, p.max_variants_per_phrase)
    by_id = {c.id: c for c in clips}
    jobs = [(f"{c.id}/{ORIGINAL}", ItemJob(c, None, phrases[c.id])) for c in clips if p.include_originals]
    jobs += [(q.variant_id, ItemJob(by_id[q.clip_id], q, phrases[q.clip_id])) for q in plans]
    # The run's config (params, paths) goes to each worker once (context), not into every job.
    outcomes = map_items(make_item, jobs, params.run, desc="augment: items", unit="item", context=cfg)
    failures = [Failure(id=o.item_id, stage="augment", reason=o.error or "") for o in outcomes if not o.ok]
    results: list[ItemResult] = [o.value for o in outcomes if o.value is not None]
    made = [r.variant for r in results if r.variant is not None]
    dropped = [(o.item_id, o.value.dropped) for o in outcomes if o.value is not None and o.value.dropped]
    failures += [Failure(id=item_id, stage="augment", reason=f"dropped: {why}") for item_id, why in dropped]

    backend = open_backend(params.prompts) if any(v.method != "identity" for v in made) else None
    try:
        writer = PromptWriter(params.prompts, params.run.seed, root, backend, stage="augment")
        prompted = attach_prompts(made, prompts, writer.write)
    finally:
        if backend is not None:
            backend.close()
    failures += prompted.failures
    items: list[Variant] = prompted.items
    kept = {v.id for v in items}
    for v in made:  # an item without a prompt leaves the dataset
        if v.id not in kept:
            remove_item(root, v, cfg.dataset_dir)
    leaks = [v.id for v in items if v.split != by_id[v.source_clip].split]
    if leaks:  # cannot happen by construction; checked because a leak would silently poison evaluation
        raise RuntimeError(f"variants outside their clip's split: {leaks[:5]}")
    for v in items:
        write_sidecar(root, v)
    coverage = write_coverage(out.out("coverage"), items)
    shards = write_shards(root, out.out("shards"), items, p.shards.max_items) if p.shards.enabled else []
    write_json(out.out("shards") / "index.json", {"enabled": p.shards.enabled, "shards": shards})

    variants = [v for v in items if v.method != "identity"]
    phrase_splits: dict[str, set[str]] = {}
    for v in items:
        phrase_splits.setdefault(v.phrase, set()).add(v.split)
    summary = {
        "items": len(items),
        "originals": len(items) - len(variants),
        "variants": len(variants),
        "by_axis": dict(sorted(Counter(t.axis for v in variants for t in v.transforms).items())),
        "by_method": dict(sorted(Counter(v.method for v in variants).items())),
        "by_split": dict(sorted(Counter(v.split for v in items).items())),
        "planned": len(plans),
        "capped_by_phrase": capped,
        "skipped_out_of_range": sum(r.skipped is not None for r in results),
        "dropped": len(dropped),
        "dropped_reasons": dict(sorted(Counter(why.split(":")[0] for _, why in dropped).items())),
        "cache_hits": sum(r.cached for r in results if r.variant is not None and r.variant.method != "identity"),
        "rendered_parts": sum(r.rendered_parts for r in results),
        "hours": round(sum(v.seconds_total for v in items) / 3600, 4),
        "hours_by_source": hours_by_source(items),
        "phrases": len(phrase_splits),
        "phrases_in_several_splits": sum(len(s) > 1 for s in phrase_splits.values()),
        "prompt_styles": dict(sorted(Counter(v.prompt_style or "none" for v in items).items())),
        "prompt_stats": prompted.stats,
        "fx_labels": coverage["fx"],
        "shards": len(shards),
    }
    highlights = [
        f"{summary['variants']} variants of {len(clips)} clips ({summary['by_axis']}), {summary['cache_hits']} "
        f"from cache; {summary['items']} items, {summary['hours']} h in {out.out('dataset').relative_to(root)}"
    ]
    return StageResult(items, failures, summary, highlights, inputs=len(jobs))


def main(root: Path | None = None) -> int:
    return run_stage("augment", augment, root=root)


if __name__ == "__main__":
    sys.exit(main())
