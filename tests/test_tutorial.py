"""notebooks/00_notebook_tutorial.ipynb runs top to bottom through the real runner (nbclient +
the fastai kernel) without a failing cell, and each of its demonstrations shows what its text
says it shows."""

import os

import pytest

from helpers import ROOT, assert_every_cell_ran, cell, outputs, result, run_notebook, stdout

NOTEBOOK = os.path.join(ROOT, "notebooks", "00_notebook_tutorial.ipynb")


@pytest.fixture(scope="module")
def nb(tmp_path_factory):
    _, nb = run_notebook(NOTEBOOK, tmp_path_factory.mktemp("tutorial") / "tutorial.ipynb")
    return nb


def test_every_cell_runs_and_none_fails(nb):
    assert_every_cell_ran(nb)


def test_what_a_cell_shows(nb):
    assert result(cell(nb, "1 + 2")) == "3"
    c = cell(nb, "let answer = 6 * 7;")
    assert stdout(c) == "this line is printed while the cell runs\nthe answer is 42\n"
    assert result(c) == "42"
    assert cell(nb, "let not_shown").outputs == []  # a `;` at the end shows nothing


def test_variables_functions_and_closures_carry_over(nb):
    assert result(cell(nb, "count += 1;")) == '"Hello from Rust: this cell has run 1 time(s)"'
    vars_ = result(cell(nb, ":vars"))
    for line in ("count: i32", "answer: i32", "name: &str"):
        assert line in vars_, vars_
    assert result(cell(nb, "fn square")) == "144"
    assert result(cell(nb, "let squares")) == "[1, 4, 9, 16, 25]"


def test_rich_outputs(nb):
    (img,) = outputs(cell(nb, "RgbImage::from_fn"), "display_data")
    assert img["data"]["image/png"] and img["data"]["text/plain"] == "a generated gradient"
    (html,) = outputs(cell(nb, "Rich::html("), "display_data")
    assert "<td>Bengal</td>" in html["data"]["text/html"]
    c = cell(nb, "DisplayHandle::new")
    (shown,) = outputs(c, "display_data")
    assert shown["data"]["text/plain"] == "step 5 of 5"  # updated in place: one output, its last state
    assert stdout(c) == "done\n"


def test_errors_are_shown_without_failing(nb):
    assert cell(nb, '// let n: i32 = "seven";').outputs == []
    c = cell(nb, 'get_image_files("/no/such/folder")')
    assert stdout(c) == "the call failed: /no/such/folder is not a folder (it does not exist)\n"
    assert result(c) == "true"
    assert int(result(cell(nb, "fashion_mnist_dir()"))) > 0
    c = cell(nb, "v.get(10)")
    assert stdout(c) == "v.get(1) = Some(20), v.get(10) = None\n"
    assert result(c) == "true"


def test_interrupt_loop_and_kernel_commands(nb):
    assert result(cell(nb, "interrupted()")) == "20"  # nobody pressed stop: all steps ran
    help_text = result(cell(nb, ":help"))
    for command in (":dep", ":vars", ":clear"):
        assert command in help_text, help_text
