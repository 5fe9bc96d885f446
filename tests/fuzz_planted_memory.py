"""A harness with a planted defect: it allocates what its input declares (see fuzz_planted)."""


def test_one_input(data: bytes) -> None:
    if data.startswith(b"size"):
        bytearray(8 << 30)  # what a reader trusting a declared size would do


def write_seeds(directory: str) -> None:
    with open(f"{directory}/declared", "wb") as file:
        file.write(b"size 8 GiB")
