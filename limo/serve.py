"""`python -m limo.serve --model <dir> [--port 8000]`: put a local checkpoint behind an OpenAI-compatible API.

The server is `eval.backends.server.ChatServer` over the hf backend (``POST /v1/chat/completions``,
``GET /v1/models``). A plain argparse CLI rather than Hydra: it takes a model folder and a port, not a recipe.
"""

from __future__ import annotations

import argparse
import logging
import sys

from eval.backends.server import ChatServer
from limo.cli.usage import exit_if_help


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags; ``--help`` (``-h``) prints `limo.cli.usage`'s help, as every entry point does."""
    exit_if_help("serve", sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="limo.serve", add_help=False)
    parser.add_argument("--model", required=True, help="model folder (HF format) or hub id")
    parser.add_argument("--name", default=None, help="model name reported by the server (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from eval.backends.hf import HFBackend  # deferred: imports torch and transformers

    backend = HFBackend(args.model, dtype=args.dtype, device=args.device, batch_size=1)
    server = ChatServer((args.host, args.port), backend, args.name or args.model)
    print(f"[serve] {args.model} at {server.base_url} (POST /chat/completions, GET /models)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
