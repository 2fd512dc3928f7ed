"""The fastai kernel speaks Jupyter: cells run, state persists, output streams, errors are errors,
completion works, and a message with a bad signature is never executed."""

import json

import zmq
from jupyter_client.session import Session


def test_variables_persist_across_cells(kernel):
    assert kernel.run("let answer = 40 + 2;").status == "ok"
    cell = kernel.run("answer * 10")
    assert cell.status == "ok"
    assert cell.result() == "420"


def test_stdout_and_stderr_are_streamed(kernel):
    cell = kernel.run('println!("to stdout"); eprintln!("to stderr");')
    assert cell.status == "ok"
    assert cell.stdout == "to stdout\n"
    assert "to stderr\n" in cell.stderr


def test_compile_error_is_an_error_with_the_cells_line(kernel):
    cell = kernel.run('let n: i32 = "text";')
    assert cell.status == "error"
    (err,) = cell.of_type("error")
    assert err["ename"] == "CompilationError"
    assert "mismatched types" in err["evalue"]
    text = "\n".join(err["traceback"])
    assert 'let n: i32 = "text";' in text and "^" in text


def test_panic_is_an_error_and_earlier_state_survives(kernel):
    kernel.run("let kept = 7;")
    cell = kernel.run('panic!("deliberate failure");')
    assert cell.status == "error"
    assert cell.reply["content"]["ename"] == "panic"
    assert "deliberate failure" in cell.reply["content"]["evalue"]
    assert kernel.run("kept + 1").result() == "8"


def test_completion_offers_methods(kernel):
    kernel.run('let greeting = String::from("hi");')
    code = "greeting.to_up"
    msg_id = kernel.client.complete(code, len(code))
    reply = kernel.client.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    content = reply["content"]
    assert any(m.startswith("to_uppercase") for m in content["matches"]), content
    assert content["cursor_start"] == len("greeting.")
    assert content["cursor_end"] == len(code)


def test_is_complete(kernel):
    kernel.client.is_complete("fn f() {")
    assert kernel.client.get_shell_msg(timeout=10)["content"]["status"] == "incomplete"
    kernel.client.is_complete("let a = 1;")
    assert kernel.client.get_shell_msg(timeout=10)["content"]["status"] == "complete"


def test_message_with_a_wrong_signature_is_not_executed(kernel):
    info = kernel.manager.get_connection_info()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    forged = Session(key=b"not-the-key", username="mallory")
    forged.send(sock, "execute_request", {
        "code": "let forged_ran = 1;",
        "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True,
    })
    # No reply comes back for it...
    assert sock.poll(3000) == 0
    sock.close()
    # ...and the variable it would have defined does not exist.
    cell = kernel.run("forged_ran")
    assert cell.status == "error"
    assert "forged_ran" in json.dumps(cell.reply["content"])
    # The kernel still serves signed requests.
    assert kernel.run("1 + 1").result() == "2"


def test_kernel_info_reports_rust(kernel):
    kernel.client.kernel_info()
    info = kernel.client.get_shell_msg(timeout=10)["content"]
    assert info["language_info"]["name"] == "rust"
    assert info["implementation"] == "fastai-kernel"


def test_the_library_is_preloaded(kernel):
    # No :dep needed: `use fastai::vision::*;` is in effect from the start.
    cell = kernel.run('format!("{}", device_info())')
    assert cell.status == "ok", cell.reply["content"]
    assert "CPU" in cell.result() or "CUDA" in cell.result()
    cell = kernel.run("let t = Tensor::ones([2, 3], (Kind::Float, Device::Cpu)) * 2;\nt.sum(Kind::Float).double_value(&[])")
    assert cell.result() == "12.0"


def test_cells_share_one_copy_of_the_library_and_run_tensor_code(kernel):
    """The kernel links the library as one shared library: a function of it has the same address
    in every cell (linked statically, each cell would carry a copy of its own). tch's inlined
    methods, compiled into the cell, call libtorch's C glue directly, which that shared library
    has to export, or the cell would not load."""
    assert kernel.run("let first = fastai::device_info as usize;").status == "ok"
    assert kernel.run("fastai::device_info as usize == first").result() == "true"
    cell = kernel.run(
        "let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);\n(&t * 2.0).sum(Kind::Float).double_value(&[])"
    )
    assert cell.status == "ok", cell.of_type("error") or cell.stderr
    assert cell.result() == "12.0"


def test_an_error_returned_with_question_mark_is_an_error(kernel):
    cell = kernel.run('let files = get_image_files("/no/such/folder")?;')
    assert cell.status == "error", cell.reply["content"]
    assert "/no/such/folder" in cell.reply["content"]["evalue"] and "does not exist" in cell.reply["content"]["evalue"]
    assert "FASTAI_ERROR" not in cell.stderr
    assert kernel.run("3 + 4").result() == "7"


def test_two_kernels_run_cells_at_the_same_time(kernel):
    import threading

    from helpers import Kernel

    other = Kernel()
    try:
        results = {}

        def work(name, k):
            results[name] = k.run(
                'std::thread::sleep(std::time::Duration::from_millis(1500));\n'
                'std::env::var("EVCXR_TMPDIR").unwrap()'
            )

        threads = [threading.Thread(target=work, args=(n, k)) for n, k in (("a", kernel), ("b", other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results["a"].status == "ok" and results["b"].status == "ok"
        # each kernel has its own (locked) build folder
        assert results["a"].result() != results["b"].result()
    finally:
        other.close()


def _inspect(kernel, code, cursor_pos=None):
    msg_id = kernel.client.inspect(code, len(code) if cursor_pos is None else cursor_pos)
    reply = kernel.client.get_shell_msg(timeout=120)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply["content"]


def test_inspect_shows_a_variables_type_and_a_functions_signature(kernel):
    kernel.run("let sizes: Vec<u32> = vec![224, 299];")
    # Shift-Tab on a variable of an earlier cell: its type, as evcxr recorded it.
    content = _inspect(kernel, "sizes.len()", 2)
    assert content["status"] == "ok" and content["found"] is True, content
    assert content["data"]["text/plain"].splitlines()[0] == "sizes: Vec<u32>"
    assert "sizes: Vec&lt;u32&gt;" in content["data"]["text/html"]
    # On a library function: rust-analyzer's signature and the doc comment.
    content = _inspect(kernel, "let learn = cnn_learner(")
    assert content["found"] is True, content
    text = content["data"]["text/plain"]
    assert "pub fn cnn_learner(data: ImageDataBunch, arch: Arch" in text, text
    assert "transfer learning" in text, text
    # On a method (with its call's parenthesis): the method's own signature.
    content = _inspect(kernel, "sizes.len()", 8)
    assert "pub const fn len(&self) -> usize" in content["data"]["text/plain"], content
    # Nothing known: found is false.
    content = _inspect(kernel, "no_such_name_anywhere")
    assert content["status"] == "ok" and content["found"] is False, content
    content = _inspect(kernel, "1 + 2")
    assert content["found"] is False, content


def test_final_values_print_as_evcxr_prints_them(kernel):
    """Plain values take the kernel's one-compile shortcut; everything else, and every `:fmt`
    other than {:?} / {:#?}, goes through evcxr's own path. The text must be the same either way,
    and types with a rich display of their own keep it (also behind a Box)."""
    assert kernel.run("1 + 1").result() == "2"
    assert kernel.run('vec![Some(1.5f32), None]').result() == "[Some(1.5), None]"
    assert kernel.run('("a", 2u8, \'c\')').result() == "(\"a\", 2, 'c')"
    assert kernel.run('String::from("hi")').result() == '"hi"'
    # a unit result shows nothing (Python shows nothing for None)
    for code in ["for i in 0..2 { let _ = i; }", "()", "match 1 { 1 => (), _ => () }"]:
        cell = kernel.run(code)
        assert cell.status == "ok" and cell.result() is None, (code, cell.of_type("execute_result"))
    # a library type (no shortcut): evcxr's Debug fallback
    assert kernel.run("get_transforms().max_rotate").result() == "10.0"
    assert kernel.run("get_transforms()").result().startswith("Transforms {")
    # a rich display of the user's own, direct and through a Box
    kernel.run(
        "#[derive(Debug)] struct Shown;\n"
        "impl Shown { fn evcxr_display(&self) { "
        'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>shown</b>\\nEVCXR_END_CONTENT"); } }'
    )
    for code in ["Shown", "Box::new(Shown)"]:
        cell = kernel.run(code)
        assert cell.status == "ok", cell.reply
        shown = [c["data"] for c in cell.of_type("execute_result") + cell.of_type("display_data")]
        assert any("text/html" in d and "<b>shown</b>" in d["text/html"] for d in shown), (code, shown)
    # :fmt and :types change the text, and back
    kernel.run(":fmt {:#?}")
    assert kernel.run("Some(1)").result() == "Some(\n    1,\n)"
    kernel.run(":fmt {:x}")
    assert kernel.run("255").result() == "ff"
    kernel.run(":fmt")
    assert kernel.run("255").result() == "255"
    kernel.run(":types")
    assert kernel.run("255u8").result() == ": u8 = 255"
    kernel.run(":types")
    assert kernel.run("vec![1]").result() == "[1]"
    # a cell that changes the format and shows a value uses the new format at once
    # (evcxr puts the command's own answer first)
    assert kernel.run(":fmt {:#?}\n(1, 2)").result() == "Output format: {:#?}\n(\n    1,\n    2,\n)"
    kernel.run(":fmt")


def test_library_values_show_in_one_compilation(kernel):
    """The library's values carry evcxr's display method (fastai::display::value): a cell that
    ends in one compiles once (evcxr's `:timing` calls the second compilation of its fallback
    `Fallback`), and a tensor shows its values, where Debug shows a shape."""
    assert kernel.run(":timing").status == "ok"
    try:
        cell = kernel.run("Tensor::from_slice(&[1.5f32, 2.0, 3.0]) * 2.0")
        assert cell.status == "ok", cell.reply
        text = cell.result()
        assert "3." in text and "4." in text and "6." in text, text
        assert "Fallback" not in cell.stdout, cell.stdout
        cell = kernel.run("device_info()")
        assert cell.status == "ok", cell.reply
        printed = kernel.run('println!("{}", device_info());').stdout
        printed = "".join(l for l in printed.splitlines(True) if not l.startswith("timing:"))
        assert cell.result() == printed.rstrip("\n")
        assert "Fallback" not in cell.stdout, cell.stdout
        # a library type without the method still shows, through evcxr's second compilation
        cell = kernel.run("get_transforms()")
        assert cell.result().startswith("Transforms {")
        assert "Fallback" in cell.stdout, cell.stdout
    finally:
        kernel.run(":timing")


def test_timing_shows_the_phases_of_a_cell(kernel):
    kernel.run(":timing")
    try:
        cell = kernel.run("1 + 1")
        assert cell.result() == "2"
        assert "timing:" in cell.stdout and "Final compile" in cell.stdout, cell.stdout
    finally:
        kernel.run(":timing")
    assert "timing:" not in kernel.run("1 + 1").stdout


def test_every_stderr_line_comes_before_the_cell_is_done(kernel):
    # a burst on stderr (warnings, a library's log) ends just before the cell does: evcxr reads
    # stderr on a thread of its own, and the kernel must not report the cell done before its
    # last line has been passed on
    for _ in range(3):
        cell = kernel.run('for i in 0..3000 { eprintln!("warning {i}"); } println!("done");')
        assert cell.status == "ok"
        assert cell.stdout == "done\n"
        lines = [l for l in cell.stderr.splitlines() if l.startswith("warning")]
        assert len(lines) == 3000 and lines[-1] == "warning 2999", (len(lines), lines[-3:])
