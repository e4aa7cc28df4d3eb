"""Write batchcam/pixels/colormaps.npz: every matplotlib colormap as a uint8 RGB lookup table.

The API colours heatmaps from these tables so that it never imports matplotlib. Each table has the
colormap's own N rows (``Colormap._lut[:N]``), rounded as the renderer rounds (``rint(x * 255)``).
Rerun after upgrading matplotlib; tests/test_pixels.py fails until the tables match it again.

The archive is written byte-reproducibly (sorted members, fixed timestamps), so that regenerating
it from the same matplotlib leaves git with nothing to commit.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import matplotlib
import numpy as np

TABLES_FILE = Path(__file__).resolve().parents[1] / "batchcam" / "pixels" / "colormaps.npz"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold


def colormap_tables() -> dict[str, np.ndarray]:
    tables = {}
    for name in sorted(matplotlib.colormaps):
        colormap = matplotlib.colormaps[name]
        # The table matplotlib indexes is built lazily; indexing every entry forces it.
        rgba = colormap(np.arange(colormap.N))
        tables[name] = np.rint(rgba[:, :3] * 255).astype(np.uint8)
    return tables


def write_tables(tables: dict[str, np.ndarray], path: Path) -> None:
    """The same layout np.load reads from np.savez_compressed, without the wall-clock timestamps."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, table in tables.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, table, allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=TABLES_FILE)
    arguments = parser.parse_args()
    tables = colormap_tables()
    write_tables(tables, arguments.output)
    print(f"{len(tables)} colormaps (matplotlib {matplotlib.__version__}) written to {arguments.output}")


if __name__ == "__main__":
    main()
