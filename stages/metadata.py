"""Stage `metadata`: Spotify and Last.fm metadata for every song, cached on disk.

Reads params `metadata` and data/tag, data/mix manifests; writes
data/metadata/{manifest,failures}.jsonl and summary.json. Credentials come from
the environment (SPOTIPY_CLIENT_ID, SPOTIPY_CLIENT_SECRET, LASTFM_API_KEY);
without them the stage still runs and records source `none`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm import tqdm

from pipeline.io.manifest import read_manifest
from pipeline.layout import StageDir
from pipeline.metadata import LastfmResult, MetadataClient, ServiceUnavailable, SpotifyResult
from pipeline.metadata.song import merge
from pipeline.params import Params
from pipeline.records import Failure, MixSong, TagSong
from stages._runner import StageResult, run_stage

log = logging.getLogger("stages")


def metadata(params: Params, out: StageDir) -> StageResult:
    p = params.metadata
    tags = list(read_manifest(StageDir("tag", out.root).manifest, TagSong))
    mixes = {m.id: m for m in read_manifest(StageDir("mix", out.root).manifest, MixSong)}
    cache = Path(p.cache_dir) if Path(p.cache_dir).is_absolute() else out.root / p.cache_dir
    client = MetadataClient(p, cache)
    records, failures, unavailable = [], [], 0
    # One song at a time: the services' rate limits, not the CPU, set the pace.
    for tag in tqdm(tags, desc="metadata: songs", unit="song"):
        mix = mixes[tag.id]
        try:
            # Metadata is optional: a service that stays down leaves the song with source `none`.
            try:
                spotify = client.spotify(tag.artist, tag.title, mix.duration_s)
            except ServiceUnavailable as exc:
                unavailable += 1
                spotify = SpotifyResult(matched=False, source="none", reason=str(exc))
            try:
                lastfm = client.lastfm(tag.artist, tag.title)
            except ServiceUnavailable as exc:
                unavailable += 1
                lastfm = LastfmResult(matched=False, tags=[], source="none", reason=str(exc))
            records.append(merge(tag, mix, spotify, lastfm))
        except Exception as exc:  # noqa: BLE001 - one song's problem never stops the stage
            failures.append(Failure(id=tag.id, stage="metadata", reason=f"{type(exc).__name__}: {exc}"))
    client.close()
    summary = {
        "songs": len(records),
        "spotify_matched": sum(r.spotify_track_id is not None for r in records),
        "lastfm_matched": sum(bool(r.Tags) for r in records),
        "network_calls": client.network_calls,
        "cache_hits": client.cache_hits,
        "service_unavailable_lookups": unavailable,
        "notes": list(client.notes),
    }
    highlights = [
        f"Spotify matched {summary['spotify_matched']}, Last.fm tagged {summary['lastfm_matched']} of {len(records)}; "
        f"{client.network_calls} network calls, {client.cache_hits} cache hits",
        *client.notes,
    ]
    return StageResult(records, failures, summary, highlights, inputs=len(tags))


def main(root: Path | None = None) -> int:
    return run_stage("metadata", metadata, root=root)


if __name__ == "__main__":
    sys.exit(main())
