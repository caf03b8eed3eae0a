"""Payment batches (filled in below)."""

from app.core.config import Settings
from app.database import Database


def process_next_chunk(db: Database, settings: Settings) -> int:
    return 0
