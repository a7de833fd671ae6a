"""Bundled real sample data (UCDP GED, CC BY 4.0; see README.md here for the credit)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

UCDP_CREDIT = (
    "Event data: UCDP Georeferenced Event Dataset (CC BY 4.0). Sundberg & Melander (2013), "
    "Introducing the UCDP Georeferenced Event Dataset, Journal of Peace Research 50(4); "
    "Högbladh (2019), UCDP GED Codebook version 19.1, Uppsala University."
)


def sample_path() -> Path:
    """Path of the bundled UCDP GED Iraq extract."""
    return Path(str(resources.files("culpa.data").joinpath("ucdp_ged_iraq_1989_2018.csv.gz")))
