"""Writing result rows (dataclasses) of the analysis tools: CSV files and Markdown tables."""
import csv
from dataclasses import asdict
from typing import Iterable, Sequence


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


def markdown_table(head: Sequence[str], align: str, rows: Iterable[Sequence]) -> str:
    """A Markdown table: ``head`` cells, ``align`` one letter per column (``l`` left, ``r`` right-aligned
    numbers), ``rows`` of cells (each written with ``str``); ends with a newline."""
    if len(align) != len(head):
        raise ValueError(f'{len(head)} columns but {len(align)} alignments ({align!r})')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ''.join('---:|' if a == 'r' else '---|' for a in align)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'
