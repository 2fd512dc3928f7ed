"""Shared fixtures: a running fastai kernel driven through jupyter_client, as a notebook would."""

import os
import time

import jupyter_client
import pytest

KERNEL = "fastai-rust"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Cell:
    """What one execute request produced: the reply and every iopub message, in order."""

    def __init__(self, reply, messages):
        self.reply = reply
        self.messages = messages
        self.status = reply["content"]["status"]

    def of_type(self, kind):
        return [m["content"] for m in self.messages if m["msg_type"] == kind]

    @property
    def stdout(self):
        return "".join(c["text"] for c in self.of_type("stream") if c["name"] == "stdout")

    @property
    def stderr(self):
        return "".join(c["text"] for c in self.of_type("stream") if c["name"] == "stderr")

    def result(self):
        r = self.of_type("execute_result")
        return r[0]["data"]["text/plain"] if r else None


class Kernel:
    def __init__(self):
        self.manager, self.client = jupyter_client.manager.start_new_kernel(
            kernel_name=KERNEL, startup_timeout=120
        )

    def run(self, code, timeout=600):
        messages = []
        t0 = time.time()
        reply = self.client.execute_interactive(
            code, timeout=timeout, output_hook=messages.append, allow_stdin=False
        )
        cell = Cell(reply, messages)
        cell.seconds = time.time() - t0
        return cell

    def close(self):
        self.manager.shutdown_kernel(now=False)


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    yield k
    k.close()
