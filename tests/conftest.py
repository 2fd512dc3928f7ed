"""Shared fixtures: a running fastai kernel driven through jupyter_client, as a notebook would
(the classes and the other shared helpers are in helpers.py)."""

import pytest

from helpers import Kernel


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    yield k
    k.close()
