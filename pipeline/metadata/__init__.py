"""Song metadata from Spotify and Last.fm, cached on disk so re-runs stay offline.

`MetadataClient` is the one entry point: it never raises for a per-song problem
(no match, 404, refused credentials, forbidden endpoints); only a service that is
down after all retries raises `ServiceUnavailable` (an `ItemError`).
"""

from pipeline.metadata.client import MetadataClient
from pipeline.metadata.errors import ServiceUnavailable
from pipeline.metadata.results import LastfmResult, SpotifyResult

__all__ = ["LastfmResult", "MetadataClient", "ServiceUnavailable", "SpotifyResult"]
