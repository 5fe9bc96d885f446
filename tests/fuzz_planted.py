"""Harnesses with planted defects, for checking that fuzz.runner reports each kind of finding:
an escaping exception other than InputError, and memory beyond the limit."""

from regnet_keras.errors import InputError


class _Refused(InputError, ValueError):
    pass


def test_one_input(data: bytes) -> None:
    if data.startswith(b"bad"):
        raise _Refused("refused, as a reader refuses a bad file")
    if data.startswith(b"crash"):
        raise KeyError("a reader's own error escaped")


def write_seeds(directory: str) -> None:
    for name, data in (("refused", b"bad file"), ("escaping", b"crash now")):
        with open(f"{directory}/{name}", "wb") as file:
            file.write(data)
