"""What a GPU machine without network needs beyond the working tree, cut into parts that fit the device tool's calls.

Usage::

    python bench/gpu/device_parts.py --out .device_parts [--first .gpu_wheels] [--limit-mib 64] [--margin-mib 1] \\
        NAME=PATH [NAME=PATH ...]

The device tool sends the working tree (tracked and untracked, not ignored, files: `gpu_wheels.tree_bytes`) and the
ignored paths a call names, 64 MiB a call; a warm machine keeps ``/tmp`` between calls (its 30 s). The payload (each
PATH, a file or a folder, stored as NAME in one uncompressed tar: the student as its xz'd GGUF, the semantic
decontamination's package folders, the curations to reuse) is cut into ``part-NN`` files so that each call's part,
with the tree and, in the first call, the ``--first`` folders (the wheels), stays ``--margin-mib`` under the limit.
``calls.txt`` gives, a line each, the paths to carry and the command: every call but the last copies its part to
``/tmp/device_parts``; the last joins them and unpacks the payload into ``/tmp/device_payload`` (then run what needs
it in the same call, e.g. bench/experiments/ablations_gpu.sh with ``--model /tmp/device_payload/<NAME>``).
bench/README.md ("Ablations on a GPU machine") says how RISE's runs used it. Run it from the repository root, with the
parts' folder ignored (``.git/info/exclude``), or its parts would count as tree.
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

from gpu_wheels import MIB, tree_bytes  # beside it: a script's folder is first on sys.path (bench/ is no package)

STAGING = "/tmp/device_parts"
PAYLOAD = "/tmp/device_payload"


def folder_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def part_sizes(total: int, room: int, first_room: int) -> list[int]:
    """Sizes of the parts of ``total`` bytes: the first at most ``first_room``, the others at most ``room``."""
    if room <= 0 or first_room < 0:
        raise SystemExit("device_parts: error: the working tree (and --first) leave no room in a call")
    sizes, left = [], total
    while left > 0 or not sizes:
        size = min(left, first_room if not sizes else room)
        sizes.append(size)
        left -= size
    return sizes


def write_parts(payload: Path, out: Path, sizes: list[int]) -> list[Path]:
    parts = []
    with payload.open("rb") as source:
        for i, size in enumerate(sizes):
            part = out / f"part-{i:02d}"
            part.write_bytes(source.read(size))
            parts.append(part)
    return parts


def calls(parts: list[Path], first: list[str]) -> list[tuple[list[str], str]]:
    """(carry, command) of each call, in order."""
    rows = []
    for i, part in enumerate(parts):
        carry = [*(first if i == 0 else []), str(part)]
        if i < len(parts) - 1:
            command = f"mkdir -p {STAGING} && cp {part} {STAGING}/"
        else:
            joined = " ".join([*(f"{STAGING}/{p.name}" for p in parts[:-1]), str(part)])
            command = f"mkdir -p {PAYLOAD} && cat {joined} | tar -x -C {PAYLOAD}"
        rows.append((carry, command))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("items", nargs="+", metavar="NAME=PATH", help="a file or folder, stored as NAME")
    parser.add_argument("--out", type=Path, required=True, help="the parts' folder (ignored by git)")
    parser.add_argument("--first", action="append", default=[], help="a folder the first call carries too")
    parser.add_argument("--limit-mib", type=float, default=64.0)
    parser.add_argument("--margin-mib", type=float, default=1.0)
    parser.add_argument("--tree-bytes", type=int, default=None, help="the tree's size (default: measured)")
    args = parser.parse_args(argv)
    items = []
    for item in args.items:
        name, _, path = item.partition("=")
        if not name or not path or not Path(path).exists():
            raise SystemExit(f"device_parts: error: {item!r}: expected NAME=PATH with PATH an existing file or folder")
        items.append((name, Path(path)))
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("part-*"):
        old.unlink()
    payload = args.out / "payload.tar"
    with tarfile.open(payload, "w") as tar:
        for name, path in items:
            tar.add(path, arcname=name)
    tree = tree_bytes() if args.tree_bytes is None else args.tree_bytes
    room = int((args.limit_mib - args.margin_mib) * MIB) - tree
    first = sum(folder_bytes(Path(f)) for f in args.first)
    sizes = part_sizes(payload.stat().st_size, room, room - first)
    parts = write_parts(payload, args.out, sizes)
    payload.unlink()
    lines = [f"carry {' '.join(carry)}\nrun   {command}" for carry, command in calls(parts, args.first)]
    (args.out / "calls.txt").write_text("\n".join(lines) + "\n")
    print(
        f"{len(parts)} calls: payload {sum(sizes) / MIB:.1f} MiB in parts of at most {room / MIB:.1f} MiB "
        f"(tree {tree / MIB:.1f} MiB; the first call also {first / MIB:.1f} MiB of {', '.join(args.first) or '-'})"
    )
    print((args.out / "calls.txt").read_text(), end="")


if __name__ == "__main__":
    main()
