"""One root for seedzoo's errors: every exception class seedzoo defines derives from `SeedzooError`."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import seedzoo
from seedzoo import SeedzooError


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(seedzoo.__path__, "seedzoo."):
        if info.name == "seedzoo.__main__":  # runs the command line when imported
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


EXCEPTIONS = _exception_classes()


def test_the_walk_finds_the_known_errors():
    names = {cls.__name__ for cls in EXCEPTIONS}
    assert {"ConfigError", "UnknownModelError", "ChecksumError", "DatasetNotFoundError"} <= names
    assert len(EXCEPTIONS) >= 15


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_seedzoo_exception_derives_from_seedzoo_error(cls):
    assert issubclass(cls, SeedzooError)


def test_errors_keep_their_builtin_base():
    """Existing `except ValueError` / `except KeyError` clauses still catch them."""
    from seedzoo.training.config import ConfigError
    from seedzoo.weights.io import ChecksumError
    from seedzoo.zoo import UnknownModelError

    assert issubclass(ConfigError, ValueError)
    assert issubclass(UnknownModelError, KeyError)
    assert issubclass(ChecksumError, RuntimeError)
