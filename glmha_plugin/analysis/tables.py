"""Writing result rows (dataclasses) of the analysis tools."""
import csv
from dataclasses import asdict
from typing import Iterable


def write_csv(rows: Iterable, path: str) -> None:
    """One CSV line per dataclass row, columns = its fields (nothing written for no rows)."""
    rows = list(rows)
    if not rows:
        return
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
