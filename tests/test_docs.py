"""The documents say what runs: every `dvc exp run -S` command in README.md, docs/ and the Makefile names
parameters that params.yaml has (DVC applies -S in struct mode, through Hydra, and stops on an unknown
key) and gives values that the stages accept when params.yaml is loaded, changing no other line of it (DVC
writes the file back whole: a list in flow style, or a comment after a list, would not survive); every relative
link resolves."""
import re
import shlex
import shutil

import pytest
from dvc.utils.hydra import apply_overrides

from conftest import REPO
from xaug.params import load_params

DOCUMENTS = [REPO / "README.md", REPO / "Makefile", *sorted((REPO / "docs").glob("*.md"))]
PLACEHOLDERS = {"group.key=value"}  # the syntax itself, as params.md explains it


def code_spans(text: str) -> list[str]:
    """The inline code spans of a document (fenced blocks' fences read as line breaks)."""
    return re.findall(r"`([^`]+)`", text.replace("```", "\n"))


def commands(text: str) -> list[str]:
    """The `dvc exp run ...` commands of a document: shell continuations joined, inline code spans that
    wrap across lines joined, each command up to the end of its line or code span."""
    text = re.sub(r"\\\n\s*", " ", text)
    lines = text.splitlines() + [s.replace("\n", " ") for s in code_spans(text)]
    found = []
    for line in lines:
        for match in re.finditer(r"dvc exp run((?:\s+-S\s+(?:'[^']*'|\"[^\"]*\"|[^\s`]+))+)", line):
            found.append("dvc exp run" + match.group(1))
    return list(dict.fromkeys(found))  # a command both on a line and in a code span, once


def make_commands(text: str) -> list[str]:
    """The `dvc exp run` commands of a Makefile as make runs them with every variable set: `$(if $(X),Y)` read
    as Y, `$(NAME)` replaced by the value the Makefile assigns it (SOURCE's stays a placeholder)."""
    text = re.sub(r"\\\n\s*", " ", text)
    assigned = dict(re.findall(r"^([A-Z_]+)\s*[:?]?=[ \t]*(.*)$", text, flags=re.M))
    expanded = []
    for line in (line for line in text.splitlines() if "dvc exp run" in line):
        while (new := re.sub(r"\$\(if \$\([A-Z_]+\),([^()]*(?:\$\([A-Z_]+\)[^()]*)*)\)", r"\1", line)) != line:
            line = new
        line = re.sub(r"\$\((?!SOURCE\))([A-Z_]+)\)", lambda m: assigned.get(m.group(1), ""), line)
        expanded.append(line)
    return commands("\n".join(expanded))


def document_commands(doc) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    return make_commands(text) if doc.name == "Makefile" else commands(text)


def overrides(command: str) -> list[str]:
    words = shlex.split(command)
    values = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-S"]
    return [v.replace("$(SOURCE)", "../shared/data/MLQA_V1_dev.zip") for v in values if v not in PLACEHOLDERS]


def documented():
    for doc in DOCUMENTS:
        for command in document_commands(doc):
            if overrides(command):  # not the syntax example alone
                yield pytest.param(command, id=f"{doc.name}: {command[12:60]}")


def test_the_documents_have_commands():
    found = [c for doc in DOCUMENTS for c in document_commands(doc)]
    assert len(found) >= 8 and any("n_languages=4" in c for c in found)
    assert overrides("dvc exp run -S 'methods=[xqg]' -S \"index.factory='IVF64,Flat'\"") == \
        ["methods=[xqg]", "index.factory='IVF64,Flat'"]


def test_the_makefile_commands_are_read_as_make_runs_them():
    (quick,) = make_commands((REPO / "Makefile").read_text(encoding="utf-8"))
    values = overrides(quick)
    assert values[0] == "data.source=../shared/data/MLQA_V1_dev.zip" and "xqg.n_queries=1" in values
    assert "scaling.seeds=[]" in values and not any("$(" in v for v in values)


@pytest.mark.parametrize("command", list(documented()))
def test_documented_command_applies_to_params(command, tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    values = overrides(command)
    assert values, command
    before = params.read_text(encoding="utf-8")
    apply_overrides(params, values)  # DVC's own -S: an unknown key raises
    load_params(params)  # and the stages' load-time checks accept the result
    after = params.read_text(encoding="utf-8")  # what the workspace's params.yaml becomes: only values change
    assert re.findall(r"#.*", after) == re.findall(r"#.*", before), "a comment of params.yaml lost"
    assert after.count("\n\n") == before.count("\n\n"), "a blank line of params.yaml lost"


def test_a_setting_leaves_every_other_line_of_params_as_it_is(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    apply_overrides(params, ["data.source=../shared/data/MLQA_V1_dev.zip"])  # make repro SOURCE=...
    before = (REPO / "params.yaml").read_text(encoding="utf-8").splitlines()
    after = params.read_text(encoding="utf-8").splitlines()
    assert len(after) == len(before)
    assert [a for a, b in zip(after, before) if a != b] == ["  source: ../shared/data/MLQA_V1_dev.zip"]


def settings_in_prose(text: str) -> list[str]:
    """The code spans of a document that are `-S` settings alone (added to a command given before them)."""
    return [s for s in (" ".join(s.split()) for s in code_spans(text)) if re.fullmatch(r"(?:-S\s+\S+\s*)+", s)]


@pytest.mark.parametrize("doc", [d for d in DOCUMENTS if d.suffix == ".md"], ids=lambda d: d.name)
def test_settings_in_prose_name_keys_params_has(doc, tmp_path):
    params = tmp_path / "params.yaml"
    for span in settings_in_prose(doc.read_text(encoding="utf-8")):
        shutil.copy(REPO / "params.yaml", params)
        apply_overrides(params, overrides(span))  # DVC's own -S: an unknown key raises


def test_settings_in_prose_are_found():
    assert settings_in_prose("Add `-S a.b=1 -S c=2` to it, or `-S d=x`; not `dvc repro -f cost`.") == \
        ["-S a.b=1 -S c=2", "-S d=x"]
    found = [s for d in DOCUMENTS if d.suffix == ".md" for s in settings_in_prose(d.read_text(encoding="utf-8"))]
    assert any("augment.xqg.alpha=0.01" in s for s in found)


def test_an_unknown_key_is_refused_as_dvc_refuses_it(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    with pytest.raises(Exception) as refused:
        apply_overrides(params, ["xdr.train_layers=0"])
    assert "train_layers" in f"{refused.value} {refused.value.__cause__}"


@pytest.mark.parametrize("doc", [d for d in DOCUMENTS if d.suffix == ".md"], ids=lambda d: d.name)
def test_relative_links_resolve(doc):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
        if "://" not in target:
            assert (doc.parent / target).exists(), f"{doc.name}: {target}"
