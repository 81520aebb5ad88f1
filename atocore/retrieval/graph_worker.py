"""Child process that builds the HNSW graph of a full rebuild (``python -m atocore.retrieval.graph_worker``).

usearch's ``add`` keeps taking the GIL back (it checks for signals), so in a thread it crawls
while the chunking and embedding threads run Python (measured 3x slower). A separate process
builds the graph on the other core. Protocol on stdin: records of ``start`` (u64), ``count``
(u64) and ``count x dims`` float32 values; a record with count 0 ends the input. The graph is
saved to PATH and ``ok`` (or the error) is written to stdout.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    path, dims, params = argv[0], int(argv[1]), json.loads(argv[2])
    try:
        import numpy as np
        from usearch.index import Index

        idx = Index(ndim=dims, metric="ip", dtype="f16", connectivity=params["connectivity"],
                    expansion_add=params["expansion_add"], expansion_search=params["expansion_search"])
        src = sys.stdin.buffer
        while True:
            head = src.read(16)
            if len(head) < 16:
                raise EOFError("input ended early")
            start, count = int.from_bytes(head[:8], "little"), int.from_bytes(head[8:], "little")
            if not count:
                break
            data = src.read(count * dims * 4)
            vecs = np.frombuffer(data, dtype=np.float32).reshape(count, dims)
            idx.add(np.arange(start, start + count, dtype=np.uint64), vecs, threads=1)
        tmp = path + ".tmp"
        idx.save(tmp)
        os.replace(tmp, path)
        sys.stdout.write("ok\n")
        return 0
    except BaseException as exc:
        sys.stdout.write(f"{type(exc).__name__}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
