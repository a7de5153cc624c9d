"""``python -m limo.<entry> --help`` (or ``-h``): what the command does, its main arguments, two examples.

One table, `USAGES`, holds every entry point's help; `render` lays one out (under 40 lines, tests/test_help.py),
and `exit_if_help` is what an entry point calls first: the Hydra entry points through `limo.cli.entry.hydra_entry`,
the others (demo, explore, serve) at the top of their ``main``. The whole composed config, every key with its
value, stays Hydra's: ``--cfg job`` (``--info``, ``--hydra-help`` too), which the help names.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

HELP_FLAGS = ("--help", "-h")
RECIPE = ("recipe=<name>", "the experiment: recipes/recipe/<name>.yaml, or DIR/recipe/<name>.yaml")
CONFIG_DIR = ("--config-dir DIR", "a folder of your own recipes (DIR/recipe/) read beside the shipped ones")
COLUMN = 35  # arguments longer than this push their own description right
OUTPUT_DIR = ("output_dir=<dir>", "the run folder (default outputs/<recipe>)")
DEBUG = ("debug=true", "a traceback instead of the one-line error")


@dataclass(frozen=True)
class Usage:
    """One entry point's help.

    Attributes:
        synopsis: The command line, after ``python -m limo.<entry>``.
        summary: What the command does and what it writes (a few short lines).
        arguments: ``(argument, what it does)`` pairs, the ones that matter most.
        examples: Two command lines that run as written from the repository root.
        config: Where the whole configuration is; None: the composed recipe, through Hydra's ``--cfg job``.
        docs: The page that says more.
    """

    synopsis: str
    summary: str
    arguments: tuple[tuple[str, str], ...]
    examples: tuple[str, ...]
    config: str | None = None
    docs: str = "README.md"


USAGES: dict[str, Usage] = {
    "curate": Usage(
        "recipe=<name> [key=value ...]",
        "Curate a training set from a pool of problems and chains (ingest, answer check, dedup, decontamination,\n"
        "difficulty, selection). Writes <output_dir>/curate/: curated.jsonl, messages.jsonl, report.html.",
        (
            RECIPE,
            OUTPUT_DIR,
            ("data_dir=<dir>", "local benchmark files for decontamination (shared/data layout)"),
            (
                "curate.stages.ingest.source=<file>",
                "your pool: JSONL / JSON / CSV / parquet, a dataset folder, a hub id",
            ),
            ("curate.stages.ingest.field_map.<ours>=<column>", "which column holds problem, chain, answer, id"),
            ("executor=local|ray|slurm", "where sharded work runs (the same chains are selected on each)"),
            ("dry_run=true", "print the rollout spend plan and exit"),
            CONFIG_DIR,
            DEBUG,
        ),
        (
            "python -m limo.curate recipe=champ data_dir=../shared/data",
            "python -m limo.curate --config-dir my_conf recipe=mine output_dir=outputs/mine",
        ),
        docs="docs/curation.md",
    ),
    "train": Usage(
        "recipe=<name> [key=value ...]",
        "Fine-tune a model with TRL (SFT, weighted SFT, DPO, GRPO) on the run's curated data.\n"
        "Writes <output_dir>/train/: model/, plan.json, config.yaml, log_history.json.",
        (
            RECIPE,
            OUTPUT_DIR,
            ("train.data=<file>", "train on this messages.jsonl / pairs.jsonl (default <output_dir>/curate/)"),
            (
                "train.args.<field>=<value>",
                "any TRL SFTConfig / DPOConfig field (learning_rate, num_train_epochs, ...)",
            ),
            ("model=<group> | model.path=<dir>", "the base model (a recipes/model/ file, or a folder or hub id)"),
            ("deepspeed=zero2|zero3|zero3_offload", "DeepSpeed ZeRO stage (GPUs)"),
            ("train.resume=true", "continue from the last checkpoint"),
            ("-m key=a,b", "a sweep: one job per value, each in <output_dir>/multirun/<job>/"),
            CONFIG_DIR,
        ),
        (
            "python -m limo.train recipe=demo",
            "torchrun --standalone --nproc_per_node 8 -m limo.train recipe=limo deepspeed=zero3",
        ),
        docs="docs/training.md",
    ),
    "evaluate": Usage(
        "recipe=<name> [benchmarks=[...]] [key=value ...]",
        "Sample a model's answers on benchmarks and grade them; or regrade saved responses, or compare two runs.\n"
        "Writes <output_dir>/eval/<benchmark>/: samples.jsonl, summary.json, report.md, report.html.",
        (
            RECIPE,
            ("benchmarks=[math500,aime24]", "which benchmarks (limo_suite: LIMO's ten)"),
            ("model.path=<dir or hub id>", "evaluate this model (wins over the recipe's evaluate.model_path)"),
            ("evaluate.model_path=null", "evaluate the recipe's base model (model.path) instead of train/model"),
            ("data_dir=<dir>", "load benchmark files from this folder instead of the hub"),
            ("limit=N", "only the first N problems of each benchmark"),
            ("mode=generate|multiturn|regrade|compare", "regrade: run_dir=<dir>; compare: runs=[<dirA>,<dirB>]"),
            ("evaluate.backend=hf|vllm|openai|llamacpp|replay", "how answers are generated (llamacpp: make llamacpp)"),
            OUTPUT_DIR,
            CONFIG_DIR,
        ),
        (
            "python -m limo.evaluate recipe=demo benchmarks=[champ_heldout] evaluate.model_path=null limit=5",
            "python -m limo.evaluate recipe=limo benchmarks=[math500,aime24] data_dir=../shared/data",
        ),
        docs="docs/evaluation.md",
    ),
    "plan": Usage(
        "recipe=<name> num_gpus=N [num_nodes=M] [key=value ...]",
        "Say whether a recipe's training fits the hardware: per-GPU and CPU memory under its ZeRO stage, the usual\n"
        "alternatives, and for GRPO the generation plan and GPU-hours. Offline, in seconds; starts nothing.",
        (
            RECIPE,
            ("num_gpus=N", "GPUs per node"),
            ("num_nodes=M", "nodes (default 1)"),
            ("gpu_memory_gb=80", "memory of one GPU"),
            ("deepspeed=zero2|zero3|zero3_offload", "plan for another ZeRO stage"),
            ("gpu_type=H100-80GB", "the GPU whose throughput prices GRPO generation"),
            CONFIG_DIR,
        ),
        (
            "python -m limo.plan recipe=limo num_gpus=8 num_nodes=2",
            "python -m limo.plan recipe=rlvr num_gpus=4 gpu_memory_gb=40",
        ),
        docs="docs/training.md",
    ),
    "discover": Usage(
        "recipe=discover [key=value ...]",
        "DiscoPOP's loop: a model proposes preference losses as code; each is checked, trained briefly in a\n"
        "confined worker and scored. Writes <output_dir>/discover/: archive.jsonl, report.md. Resumes after a stop.",
        (
            RECIPE,
            OUTPUT_DIR,
            ("discover.generations=N", "how many rounds of proposals"),
            ("discover.proposer.backend=replay", "serve proposals from a file (with discover.proposer.path=<file>)"),
            CONFIG_DIR,
            DEBUG,
        ),
        (
            "python -m limo.discover recipe=discover",
            "python -m limo.discover recipe=discover discover.generations=2 output_dir=outputs/disc",
        ),
    ),
    "ablate": Usage(
        "recipe=<name> [--jobs N | executor=ray|slurm] [--deadline 2h] [--report-only] [key=value ...]",
        "Does curation beat chance at equal compute? Curate every arm of the recipe's ablate: section (curations,\n"
        "and the baselines random, random_correct, random_problems, all, all_correct), train and evaluate each at\n"
        "every seed (and draw) with limo's own commands, then compare: accuracy with 95% intervals, compute,\n"
        "paired tests. An arm with after: <arm> goes on from that arm's run of each seed (RL after SFT).\n"
        "Every finished run is kept in results/<name>/ (commit it: no weights), and the tables in\n"
        "<output_dir>/ablate/ (results.md, results.json, report.html) are made from there; a run kept there is done\n"
        "on any machine. A rerun reuses what finished with the same settings and runs again what a change touches.\n"
        "Stopped by --deadline or SIGTERM it prints runs done of runs planned and the command that goes on (exit 75).",
        (
            RECIPE,
            OUTPUT_DIR,
            ("--jobs N", "runs side by side on this machine (or one GPU)"),
            ("executor=ray|slurm", "one job per arm and seed on a cluster (a shared output_dir; not with --jobs)"),
            ("--deadline 2h, --until 14:30", "start only runs predicted to end in time, seed by seed; stop at it"),
            ("--report-only", "the tables from results/<name>/ alone: nothing curated, trained or evaluated"),
            ("--results-dir DIR", "keep the runs in DIR (default results/<name>, or <output_dir>/results)"),
            ("--write-docs", "alone: rewrite docs/results.md's ablation blocks from results/"),
            ("--accept-old-markers", "keep output an older limo marked (or left unmarked) as made by these settings"),
            ("ablate.seeds=[0,1,2]", "training seeds; ablate.draws=3: selection seeds of the random arms"),
            ("benchmark_specs.<name>={...}", "add a benchmark to every run's evaluation, as for limo.evaluate"),
            ("model.path=... train.args....", "any other key=value goes to the curate/train/evaluate commands"),
            CONFIG_DIR,
        ),
        (
            "python -m limo.ablate recipe=ablate_demo",
            "python -m limo.ablate recipe=smol_ablate_lemma --jobs 2 --deadline 8h",
        ),
        config="the recipe's ablate: section, with the rest: python -m limo.curate recipe=<name> --cfg job",
        docs="docs/ablation.md",
    ),
    "export": Usage(
        "[recipe=<name>] [model.path=<folder>] [export.types=[f16,q8_0]] [key=value ...]",
        "Convert a trained model to GGUF for llama.cpp and Ollama (llama.cpp's converter where make llamacpp\n"
        "installed it, else limo's writer); each file is read back, served by llama-server where installed, and\n"
        "compared with the source model before it is kept. Writes <output_dir>/export/: <name>.<type>.gguf, an\n"
        "Ollama <name>.<type>.Modelfile beside each, export.json.",
        (
            ("recipe=<name>", "the run whose train/model is exported"),
            ("model.path=<folder>", "export this model folder instead (a PEFT adapter is merged onto its base)"),
            ("export.types=[f16,q8_0]", "GGUF types to write: f32, f16, q8_0, q4_k_m (needs llama.cpp)"),
            ("export.converter=auto", "auto | llamacpp | limo: who writes the files"),
            ("export.name=<name>", "the files' name (default: the run's, or the model folder's)"),
            ("export.dir=<dir>", "where they go (default <output_dir>/export)"),
            OUTPUT_DIR,
            CONFIG_DIR,
        ),
        (
            "python -m limo.export recipe=demo",
            "python -m limo.export model.path=outputs/limo/train/model export.types=[q8_0,q4_k_m]",
        ),
    ),
    "demo": Usage(
        "[output_dir=<dir>] [--config-dir DIR]",
        "LIMO in miniature on a real model, on a CPU (recipe smol_limo): measure SmolLM2-135M-Instruct on 64\n"
        "held-out arithmetic problems, curate 200 of 2,000 candidate chains, fine-tune it (LoRA), measure again,\n"
        "and compare (both accuracies, 95% intervals, a paired test). Each stage runs as its own command;\n"
        "<output_dir>/demo_report.md lists them, their times and where each report is.",
        (
            ("output_dir=<dir>", "the run folder (default outputs/demo)"),
            ("data_dir=<dir>", "accepted for make's sake; the demo's data ships with limo"),
            CONFIG_DIR,
            ("hydra.searchpath=[file://DIR]", "the same, Hydra's way"),
        ),
        ("python -m limo.demo", "python -m limo.demo output_dir=/tmp/demo"),
        config="each stage's, e.g. python -m limo.train recipe=smol_limo --cfg job",
    ),
    "explore": Usage(
        "[run_dir=<output_dir>/curate]",
        "Run the exploration notebook (curation/explore.ipynb) headless on a curation run and write the executed\n"
        "copy, plots included, to <run_dir>/explore.ipynb (opens in Jupyter, VS Code or GitHub).",
        (("run_dir=<dir>", "a curation run's curate/ folder (default outputs/demo/curate)"),),
        ("python -m limo.explore", "python -m limo.explore run_dir=outputs/champ/curate"),
        config="none of its own; the curation run's: python -m limo.curate recipe=champ --cfg job",
        docs="README.md (make explore)",
    ),
    "serve": Usage(
        "--model <dir or hub id> [--port 8000]",
        "Put a local model behind an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models),\n"
        "for evaluate.backend=openai or any OpenAI client.",
        (
            ("--model <dir or hub id>", "the model (HF format)"),
            ("--name <name>", "the model name the server reports (default: --model)"),
            ("--host 127.0.0.1 --port 8000", "where it listens"),
            ("--dtype float32 --device cpu|cuda", "how the model is loaded"),
        ),
        (
            "python -m limo.serve --model outputs/demo/train/model",
            "python -m limo.serve --model Qwen/Qwen2.5-0.5B --port 9000",
        ),
        config="none, these flags are all of it (evaluate.backend=openai with backend_options points at it)",
        docs="docs/evaluation.md",
    ),
}


def render(entry: str) -> str:
    """The help of ``limo.<entry>``."""
    usage = USAGES[entry]
    width = min(COLUMN, max(len(arg) for arg, _ in usage.arguments))
    config = usage.config or f"python -m limo.{entry} recipe=<name> --cfg job (every key with its value; --info)"
    lines = [f"usage: python -m limo.{entry} {usage.synopsis}", "", *usage.summary.splitlines(), "", "Arguments:"]
    lines += [f"  {arg:<{width}}  {what}" for arg, what in usage.arguments]
    lines += ["", "Examples:", *[f"  {example}" for example in usage.examples], ""]
    lines += [f"Full config: {config}", f"More: {usage.docs}"]
    return "\n".join(lines)


def help_requested(argv: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


def exit_if_help(entry: str, argv: Sequence[str]) -> None:
    """Print ``limo.<entry>``'s help and exit 0 when ``argv`` asks for it (``--help``, ``-h``); an entry with no
    `USAGES` row is left to its tool's own help (tests/test_help.py fails on such an entry)."""
    if help_requested(argv) and entry in USAGES:  # an entry without a row keeps its tool's own help
        print(render(entry))
        sys.exit(0)
