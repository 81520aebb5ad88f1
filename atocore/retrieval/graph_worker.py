"""Child process that builds the HNSW graphs of a full rebuild (``python -m atocore.retrieval.graph_worker``).

usearch's ``add`` keeps taking the GIL back (it checks for signals), so in a thread it crawls
while the chunking and embedding threads run Python (measured 3x slower). A separate process
builds the graphs on the other core: the whole index's graph and one per project. Protocol on
stdin: records of ``count`` (u64), ``name length`` (u64), the graph's name (UTF-8; empty for the
whole index, else the project), ``count`` keys (u64) and ``count x dims`` float32 values; a record
with count 0 ends the input. The graphs are saved in FOLDER (``vectors.usearch``,
``parts/<project>.usearch``) and ``ok`` (or the error) is written to stdout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Every core: the parent only chunks and embeds on one of them, and is idle once its input ends,
# while this process adds each vector twice (the whole graph and its project's).
THREADS = os.cpu_count() or 1


def main(argv: list[str]) -> int:
    folder, dims, params = Path(argv[0]), int(argv[1]), json.loads(argv[2])
    try:
        import numpy as np
        from usearch.index import Index

        def new_graph() -> Index:
            return Index(ndim=dims, metric="ip", dtype="f16", connectivity=params["connectivity"],
                         expansion_add=params["expansion_add"], expansion_search=params["expansion_search"])

        graphs: dict[str, Index] = {"": new_graph()}
        src = sys.stdin.buffer
        while True:
            head = src.read(16)
            if len(head) < 16:
                raise EOFError("input ended early")
            count, name_len = int.from_bytes(head[:8], "little"), int.from_bytes(head[8:], "little")
            if not count:
                break
            name = src.read(name_len).decode()
            keys = np.frombuffer(src.read(count * 8), dtype=np.uint64)
            vecs = np.frombuffer(src.read(count * dims * 4), dtype=np.float32).reshape(count, dims)
            graph = graphs.get(name)
            if graph is None:
                graph = graphs[name] = new_graph()
            graph.add(keys, vecs, threads=THREADS)
        (folder / "parts").mkdir(exist_ok=True)
        for name, graph in graphs.items():
            path = folder / "vectors.usearch" if not name else folder / "parts" / f"{name}.usearch"
            graph.save(str(path) + ".tmp")
            os.replace(str(path) + ".tmp", path)
        sys.stdout.write("ok\n")
        return 0
    except BaseException as exc:
        sys.stdout.write(f"{type(exc).__name__}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
