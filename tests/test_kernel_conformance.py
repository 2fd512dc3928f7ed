"""Protocol conformance: `jupyter_kernel_test` (the Jupyter project's kernel test suite) against
the fastai kernel. Every message it receives is checked against the message schemas of protocol
5.x, so frontends stricter than JupyterLab (VS Code, nbclient tools, consoles) can rely on them.
Its only skipped check is the pager: Rust has no pager (`?` in IPython).

Besides its checks: a panic is one `error` message (no stderr copy of the panic hook's text),
and the replies and iopub messages it does not exercise (comm_info, interrupt, kernel_info on
control, update_display_data, shutdown) validate as well."""

import re
import time

import jupyter_kernel_test as jkt
from jupyter_client.manager import start_new_kernel
from jupyter_kernel_test.msgspec_v5 import validate_message

from helpers import KERNEL

# The first cell of a fresh kernel waits while the library is preloaded (minutes when the
# kernel's build folder is new); later cells compile in seconds, but on a busy machine more
# than jupyter_kernel_test's 15 s.
FIRST_CELL_TIMEOUT = 1200
CELL_TIMEOUT = 120

def plain(text):
    """`text` without its ANSI colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


PNG_CELL = (
    "let png = fastai::display::figure::image_grid("
    '&[(fastai::image::RgbImage::new(8, 8), "x".to_string())], 1, 1, (1.0, 1.0));\n'
    'display(&Rich::png(png, "a figure"));'
)


class FastaiKernelTests(jkt.KernelTests):
    kernel_name = KERNEL
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("a line on stderr");'
    code_generate_error = 'panic!("boom");'
    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": "6 * 7", "result": "42"},
        {"code": '"fast".len() + 2', "result": "6"},
        {"code": 'String::from("hi")', "result": '"hi"'},
    ]
    code_display_data = [
        {"code": 'display(&Rich::text("shown"));', "mime": "text/plain"},
        {"code": 'display(&Rich::html("<b>bold</b>", "bold"));', "mime": "text/html"},
        {"code": PNG_CELL, "mime": "image/png"},
    ]
    code_clear_output = 'println!("soon gone");\nclear_output(false);'
    code_inspect_sample = "let learn = cnn_learner("
    # (as evcxr completes: a call's parameters come with the name)
    completion_samples = [
        {"text": "get_image_fi", "matches": {"get_image_files(path)"}},
        {"text": "let v: Vec<u8> = Vec::with_capac", "matches": {"with_capacity(capacity)"}},
        {"text": "let n = 1u8.checked_ad",
         "matches": {"checked_add(rhs)", "checked_add_signed(rhs)"}},
    ]
    complete_code_samples = [
        "let x = 1;",
        "fn add(a: u8) -> u8 { a + 1 }",
        "let c = '{';",
        "let s = \"(\";",
        "fn f<'a>(s: &'a str) -> &'a str { s }",
    ]
    incomplete_code_samples = ["fn f() {", "let v = vec![1,", 'let s = "open', "/* open"]
    invalid_code_samples = ["}", "let x = (1 + 2));", "f(]"]
    # matches "1 + 2" only (a glob over the whole input, as IPython's history search)
    code_history_pattern = "1 + ?"
    supported_history_operations = ("tail", "range", "search")

    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, startup_timeout=120)
        # Wait for the library's preload here, not in the first test.
        reply = cls.kc.execute_interactive(
            "let conformance_warm_up = 1;", timeout=FIRST_CELL_TIMEOUT, output_hook=lambda m: None
        )
        assert reply["content"]["status"] == "ok", reply["content"]

    def execute_helper(self, code, timeout=CELL_TIMEOUT, **kwargs):
        return super().execute_helper(code, timeout=timeout, **kwargs)

    # ------------------------------------------------------------ beyond jupyter_kernel_test

    def test_a_panic_is_one_error_message(self):
        self.flush_channels()
        reply, outputs = self.execute_helper('panic!("boom at the end");')
        assert [m["msg_type"] for m in outputs] == ["error"], outputs
        err = outputs[0]["content"]
        assert err["ename"] == "panic"
        assert err["evalue"] == "boom at the end"
        text = "\n".join(err["traceback"])
        assert "panicked at" in text and re.search(r":\d+:\d+", text), text
        assert "stack backtrace" not in text and "RUST_BACKTRACE" not in text, text
        # the cell's line of the panic, as a compile error shows its line
        assert '   1 | panic!("boom at the end");' in plain(text), text
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "panic"
        assert reply["content"]["evalue"] == "boom at the end"

    def test_output_before_a_panic_is_still_shown(self):
        self.flush_channels()
        reply, outputs = self.execute_helper(
            'println!("before the panic");\neprintln!("warned first");\npanic!("then boom");'
        )
        kinds = [(m["msg_type"], m["content"].get("name")) for m in outputs]
        assert kinds == [("stream", "stdout"), ("stream", "stderr"), ("error", None)], outputs
        assert outputs[0]["content"]["text"] == "before the panic\n"
        assert outputs[1]["content"]["text"] == "warned first\n"
        assert outputs[2]["content"]["evalue"] == "then boom"
        assert '   3 | panic!("then boom");' in plain("\n".join(outputs[2]["content"]["traceback"]))
        # and the kernel goes on
        reply, outputs = self.execute_helper("40 + 2")
        assert reply["content"]["status"] == "ok"
        assert outputs[-1]["content"]["data"]["text/plain"] == "42"

    def test_more_messages_validate(self):
        """Messages jupyter_kernel_test does not ask for: each one is validated as it arrives
        (execute_helper and flush_channels check every message they read)."""
        self.flush_channels()
        # update_display_data, and a compile error (an error reply)
        reply, outputs = self.execute_helper(
            'let h = DisplayHandle::new(&Rich::text("step 0"));\nh.update(&Rich::text("step 1"));'
        )
        assert [m["msg_type"] for m in outputs] == ["display_data", "update_display_data"]
        assert outputs[1]["content"]["transient"]["display_id"]
        reply, outputs = self.execute_helper('let n: i32 = "text";')
        assert reply["content"]["status"] == "error"
        assert [m["msg_type"] for m in outputs] == ["error"]
        # a silent cell: no execute_input count of its own, no result
        reply, outputs = self.execute_helper("5 + 5", silent=True)
        assert reply["content"]["status"] == "ok" and outputs == []

        msg_id = self.kc.comm_info()
        validate_message(self.kc.get_shell_msg(timeout=30), "comm_info_reply", msg_id)
        for output in (False, True):
            msg_id = self.kc.history(hist_access_type="tail", n=3, output=output, raw=False)
            reply = self.kc.get_shell_msg(timeout=30)
            validate_message(reply, "history_reply", msg_id)
            assert len(reply["content"]["history"]) == 3
        # the last stored cells, with the result of the one that had one
        assert reply["content"]["history"][-1][2] == ['let n: i32 = "text";', None]

        # control: kernel_info and interrupt (between cells: nothing to stop)
        for msg_type, reply_type in (("kernel_info_request", "kernel_info_reply"),
                                     ("interrupt_request", "interrupt_reply")):
            msg = self.kc.session.msg(msg_type, {})
            self.kc.control_channel.send(msg)
            validate_message(self.kc.get_control_msg(timeout=30), reply_type, msg["header"]["msg_id"])
        # the busy/idle status of each request
        self.flush_channels()

    def test_history_keeps_results_and_counts(self):
        self.flush_channels()
        reply, _ = self.execute_helper("100 + 23")
        count = reply["content"]["execution_count"]
        reply = self.kc.history(hist_access_type="range", session=0, start=count, stop=count + 1,
                                output=True, raw=True, reply=True, timeout=30)
        validate_message(reply, "history_reply")
        (entry,) = reply["content"]["history"]
        session, line, (source, result) = entry
        assert (line, source, result) == (count, "100 + 23", "123")
        # the session number of the reply names the same session
        again = self.kc.history(hist_access_type="range", session=session, start=count,
                                stop=count + 1, output=False, raw=True, reply=True, timeout=30)
        assert again["content"]["history"] == [[session, count, "100 + 23"]]
        # an earlier session: none is kept
        earlier = self.kc.history(hist_access_type="range", session=-1, start=0, stop=0,
                                  output=False, raw=True, reply=True, timeout=30)
        assert earlier["content"]["history"] == []


def test_shutdown_reply_validates():
    km, kc = start_new_kernel(kernel_name=KERNEL, startup_timeout=120)
    try:
        msg = kc.session.msg("shutdown_request", {"restart": False})
        kc.control_channel.send(msg)
        reply = kc.get_control_msg(timeout=30)
        validate_message(reply, "shutdown_reply", msg["header"]["msg_id"])
        assert reply["content"]["restart"] is False
        # the kernel's process ends by itself
        for _ in range(100):
            if not km.is_alive():
                break
            time.sleep(0.1)
        assert not km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
