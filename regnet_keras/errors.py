"""The marker of errors that mean "bad input from the user", each worded as problem and way out.

Library errors that a user can cause (a wrong argument, a corrupt file, an unusable dataset)
inherit from `InputError` besides their builtin type, so that the tools can print them as one line
and keep tracebacks for what is not the user's doing.
"""


class InputError(Exception):
    """A problem with what the user gave; the message says what and how to fix it."""
