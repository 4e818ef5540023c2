#!/usr/bin/env python3
"""The oracle for tests/unit/test_template.c: renders template cases with Jinja2 and Ansible's own
filter and test plugins registered, as Ansible does (including its unrolling of generators that
filters return), with StrictUndefined.

usage: template_oracle.py IN.json OUT.json
IN is a list of {"t": template, "v": variables}; OUT gets a list of {"ok": output} or
{"err": "ExceptionType: message"} in the same order. Exit status 3 when jinja2 or ansible-core
cannot be imported, so that the caller can say so."""
import functools
import json
import sys
import types

try:
    import jinja2
    from ansible.plugins.filter.core import FilterModule as CoreFilters
    from ansible.plugins.filter.mathstuff import FilterModule as MathFilters
    from ansible.plugins.test.core import TestModule as CoreTests
except ImportError as e:  # the caller skips with a message
    print("template_oracle: %s" % e, file=sys.stderr)
    sys.exit(3)


def unroll(func):
    """Ansible's _unroll_iterator: a filter's generator result becomes a list."""
    def wrapper(*args, **kwargs):
        ret = func(*args, **kwargs)
        if isinstance(ret, (types.GeneratorType, map, filter, range, type({}.items()))):
            return list(ret)
        return ret
    return functools.update_wrapper(wrapper, func)


def environment():
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    filters = dict(env.filters)
    filters.update(CoreFilters().filters())
    filters.update(MathFilters().filters())
    env.filters = {name: unroll(f) for name, f in filters.items()}
    env.tests.update(CoreTests().tests())
    return env


def main():
    env = environment()
    out = []
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    for case in cases:
        try:
            out.append({"ok": env.from_string(case["t"]).render(**case["v"])})
        except Exception as e:  # every failure is a result to compare
            out.append({"err": "%s: %s" % (type(e).__name__, e)})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
