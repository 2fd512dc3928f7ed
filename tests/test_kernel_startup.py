"""A fresh kernel runs cells before rust-analyzer has indexed the library (evcxr's background
analysis, third_party/evcxr/PATCHES.md): variables defined meanwhile get their types once the
analysis is done, cells that do not use them do not wait for it, and what needs the types
(a cell using them, `:vars`, completion) waits and then sees them."""

import pytest

from helpers import Kernel


@pytest.fixture(scope="module")
def fresh():
    """A kernel whose first cell runs right after launch: rust-analyzer is still indexing."""
    k = Kernel()
    yield k
    k.close()


def test_first_cells_run_while_the_analysis_starts(fresh):
    # The first cell after launch: the library's analysis takes seconds more, this cell does not
    # wait for it. `doubled` has a type no one can write (it holds a closure): before background
    # analysis, that failed the whole cell.
    first = fresh.run("let doubled = (1..4).map(|x| x * 2);\nlet kept = 5;\nlet mut v = vec![1u8];")
    assert first.status == "ok", first.reply["content"]
    # Does not mention them: runs at once, they stay in the cell process.
    assert fresh.run("1 + 1").result() == "2"
    assert fresh.run("let s = String::from(\"later\"); s.len()").result() == "5"
    # Uses them: waits for their types, then has them; `doubled` could not be kept, and says so.
    used = fresh.run("v.push(2);\n(kept, v.len())")
    assert used.status == "ok", used.reply["content"]
    assert used.result() == "(5, 2)"
    assert "`doubled`" in used.stdout and "dropped" in used.stdout, used.stdout
    listed = fresh.run(":vars").result()
    for line in ("kept: i32", "v: Vec<u8>", "s: String"):
        assert line in listed, listed
    assert "doubled" not in listed
    assert fresh.run("s.to_uppercase()").result() == '"LATER"'


def test_completion_sees_variables_of_the_first_cells(fresh):
    assert fresh.run("let greeting_early = String::from(\"hi\");").status == "ok"
    code = "greeting_early.to_up"
    msg_id = fresh.client.complete(code, len(code))
    reply = fresh.client.get_shell_msg(timeout=120)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert any(m.startswith("to_uppercase") for m in reply["content"]["matches"]), reply["content"]


def test_a_closure_without_a_type_is_refused_as_before(fresh):
    cell = fresh.run("let add_one = |x: i32| x + 1;")
    assert cell.status == "error"
    assert "is a closure, which cannot be persisted" in cell.reply["content"]["evalue"]
    # boxed, it is kept
    assert fresh.run("let add_two: Box<dyn Fn(i32) -> i32> = Box::new(|x| x + 2);").status == "ok"
    assert fresh.run("add_two(1)").result() == "3"
