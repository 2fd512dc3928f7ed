"""Interrupts: a loop that checks `interrupted()` stops and keeps the variables; one that does not
is ended after the grace period with an error that says the variables were lost, and the kernel
goes on serving; an abort restarts the cell process with a clear error."""

import os
import threading
import time

from helpers import Kernel


def interrupt_after(kernel, seconds):
    t = threading.Timer(seconds, kernel.manager.interrupt_kernel)
    t.start()
    return t


def test_cooperative_loop_stops_and_keeps_variables(kernel):
    assert kernel.run("let kept = 41;").status == "ok"
    interrupt_after(kernel, 1.5)
    t0 = time.time()
    cell = kernel.run(
        "let mut n = 0u64;\n"
        "loop { if interrupted() { break; } n += 1; std::thread::sleep(std::time::Duration::from_millis(5)); }\n"
        "println!(\"stopped after {n} steps\");"
    )
    assert time.time() - t0 < 8
    assert cell.status == "error" and cell.reply["content"]["ename"] == "Interrupted"
    assert "variables are kept" in cell.reply["content"]["evalue"]
    assert "stopped after" in cell.stdout
    assert kernel.run("kept + 1").result() == "42"


def test_uncooperative_loop_is_ended_after_the_grace_period():
    k = Kernel(env=dict(os.environ, FASTAI_INTERRUPT_GRACE="2"))
    try:
        assert k.run("let lost = 1;").status == "ok"
        interrupt_after(k, 1.0)
        t0 = time.time()
        cell = k.run("loop { std::thread::sleep(std::time::Duration::from_millis(10)); }")
        assert time.time() - t0 < 15
        assert cell.status == "error" and cell.reply["content"]["ename"] == "Interrupted"
        assert "variables" in cell.reply["content"]["evalue"] and "lost" in cell.reply["content"]["evalue"]
        # The kernel still works, in a fresh process.
        assert k.run("1 + 1").result() == "2"
        assert k.run("lost").status == "error"
    finally:
        k.close()


def test_abort_restarts_the_process_with_a_clear_error(kernel):
    cell = kernel.run("std::process::abort();")
    assert cell.status == "error"
    assert "variables were lost" in cell.reply["content"]["evalue"]
    assert kernel.run("2 * 21").result() == "42"
