"""Which chat template and end-of-turn token a run's model uses, where each comes from, and the check that there is a
template at all before anything loads.

A model either ships its own chat template (SmolLM2's ChatML, Qwen's) or it does not (a base model such as Gemma 3
270M, whose GGUF file holds none); then its model group supplies one: ``model.chat_template``, a Jinja file
(``recipes/templates/gemma3_instruct.jinja``), relative paths read from the working directory or the shipped
recipes' folder. The group also names the token that ends an assistant turn, ``model.eos_token``: the token the
template closes a turn with, which training trains and generation stops at. It may differ from the model's own EOS
(Gemma: ``<end_of_turn>``, id 106, against ``<eos>``, id 1), so the plan line says which it is and where it came from.

A model with no template, and no group template, cannot be trained or asked anything: transformers would fail at the
first prompt ("tokenizer.chat_template is not set"), after the model was converted and loaded. `require_chat_template`
reads the model's files instead (`eval.backends.model_source.chat_facts`: a folder's tokenizer files or a GGUF header)
and stops with one line naming ``model.chat_template``, and the model groups whose template fits the model's
architecture (a group's ``template_for`` list, matched against GGUF ``general.architecture`` or config.json
``model_type``): what is specific to a family stays in its group file, none of it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eval.backends.model_source import ChatFacts, chat_facts
from eval.options import OptionsError
from limo.config.search_path import find_config, group_options, search_dirs
from limo.config.sections import resolve_path

TEMPLATE_KEY = "model.chat_template"


@dataclass(frozen=True)
class ChatSetup:
    """The template and end-of-turn token a run uses, each with where it comes from (for the plan line)."""

    template: str
    eos_token: str
    eos_origin: str

    def line(self) -> str:
        return f"chat template: {self.template}; end of turn: {self.eos_token} ({self.eos_origin})"

    def to_dict(self) -> dict[str, str]:
        return {"template": self.template, "eos_token": self.eos_token, "eos_origin": self.eos_origin}


def group_template_file(model_cfg: Mapping[str, Any], key: str = TEMPLATE_KEY) -> Path | None:
    """The file ``model.chat_template`` names (None when null); ``key`` is where the value was set.

    Raises:
        OptionsError: It names no file (naming the key and the folders a relative path was looked up in).
    """
    given = model_cfg.get("chat_template")
    if not given:
        return None
    found = Path(str(resolve_path(str(given)))).expanduser()
    if not found.is_file():
        raise OptionsError(
            f"no chat template file {given} (looked up from the working directory and the shipped recipes' folder), "
            f"{key}",
            key=key,
        )
    return found


def group_template_text(model_cfg: Mapping[str, Any]) -> str | None:
    """The Jinja text of ``model.chat_template`` (None when null: the model's own template applies)."""
    found = group_template_file(model_cfg)
    return found.read_text(encoding="utf-8") if found else None


def require_chat_template(
    model_cfg: Mapping[str, Any], model_path: str | None = None, key: str = TEMPLATE_KEY
) -> ChatSetup:
    """The run's `ChatSetup`, after checking there is a template: the group's, or the model's own.

    ``model_path`` is the model the entry will load (default ``model.path``): a folder, ``.gguf`` file, ``pkg:`` model
    or hub id. Its files are read, nothing is loaded or converted; a hub id's cannot be read here, and its template
    is trusted to exist. ``key`` is the option that supplies a template where the model has none (curation's
    student: ``curate.student.chat_template``).

    Raises:
        OptionsError: Neither the group nor the model has a template (one line naming ``key`` and the groups that
            supply one for this architecture), or ``key`` names no file.
    """
    path = str(model_path or model_cfg["path"])
    template_file = group_template_file(model_cfg, key)
    facts = chat_facts(path)
    if template_file is None and facts is not None and not facts.template:
        raise OptionsError(missing_template_message(path, facts, key), key=key)
    eos = str(model_cfg.get("eos_token") or (facts.eos_token if facts else "") or "")
    given = str(model_cfg["chat_template"]) if template_file else None
    return ChatSetup(template_origin(given, facts), eos, eos_origin(eos, facts))


def template_origin(given: str | None, facts: ChatFacts | None) -> str:
    """Where the run's template comes from, in words (``given``: the value of ``model.chat_template``)."""
    if given is None:
        return "the model's own" if facts is not None else "the model's own (on the hub: not read before loading)"
    replaced = "replacing the model's own" if facts is not None and facts.template else "the model ships none"
    return f"{given}, the model group's ({TEMPLATE_KEY}; {replaced})"


def eos_origin(eos: str, facts: ChatFacts | None) -> str:
    """Whether ``model.eos_token`` is the model's own EOS or a token the group names instead."""
    if facts is None or not facts.eos_token:
        return "model.eos_token"
    if facts.eos_token == eos:
        return "model.eos_token, the model's own EOS"
    return f"model.eos_token, the group's; the model's own EOS is {facts.eos_token}"


def missing_template_message(path: str, facts: ChatFacts, key: str = TEMPLATE_KEY) -> str:
    """One line: the model has no template, what to set, and which groups supply one for its architecture."""
    groups = groups_with_template(facts.architecture)
    named = ", ".join(f"model={name} ({file})" for name, file in groups)
    hint = (
        f"; for {facts.architecture} a model group has both: {named}, with model.path={path} to keep this model"
        if groups
        else ""
    )
    return (
        f"the model {path} has no chat template (a base model, or one saved without it) and {key} is null: set "
        f"{key}=<Jinja file> (and model.eos_token=<the token it ends a turn with>){hint}, {key}"
    )


def groups_with_template(architecture: str | None) -> list[tuple[str, str]]:
    """``(group name, template file)`` of every model group (shipped or on the search path) whose ``template_for``
    lists ``architecture`` and which sets ``chat_template``."""
    if not architecture:
        return []
    dirs = search_dirs()
    found = []
    for name in group_options("model", dirs):
        path = find_config("model", name, dirs)
        group = (yaml.safe_load(path.read_text(encoding="utf-8")) if path else None) or {}
        if architecture in (group.get("template_for") or ()) and group.get("chat_template"):
            found.append((name, str(group["chat_template"])))
    return found
