"""Where a timbre measurement becomes an adjective: params section `tag.timbre` (read by the
tag, clip and augment stages). A leaf module, so params can compose it without importing the
measuring code (pipeline/analysis/timbre.py, whose module doc describes each feature)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Threshold pairs of opposite timbre adjectives (dark/bright, wide/mono, clean/gritty):
# the first must stay below the second.
TIMBRE_OPPOSITES: tuple[tuple[str, str], ...] = (
    ("dark_centroid_hz", "bright_centroid_hz"),
    ("wide_correlation", "mono_correlation"),
    ("clean_grit", "gritty_grit"),
)


class TimbreThresholds(BaseModel):
    """Where a measurement becomes an adjective (pipeline/analysis/timbre.py's module doc describes
    each feature); params section `tag.timbre`, which the tag, clip and augment stages all read.

    Calibrated on FluidSynth renders of the GM SoundFont (TimGM6mb) and on synthetic
    signals; the numbers behind each default are in the comments.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # Hi-hats 9600 Hz, GM drum parts 4200-4800, a trumpet 2000-2200, a saw lead 2100, a piano 800-1000.
    bright_centroid_hz: float = Field(2500.0, gt=0, description="spectral centroid above: bright")
    # Sample basslines 310-750 Hz (finger bass 710-750), nylon guitar 450, warm pad 430-550;
    # piano chords 840-1030, horn 860.
    dark_centroid_hz: float = Field(800.0, gt=0, description="spectral centroid below: dark")
    # Nylon guitar 0.86, warm pad 0.92, strings 0.75, finger bass 0.58; leads and brass < 0.1.
    warm_low_mid_share: float = Field(0.5, ge=0, le=1, description="150-500 Hz energy share above: warm")
    # A 45 Hz sine 0.78, a 60 Hz sine 0.29; GM acoustic bass on C2-C3 0.09-0.25, other GM basses < 0.06.
    sub_heavy_share: float = Field(0.3, ge=0, le=1, description="20-60 Hz energy share above: sub-heavy")
    # Hi-hats 0.69, white noise 0.64, a drum kit 0.02, pitched GM instruments < 0.01.
    airy_share: float = Field(0.1, ge=0, le=1, description="energy share above 8 kHz above: airy")
    # Stereo GM strings 0.25-0.4, unrelated channels 0; other GM presets 0.96-1, GM kits 0.98-0.99.
    wide_correlation: float = Field(0.6, ge=-1, le=1, description="L/R correlation below: wide")
    mono_correlation: float = Field(0.98, ge=-1, le=1, description="L/R correlation above: mono")
    # GM drum parts 7.6-8.5 dB, hi-hats alone 5, a plucked acoustic bass 2.2, other pitched parts <= 1.3.
    punchy_punch_db: float = Field(3.0, ge=0, description="transient punch above: punchy")
    # Hard clipping 0.7-0.9; GM 29/30 low riffs and power chords 0.48-0.56. Highest clean sounds:
    # GM 27 clean guitar 0.27-0.38, brass section chords 0.39; nylon, pads, piano, basses < 0.1;
    # a sine 0.13, a tanh-saturated sine 0.22.
    gritty_grit: float = Field(0.45, ge=0, le=1, description="grit above: gritty")
    clean_grit: float = Field(0.2, ge=0, le=1, description="grit below: clean")
    # At or above this a sound is noise-like (white noise 0.59, hi-hat parts 0.46-0.54) and is
    # neither gritty nor clean: grit means nothing for noise (it reads ~0.9). Pitched GM parts
    # read < 0.2 (distortion guitar 0.18), wide low voicings up to 0.35, drum kits ~0.1.
    noisy_noisiness: float = Field(0.3, ge=0, le=1, description="noisier sounds are not judged gritty/clean")
    # A quiet verse and a chorus 16 dB louder read ~16 dB; the sample's stems 2-8 dB.
    dynamic_range_db: float = Field(10.0, ge=0, description="loudness range above: dynamic")

    @model_validator(mode="after")
    def _opposites_exclusive(self) -> TimbreThresholds:
        """Opposite adjectives can never both hold (checked when params load, so a stage
        stops before it removes anything)."""
        for low, high in TIMBRE_OPPOSITES:
            if not getattr(self, low) < getattr(self, high):
                raise ValueError(f"timbre threshold {low} must be below {high} (opposites never both)")
        return self
