"""The file a harness hands to a reader that takes a path: readers of user files open paths, as
users give them, so each input is written to one file per harness process and read from there."""

import os
import tempfile


class InputFile:
    def __init__(self, name: str):
        self.path = os.path.join(tempfile.mkdtemp(prefix="fuzz_"), name)

    def holding(self, data: bytes) -> str:
        """The path, its content replaced by `data`."""
        with open(self.path, "wb") as file:
            file.write(data)
        return self.path
