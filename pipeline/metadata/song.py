"""Merge what the pipeline measured with what Spotify and Last.fm say, into the
reference metadata shape, recording where every field came from."""

from __future__ import annotations

from pipeline.metadata import LastfmResult, SpotifyResult
from pipeline.records import MetadataSong, MixSong, Provenance, TagSong

SPOTIFY_FEATURES = ("acousticness", "energy", "instrumentalness", "danceability", "valence")


def merge(tag: TagSong, mix: MixSong, spotify: SpotifyResult, lastfm: LastfmResult) -> MetadataSong:
    tonic, mode = tag.key.label.split(" ")
    prov: dict[str, Provenance] = {
        "Song": "midi",
        "Artist": "midi",
        "Instruments": "midi",
        "duration_ms": "audio",
        "key": tag.key.label_source,
        "mode": tag.key.label_source,
        "tempo": tag.tempo.label_source,
        "Tags": "lastfm" if lastfm.tags else "none",
    }
    features = {}
    for name in SPOTIFY_FEATURES:
        value = getattr(spotify, name, None) if spotify.matched else None
        features[name] = None if value is None else round(float(value), 4)
        prov[name] = "spotify" if value is not None else "none"
    sections = spotify.sections if spotify.matched and spotify.sections else None
    prov["sections"] = "spotify" if sections else "none"
    instruments = list(dict.fromkeys(s.name for s in mix.stems))
    track_id = spotify.track_id if spotify.matched else None
    return MetadataSong(
        id=tag.id, Song=tag.title, Artist=tag.artist, Tags=[t for t, _ in lastfm.tags], Instruments=instruments,
        duration_ms=round(mix.duration_s * 1000), key=tonic, mode=mode, tempo=round(tag.tempo.label_bpm, 3),
        sections=sections, provenance=dict(sorted(prov.items())), spotify_track_id=track_id,
        spotify_similarity=spotify.similarity, lastfm_tag_weights={t: int(w) for t, w in lastfm.tags}, **features,
    )  # fmt: skip
