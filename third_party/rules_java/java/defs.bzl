"""Offline stand-in for the rules_java repository that Bazel 4's embedded tools load.

Bazel parses its registered JDK toolchains even to build pure-Python targets; this repository gives
the names it loads, forwarding to Bazel's native Java rules, so builds work without a download.
"""

def java_binary(**attrs):
    native.java_binary(**attrs)

def java_import(**attrs):
    native.java_import(**attrs)

def java_library(**attrs):
    native.java_library(**attrs)

def java_proto_library(**attrs):
    native.java_proto_library(**attrs)

def java_runtime(**attrs):
    native.java_runtime(**attrs)

def java_toolchain(**attrs):
    native.java_toolchain(**attrs)
