"""Offline stand-in for the rules_cc repository that Bazel 4's embedded tools load.

Bazel fetches rules_cc from the network even to build pure-Python targets; this repository gives
it the same names, forwarding to Bazel's native C++ rules, so builds work without a download.
"""

def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)
