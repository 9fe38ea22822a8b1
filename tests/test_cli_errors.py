"""What a binary prints when something fails: one line for user mistakes,
a traceback for bugs (and for everything with TFCAF_DEBUG=1), 130 for
Ctrl-C."""

import errno
import types

import pytest

from tfcaf.cli import errors, launch, quiet
from tfcaf.errors import TfcafError


class Interrupted(TfcafError):
    """As the training library reports Ctrl-C."""


def _interrupted():
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        # As tfcaf.training does: `from None` hides the KeyboardInterrupt
        # from the traceback but keeps it as the context.
        raise Interrupted("interrupted at step 7; resume with the same command") from None


@pytest.fixture(autouse=True)
def _keep_logging_as_is(monkeypatch):
    """`_main` routes the tfcaf loggers to stderr; not in this test process."""
    monkeypatch.setattr(quiet, "show_progress", lambda: None)


def _module(raise_):
    return types.SimpleNamespace(main=lambda argv: raise_())


def _fail(err):
    def raise_():
        raise err
    return raise_


@pytest.mark.parametrize("raise_,status,line", [
    (_fail(TfcafError("--layer: no layer 'x'\nsecond line")), 1, "--layer: no layer 'x'"),
    (_fail(FileNotFoundError(errno.ENOENT, "No such file or directory", "a.jpg")), 1,
     "[Errno 2] No such file or directory: 'a.jpg'"),
    (_fail(OSError(errno.ENOSPC, "No space left on device")), 1,
     "[Errno 28] No space left on device"),
    (_fail(FloatingPointError("loss became nan by step 3; lower --learning_rate")), 1,
     "loss became nan by step 3; lower --learning_rate"),
    (_fail(KeyboardInterrupt()), 130, "interrupted"),
    (_interrupted, 130, "interrupted at step 7; resume with the same command"),
])
def test_user_mistakes_end_in_one_line(raise_, status, line, capsys, monkeypatch):
    monkeypatch.delenv("TFCAF_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        launch._main(_module(raise_), "prog", True, ["prog"])
    assert exit_.value.code == status
    assert capsys.readouterr().err == f"prog: error: {line}\n"


@pytest.mark.parametrize("err", [ValueError("internal"), RuntimeError("bug"),
                                 OSError("no file named"), KeyError("k")])
def test_bugs_keep_their_traceback(err, monkeypatch):
    monkeypatch.delenv("TFCAF_DEBUG", raising=False)
    with pytest.raises(type(err)):
        launch._main(_module(_fail(err)), "prog", True, ["prog"])


def test_debug_shows_tracebacks_of_user_mistakes_too(monkeypatch):
    monkeypatch.setenv("TFCAF_DEBUG", "1")
    with pytest.raises(TfcafError):
        launch._main(_module(_fail(TfcafError("bad"))), "prog", True, ["prog"])


@pytest.mark.parametrize("argv,verbose,rewritten", [
    (["p", "--x=1"], False, ["p", "--x=1"]),
    (["p", "-v"], True, ["p", "--verbosity=1"]),
    (["p", "-v", "2"], True, ["p", "-v", "2"]),
    (["p", "--verbosity=0"], True, ["p", "--verbosity=0"]),
    (["p", "--verbosity=-1"], False, ["p", "--verbosity=-1"]),
    (["p", "-v", "--x=1"], True, ["p", "--verbosity=1", "--x=1"]),
])
def test_verbosity_from_the_command_line(argv, verbose, rewritten, monkeypatch):
    monkeypatch.delenv("TFCAF_DEBUG", raising=False)
    assert quiet.wants_verbose(argv) is verbose
    assert quiet.bare_verbose_flag(argv) == rewritten
    assert errors.exit_status(RuntimeError()) is None
